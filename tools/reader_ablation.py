"""What the reader adds to the answer rule, and what reading more sentences buys: the thresholds
alone; with the reader judging fact questions (the service) or every question, with and without
its overruling the coverage threshold; on the reader's best over the first 1, 3 or 5 sentences; each
reported on what it was not fitted on.

Fitted on SQuAD's training side (``qa bench removed --articles train``) and our two question files;
reported on SQuAD's held-out articles (answer present: answered and right; answer removed: refused),
on each of our files by cross-validation (fitted on the other sources), on the validation file
(never fitted on), and on bench/practical's documents (never trained or fitted on). Questions are
asked once, reading 5 sentences; each variant only refits the rule. The reader's int8 model scales
its activations by the whole batch it is given, so a sentence read among five gets a slightly
different probability than read alone, as the service reads it: the thresholds fitted here compare
variants; `qa calibrate --squad-v1` fits the service's.

    python -m tools.reader_ablation SQUAD_V1 [--every N] [--cache FILE] [--separation]

``--separation`` prints instead how well each input alone tells the answerable questions from the
unanswerable ones (answer removed, or near-topic), by source and by kind of question: the fact
questions the reader judges, and the others (why, how, yes/no). Its sources include the questions
written about the training articles in other words (tools/written_questions.jsonl, each asked of its
own article), which the variants neither fit on nor report.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.removed import ask_written, run_removed, squad_v2_beside
from qa.answer_type import asks_for_a_fact
from qa.builder import build_index
from qa.cli import load_engine
from qa.config import Settings
from qa.engine import Engine
from qa.evaluation.calibrate import (
    FIT_SETS,
    VALIDATION_SETS,
    Observation,
    rates,
    search,
    search_overrule,
    search_reader_rule,
    source_weights,
)
from qa.evaluation.evaluate import evidence_in, load_eval_set
from qa.pipeline.answerability import EVERY, FACT, ReaderRule, Thresholds
from qa.pipeline.confidence import confidence_inputs
from qa.question import strip_document_phrases
from tools.train_reader import load_written

# name -> (sentences read, the reader judges every question rather than fact questions only)
VARIANTS: dict[str, tuple[int, bool]] = {
    "thresholds + reader on fact questions, 1 sentence (the service)": (1, False),
    "thresholds + reader on every question": (1, True),
    "reading 3 sentences": (3, False),
    "reading 5 sentences": (5, False),
}
# Documents unlike the article, written here and never trained on (bench/practical/): reported, as
# the held-out articles are, to see questions about documents of that kind.
PRACTICAL = Path(__file__).parents[1] / "bench" / "practical"
REPORTED = ["squad-held-out", *FIT_SETS, *VALIDATION_SETS, "practical"]
# Questions written about the training articles in other words (docs/reader.md): asked too, and
# shown in the separation table; neither fitted on nor in the variants' table.
WRITTEN = Path(__file__).with_name("written_questions.jsonl")
# Each input of the decision left out: it always passes, and the rest is fitted again without it.
LEFT_OUT: dict[str, Callable[[Observation], Observation]] = {
    "without the similarity threshold": lambda o: replace(o, similarity=1.0),
    "without the key-word coverage threshold": lambda o: replace(o, coverage=1.0),
    "without the answer type (a value of the kind asked for)": lambda o: replace(o, typed=True),
}


def reader_rule(training: list[Observation], thresholds: Thresholds, judges: str = FACT) -> ReaderRule:
    """The reader rule as `qa calibrate` fits it on ``training``: the reader's threshold, then the
    probability at which it overrules the coverage threshold."""
    rule, _ = search_reader_rule(training, thresholds, judges)
    return replace(rule, overrule=search_overrule(training, rule))


def _named(name: str, rule: ReaderRule) -> str:
    overrule = "never" if rule.overrule is None else f"{rule.overrule:.2f}"
    return f"{name} (reader >= {rule.reader:.2f}, overrules coverage at {overrule})"


def collect(squad_v1: Path, every: int, settings: Settings) -> list[dict[str, Any]]:
    """Every question asked once: its source, whether it is answerable, whether the first passage
    holds the answer, and the signals the decision reads."""
    settings = settings.model_copy(update={"reader_sentences": 5})
    engine = load_engine(settings)
    if engine.reader is None:
        raise SystemExit("the reader is not loaded (QA_READER): nothing to ablate")
    rows: list[dict[str, Any]] = []
    for side in ("train", "held-out"):
        report = run_removed(
            squad_v1, squad_v2_beside(squad_v1), articles=side, every=every, settings=settings
        )
        for r in report["rows"]:
            kind = "removed" if r.removed else "answerable"
            rows.append(
                {
                    "source": f"squad-{side}",
                    "question": r.question,
                    "kind": kind,
                    "correct": r.ranked,
                    "signals": r.signals,
                }
            )
    written = load_written(WRITTEN)
    for asked, result, correct in ask_written(squad_v1, squad_v2_beside(squad_v1), written, settings):
        kind = "answerable" if asked.get("evidence") else "near_topic"
        rows.append(
            {
                "source": "written",
                "question": asked["question"],
                "kind": kind,
                "correct": correct,
                "signals": result.signals,
            }
        )
    for name in (*FIT_SETS, *VALIDATION_SETS):
        rows += _asked(engine, settings.eval_dir / name, name)
    with tempfile.TemporaryDirectory() as folder:
        local = settings.model_copy(
            update={"corpus_dir": PRACTICAL / "corpus", "index_dir": Path(folder) / "index"}
        )
        build_index(local, engine.encoder)
        practical = Engine(local, engine.encoder)
        practical.load()
        rows += _asked(practical, PRACTICAL / "questions.jsonl", "practical")
    return rows


def _asked(engine: Engine, path: Path, source: str) -> list[dict[str, Any]]:
    """Every question of one file asked, as `qa eval` asks it, with every input the decision reads."""
    rows = []
    for item in load_eval_set(path):
        result = engine.ask(item.question, 1, use_cache=False, read_all=True)
        correct = bool(result.ranking) and evidence_in(result.ranking[0].text, item.evidence)
        rows.append(
            {
                "source": source,
                "question": item.question,
                "kind": item.kind,
                "correct": correct,
                "signals": result.signals,
            }
        )
    return rows


def observations(rows: list[dict[str, Any]], depth: int) -> dict[str, list[Observation]]:
    by_source: dict[str, list[Observation]] = {}
    for row in rows:
        s = row["signals"]
        by_source.setdefault(row["source"], []).append(
            Observation(
                answerable=row["kind"] == "answerable",
                kind=row["kind"],
                similarity=s["similarity"],
                coverage=s["coverage"],
                typed=s["typed"] > 0,
                correct=row["correct"],
                source=row["source"],
                reader=s.get(f"reader@{depth}", 0.0),
                factoid=asks_for_a_fact(strip_document_phrases(row["question"])),
                answer_score=s["answer_score"],
            )
        )
    return by_source


def _decision_inputs(obs: list[Observation]) -> np.ndarray:
    """Every input of the decision at once: the confidence's (similarity, coverage, answer score,
    fact question, the reader's log-odds) and the answer type."""
    inputs = confidence_inputs(
        np.array([o.similarity for o in obs]),
        np.array([o.coverage for o in obs]),
        np.array([o.answer_score for o in obs]),
        np.array([o.factoid for o in obs]),
        np.array([o.reader or 0.0 for o in obs]),
    ).reshape(len(obs), -1)
    return np.column_stack([inputs, [o.typed for o in obs]])


