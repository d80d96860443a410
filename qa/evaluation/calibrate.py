"""Fit the abstention thresholds on labelled question files, cross-validated across the files.

The service answers when the best passage passes the answer rule (``Thresholds.admit``): it is close
enough to the question and holds enough of its key words (a passage holding nearly all of them needs
half the similarity) and, for "how many" or "when" questions, a sentence holds such a value. Fitting searches the thresholds for the best balanced accuracy: the mean of the share of
answerable questions answered and the share of unanswerable ones refused, each setting scored with
its neighbours (``SMOOTHING``) so that a broad optimum wins over a spike. Many settings tie on a
small set; the centre of the tying region is taken, which moves least on new questions.

Each file is a source: the thresholds are fitted on the others and reported on it, so every figure
printed per source is held out. The stored thresholds are fitted on all of them. Validation files
are asked and reported, never fitted on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from qa.engine import Engine
from qa.errors import QAError
from qa.evaluation.evaluate import EvalItem, evidence_in, missing_evidence
from qa.pipeline.answerability import (
    EVERY,
    FACT,
    JUDGES,
    ReaderRule,
    Rule,
    Thresholds,
    admits,
    own_rule,
    short_of_coverage,
)
from qa.pipeline.confidence import CONFIDENCE_INPUTS, RELEVANCE_INPUTS, Logistic, confidence_inputs

GRID = np.round(np.arange(0.0, 0.91, 0.01), 2)
# How many citations per question the relevance is fitted on (the API's top_k is 3 by default).
RELEVANCE_DEPTH = 5
# A citation less likely than this to hold the answer is left out (never the answer's own passage).
RELEVANCE_FLOOR = 0.1
# What `qa calibrate` fits on by default, in Settings.eval_dir (our own questions: one file reusing
# the article's words, one in other words), and what it only reports: questions written by someone
# else, and ours asking why, how and yes/no in other words, where no signal of the rule tells
# answered from not (docs/evaluation.md): fitted on, they pull the thresholds to answering everything.
FIT_SETS = ("questions.jsonl", "reworded.jsonl")
VALIDATION_SETS = ("paraphrase_questions.jsonl", "why_how.jsonl")


@dataclass(frozen=True)
class Observation:
    answerable: bool
    kind: str
    similarity: float
    coverage: float
    typed: bool
    correct: bool  # the top passage holds the evidence (answerable questions)
    source: str = ""
    reader: float | None = None  # the reader's best probability (None: no reader)
    factoid: bool = False  # the question asks for a fact (who, what, when, how many ...)
    answer_score: float = 0.0  # the best sentence's score (what the confidence reads beside the rule's)
    # per citation of the ranking: its relevance inputs (RELEVANCE_INPUTS) and whether it holds the answer
    citations: tuple[tuple[tuple[float, float, float], bool], ...] = ()
    heading: bool = False  # the best passage's section heading asks the question (the reader does not decide)

    @property
    def judged(self) -> bool:
        """The reader's verdict decides, as in the service (``answerability._decide``) by default: a
        fact question its section's heading does not ask."""
        return self.judged_by(FACT)

    def judged_by(self, judges: str) -> bool:
        """The reader's verdict decides under a rule whose reader judges ``judges`` (FACT or EVERY)."""
        return (self.factoid or judges == EVERY) and not self.heading


def observe(engine: Engine, items: list[EvalItem], source: str = "") -> list[Observation]:
    observations = []
    for item in items:
        result = engine.ask(item.question, RELEVANCE_DEPTH, use_cache=False, read_all=True)
        s = result.signals
        correct = bool(result.ranking) and evidence_in(result.ranking[0].text, item.evidence)
        observations.append(
            Observation(
                item.answerable,
                item.kind,
                s["similarity"],
                s["coverage"],
                s["typed"] > 0,
                correct,
                source,
                s.get("reader"),
                s.get("factoid", 0.0) > 0,
                s["answer_score"],
                tuple(
                    (inputs, item.answerable and evidence_in(c.text, item.evidence))
                    for inputs, c in zip(result.relevance_inputs, result.ranking)
                ),
                s.get("heading", 0.0) > 0,
            )
        )
    return observations


def _arrays(obs: list[Observation], judges: str = FACT) -> dict[str, np.ndarray]:
    arrays = {
        name: np.array([getattr(o, name) for o in obs])
        for name in ("answerable", "similarity", "coverage", "typed", "correct")
    }
    arrays["reader"] = np.array([o.reader or 0.0 for o in obs])
    arrays["judged"] = np.array([o.judged_by(judges) for o in obs], dtype=bool)
    return arrays


def admitted(obs: list[Observation], rule: Rule) -> np.ndarray:
    """The answer rule (``Thresholds.admit`` or ``ReaderRule.admit``) for each observation."""
    if not obs:
        return np.zeros(0, dtype=bool)
    thresholds = rule.thresholds if isinstance(rule, ReaderRule) else rule
    a = _arrays(obs, rule.judges if isinstance(rule, ReaderRule) else FACT)
    admitted = admits(a["similarity"], a["coverage"], a["typed"], thresholds.similarity, thresholds.coverage)
    if isinstance(rule, ReaderRule):
        admitted &= ~a["judged"] | (a["reader"] >= rule.reader)
        if rule.overrule is not None:
            admitted |= _overruled(a, rule) & (a["reader"] >= rule.overrule)
    return admitted


def _overruled(a: dict[str, np.ndarray], rule: ReaderRule) -> np.ndarray:
    """The questions the reader can answer against the coverage threshold (``ReaderRule.may_overrule``)."""
    short = short_of_coverage(a["similarity"], a["coverage"], a["typed"], rule.similarity, rule.coverage)
    return np.asarray(short, dtype=bool)


def _admitted(a: dict[str, np.ndarray], t_sim: np.ndarray, t_cov: np.ndarray) -> np.ndarray:
    """The answer rule (``admits``) for every observation under every setting of the thresholds at once: the
    result has the shape of the broadcast thresholds plus one axis for the observations."""
    return admits(a["similarity"], a["coverage"], a["typed"], t_sim[..., None], t_cov[..., None])


def _rates_of(a: dict[str, np.ndarray], answered: np.ndarray) -> dict[str, np.ndarray]:
    answerable = a["answerable"].astype(bool)
    n_ans, n_un = max(int(answerable.sum()), 1), max(int((~answerable).sum()), 1)
    return {
        "answered_answerable": (answered & answerable).sum(-1) / n_ans,
        "right": (answered & answerable & a["correct"].astype(bool)).sum(-1) / n_ans,
        "refused_unanswerable": (~answered & ~answerable).sum(-1) / n_un,
    }


def rates(obs: list[Observation], thresholds: Rule) -> dict[str, float]:
    """Answered, answered-and-right, refused (and refused per kind) under one answer rule."""
    a = _arrays(obs)
    answered = admitted(obs, thresholds)
    result = {k: float(v) for k, v in _rates_of(a, answered).items()}
    result["balanced_accuracy"] = (result["answered_answerable"] + result["refused_unanswerable"]) / 2
    # Coverage: share of all questions answered; risk: share of answers that are wrong (an
    # unanswerable question answered, or the first citation without the evidence).
    wrong = answered & ~(a["answerable"].astype(bool) & a["correct"].astype(bool))
    result["coverage"] = float(answered.mean()) if len(obs) else 0.0
    result["risk"] = float(wrong.sum() / answered.sum()) if answered.any() else 0.0
    for kind in sorted({o.kind for o in obs if not o.answerable}):
        rows = [i for i, o in enumerate(obs) if o.kind == kind]
        result[f"refused_{kind}"] = float((~answered[rows]).mean())
    return result


# The search scores each setting by the mean balanced accuracy of the settings within this many grid
# steps of it (0.02 either way), so a broad optimum wins over a spike one question wide: on our 174
# questions the raw score had two peaks a question apart, and which one led turned on one question
# (docs/evaluation.md, "Signs read as their words"). Cross-validated across our files the smoothed
# fit generalises better (balanced accuracy 0.884 -> 0.898 and 0.752 -> 0.776).
SMOOTHING = 2


def search(obs: list[Observation]) -> tuple[Thresholds, float]:
    """The thresholds with the best smoothed balanced accuracy on ``obs`` (centre of the ties), and
    their own balanced accuracy."""
    from scipy.ndimage import uniform_filter

    if not any(o.answerable for o in obs) or all(o.answerable for o in obs):
        raise QAError("calibration needs both answerable and unanswerable questions")
    a = _arrays(obs)
    t_sim, t_cov = np.meshgrid(GRID, GRID, indexing="ij")
    r = _rates_of(a, _admitted(a, t_sim, t_cov))
    raw = (r["answered_answerable"] + r["refused_unanswerable"]) / 2
    scores = uniform_filter(raw, size=2 * SMOOTHING + 1, mode="nearest")
    ties = np.argwhere(scores >= scores.max() - 1e-9)
    i, j = ties[np.argmin(((ties - ties.mean(axis=0)) ** 2).sum(axis=1))]
    return Thresholds(float(GRID[i]), float(GRID[j]), "calibrated"), float(raw[i, j])


FOLDS = 5  # one question file held out against itself