def logistic_decision(training: list[Observation], reported: list[Observation]) -> dict[str, float]:
    """The alternative to the rule: one logistic model over every input, fitted on ``training``
    (each source weighing the same, answerable and not alike), answering where its probability
    passes the cut with the best balanced accuracy there; the rates on ``reported``."""
    from sklearn.linear_model import LogisticRegression

    x = _decision_inputs(training)
    y = np.array([o.answerable for o in training])
    weights = source_weights(training)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x, y, sample_weight=weights)
    scores = model.decision_function(x)
    best, cut = -1.0, 0.0
    for candidate in np.quantile(scores, np.linspace(0.01, 0.99, 197)):
        answered = scores >= candidate
        balanced = (
            (weights * (answered & y)).sum() / (weights * y).sum()
            + (weights * (~answered & ~y)).sum() / (weights * ~y).sum()
        ) / 2
        if balanced > best:
            best, cut = balanced, float(candidate)
    answered = model.decision_function(_decision_inputs(reported)) >= cut
    answerable = np.array([o.answerable for o in reported])
    right = answerable & np.array([o.correct for o in reported])
    figures = {
        "right": float((answered & right).sum() / answerable.sum()),
        "answered_answerable": float((answered & answerable).sum() / answerable.sum()),
    }
    for kind in sorted({o.kind for o in reported if not o.answerable}):
        rows = np.array([o.kind == kind for o in reported])
        figures[f"refused_{kind}"] = float((~answered & rows).sum() / rows.sum())
    unanswerable = ~answerable
    figures["balanced_accuracy"] = (
        figures["answered_answerable"] + float((~answered & unanswerable).sum() / unanswerable.sum())
    ) / 2
    return figures