def within_one_file(obs: list[Observation], own: ReaderRule | None = None) -> dict[str, float] | None:
    """One question file held out against itself: for each fifth of its questions (each kind spread
    over the fifths), the thresholds fitted on the other four fifths (with ``own``, the reader's own
    rule, the reader rule as `qa calibrate` fits it); the figures pooled over the fifths. None when a
    fifth's training side lacks a kind."""
    answered = np.zeros(len(obs), dtype=bool)
    order = sorted(range(len(obs)), key=lambda i: (obs[i].answerable, i))
    fold = np.empty(len(obs), dtype=int)
    fold[order] = np.arange(len(obs)) % FOLDS
    for f in range(FOLDS):
        training = [o for o, k in zip(obs, fold) if k != f]
        held = np.flatnonzero(fold == f)
        if not len(held):
            continue
        if all(o.answerable for o in training) or not any(o.answerable for o in training):
            return None
        thresholds = search(training)[0]
        rule: Rule = thresholds if own is None else fit_reader_rule(training, thresholds, own)[0]
        answered[held] = admitted([obs[i] for i in held], rule)
    r = {k: round(float(v), 4) for k, v in _rates_of(_arrays(obs), answered).items()}
    for kind in sorted({o.kind for o in obs if not o.answerable}):
        r[f"refused_{kind}"] = round(float((~answered[[o.kind == kind for o in obs]]).mean()), 4)
    return {
        "folds": FOLDS,
        **r,
        "balanced_accuracy": round((r["answered_answerable"] + r["refused_unanswerable"]) / 2, 4),
    }


def source_weights(obs: list[Observation]) -> np.ndarray:
    """Each source weighs the same, and within it answerable and unanswerable questions weigh the
    same: a thousand SQuAD questions do not drown our hundred."""
    weights = np.zeros(len(obs))
    sources = sorted({o.source for o in obs})
    for source in sources:
        for answerable in (True, False):
            rows = [i for i, o in enumerate(obs) if o.source == source and o.answerable == answerable]
            if rows:
                weights[rows] = 1.0 / len(rows)
    return weights * len(obs) / weights.sum()


READER_GRID = np.round(np.arange(0.0, 0.91, 0.01), 2)
# The reader's threshold is refitted only on at least this many fact questions of each kind (answerable,
# and not): on fewer it follows a handful of questions, and the reader's own threshold (its rule.json,
# fitted on 1,395 questions) is kept.
MIN_READER_QUESTIONS = 30
MIN_FIT_QUESTIONS = 10  # of each kind, answerable and not, for `qa calibrate` to store a fit


def search_reader_rule(
    obs: list[Observation], thresholds: Thresholds, judges: str = FACT, keep: float | None = None
) -> tuple[ReaderRule, float]:
    """The reader threshold, on top of ``thresholds``, with the best balanced accuracy on ``obs``
    (each source weighing the same, and within it answerable and unanswerable questions; centre of
    the ties), the reader judging ``judges`` (fact questions, or every question). ``keep``: the
    threshold to keep when the questions the reader judges are too few (MIN_READER_QUESTIONS of
    each kind); the rule then says its source is "default"."""
    if not any(o.answerable for o in obs) or all(o.answerable for o in obs):
        raise QAError("calibration needs both answerable and unanswerable questions")
    a = _arrays(obs, judges)
    labels = a["answerable"].astype(bool)
    weights = source_weights(obs)
    base = admitted(obs, thresholds)
    judged = a["judged"]
    kept = keep is not None and _too_few(a)
    grid = np.array([keep]) if kept else READER_GRID
    answered = base[None, :] & (~judged[None, :] | (a["reader"][None, :] >= grid[:, None]))
    answered_rate = (answered & labels).astype(float) @ weights / max((weights * labels).sum(), 1e-9)
    refused_rate = (~answered & ~labels).astype(float) @ weights / max((weights * ~labels).sum(), 1e-9)
    scores = (answered_rate + refused_rate) / 2
    best = float(scores.max())
    ties = np.flatnonzero(scores >= best - 1e-9)
    reader = float(grid[ties[len(ties) // 2]])
    source = "default" if kept else "calibrated"
    return ReaderRule(thresholds.similarity, thresholds.coverage, reader, source, judges), best


def _too_few(a: dict[str, np.ndarray]) -> bool:
    """Fewer than MIN_READER_QUESTIONS questions the reader judges of each kind, answerable and not."""
    labels = a["answerable"].astype(bool)
    return bool(min((a["judged"] & labels).sum(), (a["judged"] & ~labels).sum()) < MIN_READER_QUESTIONS)


# The reader's probability at which it answers a question the coverage threshold refuses is searched
# from the surest down, in steps of 0.01, to no lower than 0.5 (the reader's own even odds).
OVERRULE_GRID = np.round(np.arange(0.99, 0.495, -0.01), 2)


def search_overrule(obs: list[Observation], rule: ReaderRule, keep: bool = False) -> float | None:
    """The probability at which the reader answers a question ``rule``'s thresholds refuse for its
    coverage alone: walking down OVERRULE_GRID, the lowest at which the answers it adds on ``obs``
    are, at every step so far, right at least as often as the answers the rule gives already (each
    source weighing the same, and within it answerable and unanswerable questions): the reader
    answers a question in other words only where that adds no more wrong answers, in proportion,
    than the rule gives. None when no step does (or nothing is added). ``keep``: keep ``rule``'s own
    (the reader's) when the questions the reader judges are too few, as for its threshold."""
    a = _arrays(obs, rule.judges)
    if keep and _too_few(a):
        return rule.overrule
    weights = source_weights(obs)
    right = a["answerable"].astype(bool) & a["correct"].astype(bool)
    answered = admitted(obs, replace(rule, overrule=None))
    if not answered.any():
        return None
    floor = weights[answered & right].sum() / weights[answered].sum()
    open_to = _overruled(a, rule)
    chosen = None
    for overrule in OVERRULE_GRID:
        added = open_to & (a["reader"] >= overrule)
        if not added.any():
            continue
        if weights[added & right].sum() / weights[added].sum() < floor:
            break
        chosen = float(overrule)
    return chosen


# The reader is let judge every question, not only fact questions, when that fits the questions at
# least this much better (weighted balanced accuracy): on a tie the reader keeps to the questions it
# was measured on most.
EVERY_MARGIN = 0.01


def fit_reader_rule(
    obs: list[Observation], thresholds: Thresholds, own: ReaderRule | None = None
) -> tuple[ReaderRule, float, dict[str, float]]:
    """The reader rule on top of ``thresholds``: its threshold fitted with the reader judging fact
    questions and with it judging every question, and the better of the two (EVERY only by
    EVERY_MARGIN), then the probability at which it overrules the coverage threshold
    (``search_overrule``); with too few questions for either, what ``own`` (the reader's own rule,
    ``answerability.own_rule``) says: its threshold, the questions it judges and its overrule. Also
    each form's weighted balanced accuracy (without the overrule: it answers questions the
    threshold's fit never sees)."""
    keep = None if own is None else own.reader
    fits = {judges: search_reader_rule(obs, thresholds, judges, keep) for judges in JUDGES}
    scores = {judges: round(score, 4) for judges, (_, score) in fits.items()}
    if all(rule.source == "default" for rule, _ in fits.values()):
        chosen = FACT if own is None else own.judges
    else:
        chosen = EVERY if fits[EVERY][1] >= fits[FACT][1] + EVERY_MARGIN else FACT
    rule, score = fits[chosen]
    kept = replace(rule, overrule=None if own is None else own.overrule)
    return replace(rule, overrule=search_overrule(obs, kept, keep=own is not None)), score, scores


def cross_validate(
    by_source: dict[str, list[Observation]],
    reader_over: dict[str, list[Observation]] | None = None,
    own: ReaderRule | None = None,
) -> list[dict[str, Any]]:
    """Leave one source out: fit on the others, report on it. With ``reader_over`` (more sources
    the reader threshold is fitted on, never reported here), the reader rule (``own``: the
    reader's own, for ``fit_reader_rule``)."""
    rows = []
    for held_out, observations in by_source.items():
        training = [o for name, obs in by_source.items() if name != held_out for o in obs]
        thresholds, _ = search(training)
        rule: Rule = thresholds
        if reader_over is not None:
            extra = [o for obs in reader_over.values() for o in obs]
            rule = fit_reader_rule(training + extra, thresholds, own)[0]
        rows.append(
            {
                "source": held_out,
                "fitted_on": [name for name in by_source if name != held_out],
                "thresholds": _values(rule),
                **{k: round(v, 4) for k, v in rates(observations, rule).items()},
            }
        )
    return rows


def fit(
    engine: Engine,
    sources: dict[str, list[EvalItem]],
    validation: dict[str, list[EvalItem]] | None = None,
    observed: dict[str, list[Observation]] | None = None,
) -> dict[str, Any]:
    """Thresholds for the engine's model fitted on every source, with the held-out figures of each
    source (cross-validation) and of each validation file, as stored in the manifest. With a reader,
    the reader rule too, fitted on the sources and ``observed`` (questions observed elsewhere: the
    SQuAD training side of ``qa bench removed``).

    A question file whose evidence is not in these documents is about other documents: it is left
    out (listed under ``left_out``); with no source left, a QAError says what to write."""
    left_out = {
        name: f"{len(missing)} answerable question(s) whose evidence is not in these documents"
        for name, items in {**sources, **(validation or {})}.items()
        if (missing := missing_evidence(engine.index, items))
    }
    sources = {name: items for name, items in sources.items() if name not in left_out}
    validation = {name: items for name, items in (validation or {}).items() if name not in left_out}
    if not sources:
        raise QAError(
            "no question file is about these documents (the evidence of their answerable questions is "
            f"not in the corpus: {', '.join(left_out) or 'no files given'}); write one for your documents "
            '(docs/evaluation.md, "A question file for your documents") and pass it with --set FILE'
        )
    by_source = {name: observe(engine, items, name) for name, items in sources.items()}
    validation_obs = {name: observe(engine, items, name) for name, items in (validation or {}).items()}
    everything = [o for obs in by_source.values() for o in obs]
    thresholds, best = search(everything)
    held_out = cross_validate(by_source) if len(by_source) > 1 else []
    trade_off = []
    for scale in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5):  # both thresholds scaled around the fit
        scaled = Thresholds(round(thresholds.similarity * scale, 3), round(thresholds.coverage * scale, 3))
        trade_off.append(
            {
                "scale": scale,
                "similarity_threshold": scaled.similarity,
                "coverage_threshold": scaled.coverage,
                **{k: round(v, 4) for k, v in rates(everything, scaled).items()},
            }
        )
    calibration: dict[str, Any] = {
        "model": engine.index.model,
        "thresholds": _values(thresholds),
        "balanced_accuracy": round(best, 4),
        "fitted": {k: round(v, 4) for k, v in rates(everything, thresholds).items()},
        "cross_validation": held_out,
        "within_one_file": within_one_file(everything) if len(by_source) == 1 else None,
        "validation": _validated(validation_obs, thresholds),
        "trade_off": trade_off,
        "questions": len(everything),
        "answerable": sum(o.answerable for o in everything),
        "sources": list(by_source),
        "left_out": left_out,
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    final: Rule = thresholds  # the rule the confidence and relevance are fitted under
    if engine.reader is not None:
        pooled = everything + [o for obs in (observed or {}).values() for o in obs]
        own = own_rule(engine.reader, thresholds)
        rule, rule_best, by_judges = fit_reader_rule(pooled, thresholds, own)
        final = rule
        calibration["reader_rule"] = {
            "reader": engine.reader.name,
            "threshold": rule.reader,
            "judges": rule.judges,
            "overrule": rule.overrule,
            "refitted": rule.source == "calibrated",  # else the reader's own, kept: too few questions
            "balanced_accuracy": round(rule_best, 4),
            "balanced_accuracy_by_judges": by_judges,
            "sources": [*by_source, *(observed or {})],
            "questions": len(pooled),
            "fitted": {k: round(v, 4) for k, v in rates(pooled, rule).items()},
            "cross_validation": (
                cross_validate(by_source, observed or {}, own) if len(by_source) > 1 else []
            ),
            "within_one_file": (within_one_file(everything, own) if len(by_source) == 1 else None),
            "validation": _validated(validation_obs, rule),
        }
    in_use = engine.pipeline.answerability.rule_for(engine.index)
    calibration["in_use"] = {
        "rule": _values(in_use),
        "source": in_use.source,
        **{k: round(v, 4) for k, v in rates(everything, in_use).items()},
    }
    fitted_on = {**by_source, **(observed or {})}
    confidence = logistic_report(fitted_on, validation_obs, final, fit_confidence, confidence_data)
    if confidence is not None:
        calibration["confidence"] = {"reader": engine.reader.name if engine.reader else None, **confidence}
    relevance = logistic_report(fitted_on, validation_obs, final, fit_relevance, relevance_data)
    if relevance is not None:
        calibration["relevance"] = {**relevance, "floor": RELEVANCE_FLOOR}
    return calibration


def confidence_data(obs: list[Observation], rule: Rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The answers ``rule`` gives: the confidence's inputs, whether each is right (an answerable
    question whose first citation holds the evidence), and the source weights."""
    answered = admitted(obs, rule)
    kept = [o for o, a in zip(obs, answered) if a]
    inputs = confidence_inputs(
        np.array([o.similarity for o in kept]),
        np.array([o.coverage for o in kept]),
        np.array([o.answer_score for o in kept]),
        np.array([o.factoid for o in kept]),
        np.array([0.5 if o.reader is None else o.reader for o in kept]),  # unread: neutral, as served
    ).reshape(len(kept), len(CONFIDENCE_INPUTS))
    right = np.array([o.answerable and o.correct for o in kept], dtype=bool)
    return inputs, right, _weights_by_source([o.source for o in kept])


# The confidence and the relevance are refitted only on at least this many cases of each outcome (right
# and wrong answers; citations that hold the answer and that do not): on fewer, five weights follow a
# handful of questions, and the reader's own models (its rule.json) are kept.
MIN_LOGISTIC_CASES = 30


def _logistic(inputs: tuple[str, ...], x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> Logistic | None:
    """Logistic regression of ``y`` on ``x``; None when either outcome has fewer than
    MIN_LOGISTIC_CASES cases (too little to learn from)."""
    from sklearn.linear_model import LogisticRegression

    if min(int(y.sum()), int((~y).sum())) < MIN_LOGISTIC_CASES:
        return None
    model = LogisticRegression(C=1.0, max_iter=1000).fit(x, y, sample_weight=weights)
    return Logistic(
        inputs, tuple(round(float(w), 4) for w in model.coef_[0]), round(float(model.intercept_[0]), 4)
    )


def fit_confidence(obs: list[Observation], rule: Rule) -> Logistic | None:
    """A logistic model of whether an answer is right, on the answers ``rule`` gives to ``obs``;
    None with too few right or wrong answers to learn from."""
    return _logistic(CONFIDENCE_INPUTS, *confidence_data(obs, rule))


def relevance_data(obs: list[Observation], rule: Rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every citation of every question: its inputs, whether it holds the answer, source weights."""
    rows = [(o.source, inputs, holds) for o in obs for inputs, holds in o.citations]
    x = np.array([inputs for _, inputs, _ in rows], dtype=float).reshape(len(rows), len(RELEVANCE_INPUTS))
    y = np.array([holds for _, _, holds in rows], dtype=bool)
    return x, y, _weights_by_source([source for source, _, _ in rows])


def fit_relevance(obs: list[Observation], rule: Rule) -> Logistic | None:
    """A logistic model of whether a citation holds the answer (``rule`` unused: every citation of
    every question counts, answered or not, as every question's citations are ranked alike)."""
    return _logistic(RELEVANCE_INPUTS, *relevance_data(obs, rule))


def _weights_by_source(sources: list[str]) -> np.ndarray:
    """Each source weighs the same."""
    names = sorted(set(sources))
    counts = {name: sources.count(name) for name in names}
    return np.array([len(sources) / (len(names) * counts[s]) for s in sources]) if sources else np.zeros(0)


# The reliability table's bins: answers given at a confidence in [low, high).
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)


Data = Callable[[list[Observation], Rule], tuple[np.ndarray, np.ndarray, np.ndarray]]


def reliability(
    folds: list[tuple[list[Observation], Logistic]], rule: Rule, data: Data
) -> list[dict[str, Any]]:
    """Per bin of probability, the cases ``data`` draws from each fold's questions under the fold's
    model: how many, their mean probability and the share that came true (right answers, citations
    that hold the answer). A calibrated probability has the two close."""
    given, truth = [], []
    for obs, model in folds:
        x, y, _ = data(obs, rule)
        if len(y):
            given.append(model.of(x))
            truth.append(y)
    if not given:
        return []
    return binned(np.concatenate(given), np.concatenate(truth))


def binned(levels: np.ndarray, hits: np.ndarray) -> list[dict[str, Any]]:
    """The reliability table of probabilities ``levels`` against what came true, ``hits``."""
    table = []
    for low, high in zip(BINS, BINS[1:]):
        rows = (levels >= low) & (levels < high)
        if rows.any():
            table.append(
                {
                    "bin": f"{low:.1f}–{min(high, 1.0):.1f}",
                    "count": int(rows.sum()),
                    "mean_probability": round(float(levels[rows].mean()), 3),
                    "true": round(float(hits[rows].mean()), 3),
                }
            )
    return table


def logistic_report(
    by_source: dict[str, list[Observation]],
    validation: dict[str, list[Observation]],
    rule: Rule,
    fitter: Callable[[list[Observation], Rule], Logistic | None],
    data: Data,
) -> dict[str, Any] | None:
    """A model fitted on every source, with its reliability held out (each source under the model
    fitted on the others, pooled) and on the validation files (never fitted on)."""
    model = fitter([o for obs in by_source.values() for o in obs], rule)
    if model is None:
        return None
    folds = []
    for held, obs in by_source.items():
        other = fitter([o for name, rest in by_source.items() if name != held for o in rest], rule)
        if other is not None:
            folds.append((obs, other))
    return {
        **model.to_json(),
        "held_out": reliability(folds, rule, data),
        "validation": reliability([(obs, model) for obs in validation.values()], rule, data),
    }


# A fit that tells answerable from unanswerable questions no better than this, judged on questions
# it was not fitted on when there are any, is not stored: the thresholds already there stay.
MIN_BALANCED_ACCURACY = 0.6


def not_storable(calibration: dict[str, Any]) -> str | None:
    """Why a fit may not be stored, or None when it may. It must tell answerable from unanswerable
    questions with a balanced accuracy of at least ``MIN_BALANCED_ACCURACY`` (held out across the
    sources when there are several, else within the one file, else on the fitting questions
    themselves), on at least ``MIN_FIT_QUESTIONS`` of each kind: the thresholds decide every
    question, and a handful moves them as far as chance does."""
    held_out = [row["balanced_accuracy"] for row in calibration["cross_validation"]]
    within = calibration.get("within_one_file")
    if held_out:
        figure, on = sum(held_out) / len(held_out), "held out across the question files"
    elif within:
        figure, on = within["balanced_accuracy"], f"held out within the file ({within['folds']} folds)"
    else:
        figure, on = calibration["balanced_accuracy"], "on the fitting questions (one file: nothing held out)"
    if figure < MIN_BALANCED_ACCURACY:
        return (
            f"balanced accuracy {figure:.3f} {on} is below {MIN_BALANCED_ACCURACY}; these questions cannot "
            "tell what the documents answer from what they do not, and the thresholds already in the "
            "index stay"
        )
    answerable = calibration["answerable"]
    unanswerable = calibration["questions"] - answerable
    if min(answerable, unanswerable) < MIN_FIT_QUESTIONS:
        return (
            f"{answerable} answerable and {unanswerable} unanswerable question(s); a fit needs at least "
            f"{MIN_FIT_QUESTIONS} of each to move the thresholds every question is decided by; the rule "
            "already in the index stays"
        )
    better = default_does_better(calibration)
    if better is not None:
        default, held = better
        return (
            f"the default rule does better on these questions (balanced accuracy {default:.3f}) than the "
            f"fit does held out within the file ({held:.3f}), so the default stays; with more questions "
            "of your own the fit would be worth more"
        )
    return None


def default_does_better(calibration: dict[str, Any]) -> tuple[float, float] | None:
    """For a fit on one file: the default rule's balanced accuracy on its questions and the fit's
    held out within the file (the reader rule's when the reader is loaded), when the default's is
    the higher; else None. The default was fitted on other questions than an operator's, so both
    are figures on questions the rule was not fitted on, and the higher is the better choice for
    questions to come."""
    in_use = calibration.get("in_use")
    read = calibration.get("reader_rule")
    held = read.get("within_one_file") if read else calibration.get("within_one_file")
    if not held or not in_use or in_use["source"] != "default":
        return None
    if in_use["balanced_accuracy"] <= held["balanced_accuracy"]:
        return None
    return in_use["balanced_accuracy"], held["balanced_accuracy"]


def _validated(validation: dict[str, list[Observation]], rule: Rule) -> list[dict[str, Any]]:
    return [
        {"source": name, **{k: round(v, 4) for k, v in rates(obs, rule).items()}}
        for name, obs in validation.items()
    ]


def _values(rule: Rule) -> dict[str, float | str | None]:
    if isinstance(rule, ReaderRule):
        return rule.to_json()
    return {"similarity": rule.similarity, "coverage": rule.coverage}


def format_report(calibration: dict[str, Any]) -> str:
    def row(label: str, r: dict[str, Any]) -> str:
        near = r.get("refused_near_topic", r.get("refused_removed"))
        off = r.get("refused_off_topic")
        return (
            f"  {label:<30}{r['right']:>7.3f}{r['answered_answerable']:>10.3f}"
            f"{'–' if near is None else f'{near:.3f}':>14}{'–' if off is None else f'{off:.3f}':>12}"
            f"{r['balanced_accuracy']:>10.3f}"
        )

    t = calibration["thresholds"]
    header = f"  {'':<30}{'hit@1':>7}{'answered':>10}{'refused near*':>14}{'refused off':>12}{'balanced':>10}"
    lines = [
        *(f"left out {name}: {why}" for name, why in calibration.get("left_out", {}).items()),
        "(* near-topic questions; for SQuAD, questions asked with their answer sentences removed)",
        f"fitted on {calibration['questions']} questions ({', '.join(calibration['sources'])}) "
        f"for model {calibration['model']}",
        f"thresholds: similarity >= {t['similarity']:.2f}, coverage >= {t['coverage']:.2f} "
        f"(balanced accuracy {calibration['balanced_accuracy']:.3f})",
        "",
    ]
    if calibration["cross_validation"]:
        lines += ["held out (fitted on the other sources, figures on this one):", header]
        for r in calibration["cross_validation"]:
            th = r["thresholds"]
            lines.append(
                row(r["source"], r) + f"   (similarity {th['similarity']:.2f}, coverage {th['coverage']:.2f})"
            )
        lines.append("")
    within = calibration.get("within_one_file")
    if within:
        lines += [
            f"held out within the file ({within['folds']} folds: fitted on four fifths of the questions, "
            "figures on the fifth left out):",
            header,
            row("all questions", within),
            "",
        ]
    in_use = calibration.get("in_use")
    if in_use:
        now = in_use["rule"]
        every = " on every question" if now.get("judges") == EVERY else ""
        reader = f", reader >= {now['reader']:.2f}{every}" if "reader" in now else ""
        if now.get("overrule") is not None:
            reader += f", coverage overruled at reader >= {now['overrule']:.2f}"
        lines += [
            f"in use until now ({in_use['source']}): similarity >= {now['similarity']:.2f}, coverage >= "
            f"{now['coverage']:.2f}{reader}; on the fitting questions:",
            header,
            row("all sources", in_use),
            "",
        ]
    if calibration["validation"]:
        lines += ["validation only (never fitted on), at the thresholds above:", header]
        lines += [row(r["source"], r) for r in calibration["validation"]]
        lines.append("")
    lines += ["on the fitting questions themselves (not a measure of generalisation):", header]
    lines.append(row("all sources", calibration["fitted"]))
    lines += [
        "",
        "risk-coverage trade-off on the fitting questions (both thresholds scaled):",
        "  scale  similarity  coverage  answered(ans)  refused(unans)  coverage  risk",
    ]
    for r in calibration["trade_off"]:
        lines.append(
            f"  {r['scale']:>5.2f}  {r['similarity_threshold']:>10.3f}  {r['coverage_threshold']:>8.3f}  "
            f"{r['answered_answerable']:>13.1%}  {r['refused_unanswerable']:>14.1%}  {r['coverage']:>8.1%}  {r['risk']:>5.1%}"
        )
    read = calibration.get("reader_rule")
    if read:
        judged = "every question" if read.get("judges") == EVERY else "a question asking for a fact"
        by_judges = read.get("balanced_accuracy_by_judges", {})
        lines += [
            "",
            f"reader rule ({read['reader']}), the answer rule while the reader is loaded: the thresholds above "
            f"and, for {judged}, the reader's probability >= {read['threshold']:.2f}",
            "a question refused for coverage alone (asked in other words) is answered when the reader gives "
            f">= {read['overrule']:.2f}"
            if read.get("overrule") is not None
            else "the reader never overrules the coverage threshold (no probability adds answers as often right "
            "as the rule's)",
            f"(fitted on {read['questions']} questions: {', '.join(read['sources'])}; weighted balanced "
            f"accuracy {read['balanced_accuracy']:.3f})"
            if read.get("refitted", True)
            else f"(the reader's own threshold and overrule, kept: fewer than {MIN_READER_QUESTIONS} questions it judges of "
            f"each kind, answerable and not, among the {read['questions']} to refit it on; weighted balanced "
            f"accuracy {read['balanced_accuracy']:.3f})",
        ]
        if len(by_judges) > 1:
            lines.append(
                f"(the reader judging fact questions {by_judges[FACT]:.3f}, every question {by_judges[EVERY]:.3f}; "
                f"every question is chosen only if it fits {EVERY_MARGIN} better, with its threshold refitted)"
            )
        lines.append("")
        held = read.get("within_one_file")
        if held:
            lines += [
                "held out within the file, the reader rule fitted as above on four fifths of the questions:",
                header,
                row("all questions", held),
                "",
            ]
            better = default_does_better(calibration)
            if better is not None:
                lines += [
                    f"The default rule does better on these questions (balanced accuracy {better[0]:.3f}) than "
                    f"the fit does held out ({better[1]:.3f}): such a fit is not stored.",
                    "",
                ]
        if read["cross_validation"]:
            lines += [
                "held out (thresholds and reader fitted on the other sources, figures on this one):",
                header,
            ]
            lines += [row(x["source"], x) for x in read["cross_validation"]]
            lines.append("")
        if read["validation"]:
            lines += ["validation only (never fitted on), at the rule above:", header]
            lines += [row(x["source"], x) for x in read["validation"]]
            lines.append("")
        lines += ["on the fitting questions themselves:", header, row("all sources", read["fitted"])]
    for name, what in (("confidence", "answer confidence"), ("relevance", "citation relevance")):
        model = calibration.get(name)
        if not model:
            lines += [
                "",
                f"{what}: not refitted (fewer than {MIN_LOGISTIC_CASES} cases of each outcome); the one "
                "shipped with the reader stays",
            ]
            continue
        weights = ", ".join(f"{n} {w:+.2f}" for n, w in zip(model["inputs"], model["weights"]))
        floor = f"; citations below {model['floor']:.2f} left out" if "floor" in model else ""
        lines += ["", f"{what}: logistic over {weights}, intercept {model['intercept']:+.2f}{floor}"]
        truth = "right" if name == "confidence" else "holds the answer"
        for label, table in (
            ("held out (each source under the model fitted on the others)", model["held_out"]),
            ("validation only (never fitted on)", model["validation"]),
        ):
            if table:
                lines += [f"reliability, {label}:", f"  probability   count   mean probability   {truth}"]
                lines += [
                    f"  {b['bin']:<10}{b['count']:>8}{b['mean_probability']:>19.3f}{b['true']:>8.3f}"
                    for b in table
                ]
    return "\n".join(lines)


def removed_observations(rows: list[Any], source: str = "squad-train") -> list[Observation]:
    """Observations from ``qa bench removed``'s questions (bench/removed.py ``Asked`` rows): asked
    whole, answerable; asked with the answer removed, unanswerable."""
    return [
        Observation(
            answerable=not r.removed,
            kind="removed" if r.removed else "answerable",
            similarity=r.signals["similarity"],
            coverage=r.signals["coverage"],
            typed=r.signals["typed"] > 0,
            correct=r.ranked,
            source=source,
            reader=r.signals.get("reader"),
            factoid=r.signals.get("factoid", 0.0) > 0,
            answer_score=r.signals["answer_score"],
            citations=r.citations,
            heading=r.signals.get("heading", 0.0) > 0,
        )
        for r in rows
    ]