def _row(name: str, label: str, r: dict[str, float]) -> str:
    refused = r.get("refused_removed", r.get("refused_near_topic", float("nan")))
    return (
        f"| {name} | {label} | {r['right']:.3f} | {r['answered_answerable']:.3f} | {refused:.3f} | "
        f"{r.get('refused_off_topic', float('nan')):.3f} | {r['balanced_accuracy']:.3f} |"
    )


SEPARATED_BY = ("similarity", "coverage", "reader", "answer_score")


def separation(sources: dict[str, list[Observation]]) -> str:
    """The AUC of each input, answerable against answer-removed or near-topic questions (0.5: it
    tells them apart no better than chance; below: the unanswerable ones score higher)."""
    from sklearn.metrics import roc_auc_score

    lines = [
        "| source | questions | answerable / not | " + " | ".join(SEPARATED_BY) + " |",
        "|---|---|---|" + "---|" * len(SEPARATED_BY),
    ]
    for source in ("squad-train", "written", *REPORTED):
        for judged, kind in ((True, "fact (the reader judges)"), (False, "why, how, yes/no")):
            obs = [o for o in sources.get(source, []) if o.judged == judged and o.kind != "off_topic"]
            labels = [o.answerable for o in obs]
            if len(set(labels)) < 2:
                continue
            aucs = [roc_auc_score(labels, [getattr(o, name) or 0.0 for o in obs]) for name in SEPARATED_BY]
            lines.append(
                f"| {source} | {kind} | {sum(labels)} / {len(labels) - sum(labels)} | "
                + " | ".join(f"{auc:.3f}" for auc in aucs)
                + " |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad_v1", type=Path)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--cache", type=Path, help="the questions' signals are kept here and reused")
    parser.add_argument("--json", action="store_true", help='print {"table": ...} (docs/tables.py reads it)')
    parser.add_argument("--separation", action="store_true", help="each input's AUC instead of the variants")
    args = parser.parse_args(argv)
    if args.cache and args.cache.is_file():
        rows = json.loads(args.cache.read_text(encoding="utf-8"))
    else:
        rows = collect(args.squad_v1, args.every, Settings())
        if args.cache:
            args.cache.write_text(json.dumps(rows), encoding="utf-8")
    fitting = ["squad-train", *FIT_SETS]
    sources = observations(rows, Settings().reader_sentences)
    if args.separation:
        table = separation(sources)
        print(json.dumps({"table": table}, indent=2) if args.json else table)
        return
    lines = [
        "| variant | reported on | hit@1 | answered | refused removed / near-topic | refused off-topic | balanced |",
        "|---|---|---|---|---|---|---|",
    ]
    for held in [source for source in REPORTED if source in sources]:  # an older cache lacks some
        label = held + (" (cross-validated)" if held in FIT_SETS else "")
        thresholds, _ = search([o for s in FIT_SETS if s != held for o in sources[s]])
        lines.append(_row("thresholds alone (no reader)", label, rates(sources[held], thresholds)))
        for name, (depth, everything) in VARIANTS.items():
            read = observations(rows, depth)
            training = [o for s in fitting if s != held for o in read[s]]
            rule = reader_rule(training, thresholds, EVERY if everything else FACT)
            lines.append(_row(_named(name, rule), label, rates(read[held], rule)))
            if depth == 1 and not everything:  # the service, the reader never overruling the coverage
                rule = replace(rule, overrule=None)
                lines.append(_row(f"{name} without the overrule", label, rates(read[held], rule)))
        training = [o for s in fitting if s != held for o in sources[s]]
        lines.append(
            _row(
                "one logistic decision over every input (instead of the rule)",
                label,
                logistic_decision(training, sources[held]),
            )
        )
        for name, change in LEFT_OUT.items():
            read = {source: [change(o) for o in obs] for source, obs in sources.items()}
            without, _ = search([o for s in FIT_SETS if s != held for o in read[s]])
            training = [o for s in fitting if s != held for o in read[s]]
            rule = reader_rule(training, without)
            lines.append(_row(_named(f"the service {name}", rule), label, rates(read[held], rule)))

    table = "\n".join(lines)
    print(json.dumps({"table": table}, indent=2) if args.json else table)


if __name__ == "__main__":
    main()
