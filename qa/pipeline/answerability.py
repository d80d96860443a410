"""Answerability: whether the documents answer the question — the answer rule, its evidence for the
best passage (closeness, key-word coverage, a value of the kind asked for) and, for a question asking
for a fact, the reader's verdict (qa/reader.py: a cross-encoder trained here that reads the question
with the passage's best sentences). The rule is written once (``admits``), for one question or, as
`qa calibrate` fits it, for many."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.answer_type import asks_for_a_fact, expected_type
from qa.pipeline.confidence import Calibrated, calibrated_for
from qa.pipeline.fusion import Candidate
from qa.pipeline.query import Query
from qa.pipeline.refusal import KEY_WORD_RARITY, plain_reason
from qa.pipeline.sentences import SentenceScore
from qa.question import rarity
from qa.store import LoadedIndex, calibration_for
from qa.terms import SOFT_HIGH, analyze_one, content_words, stems

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.pipeline.stage import Work
    from qa.reader import Reader, Reading

log = logging.getLogger(__name__)

# A passage holding (nearly) every key word of the question needs only this share of the similarity
# threshold: that threshold is there for passages that share some words but not the meaning.
FULL_COVERAGE = 0.9
FULL_COVERAGE_SIMILARITY = 0.5
# The sentence that holds the value asked for must score at least this share of the passage's best.
TYPED_SHARE = 0.5


@dataclass(frozen=True)
class Thresholds:
    """Abstention: answer only when the best passage is close enough AND covers the question, and
    holds a value of the type asked for."""

    similarity: float  # max(passage cosine, best sentence cosine)
    coverage: float  # rarity-weighted share of the question's content words found in the passage
    source: str = "default"

    def similarity_needed(self, coverage: float) -> float:
        """The similarity threshold, lowered for a passage that holds the question's key words."""
        return self.similarity * (FULL_COVERAGE_SIMILARITY if coverage >= FULL_COVERAGE else 1.0)

    def admit(self, similarity: float, coverage: float, typed: bool) -> bool:
        """The answer rule for one question (the service's)."""
        return bool(admits(similarity, coverage, typed, self.similarity, self.coverage))


def admits(similarity: Any, coverage: Any, typed: Any, min_similarity: Any, min_coverage: Any) -> Any:
    """The thresholds' rule, written once: for one question, or (numpy arrays, broadcast) for many
    questions under many thresholds at once, as `qa calibrate` searches them. A passage that holds
    nearly all of the question's key words needs less similarity."""
    factor = np.where(np.asarray(coverage) >= FULL_COVERAGE, FULL_COVERAGE_SIMILARITY, 1.0)
    return (similarity >= min_similarity * factor) & (coverage >= min_coverage) & typed


def short_of_coverage(
    similarity: Any, coverage: Any, typed: Any, min_similarity: Any, min_coverage: Any
) -> Any:
    """The thresholds' rule refuses only for coverage: the passage is close enough and holds a value
    of the kind asked for, but too few of the question's key words (the question in other words).
    Written once, as ``admits``, for one question or many."""
    return ~admits(similarity, coverage, typed, min_similarity, min_coverage) & admits(
        similarity, 0.0, typed, min_similarity, 0.0
    )


# Which questions the reader judges: those asking for a fact (who, what, when, how many ...), or every
# question, why, how and yes/no too. `qa calibrate` chooses, on the questions it is given.
FACT, EVERY = "fact", "every"
JUDGES = (FACT, EVERY)


@dataclass(frozen=True)
class ReaderRule:
    """The answer rule when the reader is there: the thresholds' rule, and, for a question the reader
    judges, the reader's probability that the passage states the answer at least ``reader``. By
    default it judges questions asking for a fact (``answer_type.asks_for_a_fact``) and leaves why,
    how and yes/no questions to the thresholds: on the article's questions it doubts their answers
    (docs/reader.md); `qa calibrate` lets it judge every question where the questions it is fitted
    on say so (``judges``).

    A question the thresholds refuse only for coverage (``short_of_coverage``: asked in other words
    than the passage's) is answered when the reader is sure the passage's sentence states the answer:
    its probability at least ``overrule`` (None: never). Any question, fact or not: where the reader
    doubts a why or how question's answer, its doubt is not to be trusted, but it is seldom sure of a
    sentence that does not answer one. `qa calibrate` fits it (``calibrate.search_overrule``)."""

    similarity: float
    coverage: float
    reader: float  # the least probability the reader must give a judged question's best sentence
    source: str = "default"
    judges: str = FACT  # FACT or EVERY
    overrule: float | None = None  # the probability at which the reader overrules the coverage threshold

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.similarity, self.coverage, self.source)

    def judges_question(self, factoid: bool) -> bool:
        """Whether the reader's verdict decides a question (``factoid``: it asks for a fact)."""
        return factoid or self.judges == EVERY

    def may_overrule(self, similarity: float, coverage: float, typed: bool) -> bool:
        """Whether the reader's verdict can answer a question the thresholds refuse for coverage."""
        return self.overrule is not None and bool(
            short_of_coverage(similarity, coverage, typed, self.similarity, self.coverage)
        )

    def admit(self, similarity: float, coverage: float, typed: bool, factoid: bool, read: float) -> bool:
        """The answer rule for one question (``read``: the reader's best probability)."""
        if self.thresholds.admit(similarity, coverage, typed):
            return not self.judges_question(factoid) or read >= self.reader
        return self.may_overrule(similarity, coverage, typed) and read >= (self.overrule or 0.0)

    def to_json(self) -> dict[str, float | str | None]:
        return {
            "similarity": self.similarity,
            "coverage": self.coverage,
            "reader": self.reader,
            "judges": self.judges,
            "overrule": self.overrule,
        }


Rule = Thresholds | ReaderRule


def rule_warnings(rule: Rule, reader: Reader | None) -> list[str]:
    """What an operator should fix in the rule in use: a reader with no threshold fitted for it (no
    ``rule.json`` beside it, no calibration of this index for it) lets every fact answer through."""
    if reader is None or not isinstance(rule, ReaderRule) or rule.reader > 0.0:
        return []
    return [
        f"the reader {reader.name} has no fitted threshold (no rule.json beside it, and this index is "
        "not calibrated for it), so it refuses nothing: fit one with `qa calibrate --squad-v1 "
        "SQUAD_V1 --default-out <the reader's folder>/rule.json`, or run `qa calibrate` on your own "
        "questions (docs/evaluation.md)"
    ]


def thresholds_for(index: LoadedIndex, settings: Settings, reader: Reader | None = None) -> Rule:
    """The answer rule: the calibrated thresholds when the manifest holds some for this model, else
    the settings' defaults; with the reader, and its threshold (calibrated for this reader, else
    the one shipped with it), the reader rule."""
    calibration = calibration_for(index.manifest, index.model)
    if calibration:
        values = calibration["thresholds"]
        thresholds = Thresholds(values["similarity"], values["coverage"], source="calibrated")
    else:
        thresholds = Thresholds(settings.abstain_similarity, settings.abstain_coverage)
    if reader is None:
        return thresholds
    stored = (calibration or {}).get("reader_rule")
    if stored and stored.get("reader") == reader.name:
        judges = stored.get("judges", FACT)
        # a calibration made before the reader could overrule the coverage: the reader's own
        overrule = stored["overrule"] if "overrule" in stored else reader.default_overrule
        return ReaderRule(
            thresholds.similarity, thresholds.coverage, stored["threshold"], "calibrated", judges, overrule
        )
    return own_rule(reader, thresholds)


def own_rule(reader: Reader, thresholds: Thresholds) -> ReaderRule:
    """The reader rule on ``thresholds`` with the reader's own threshold, judges and overrule (its
    ``rule.json``, fitted when it was made): what a calibration on too few questions keeps."""
    return ReaderRule(
        thresholds.similarity,
        thresholds.coverage,
        reader.default_threshold,
        thresholds.source,
        reader.default_judges,
        reader.default_overrule,
    )


def holds_value(scores: list[SentenceScore], share: float = TYPED_SHARE) -> bool:
    """A sentence of the passage holds the kind of value asked for (a number, a date) AND is itself
    about the question: a "how many stations" question is not answered by a figure for the economy
    in the next sentence."""
    best = max((s.score for s in scores), default=0.0)
    return any(s.typed and s.score >= share * best for s in scores)


@dataclass(frozen=True)
class Evidence:
    """What the answer rule decides on, for the best passage."""

    similarity: float  # max(passage cosine, best sentence cosine)
    coverage: float  # rarity-weighted share of the question's content words found in the passage
    # a sentence about the question holds the kind of value asked for (or none is asked), and the
    # passage holds every number the question gives
    typed: bool
    reader: float | None  # the reader's best probability over the sentences it read (None: no reader)
    factoid: bool = False  # the question asks for a fact (who, what, when, how many ...)
    heading: str | None = None  # the passage's section asks this question in its heading (an FAQ's entry)
    numbers_missing: tuple[str, ...] = ()  # numbers of the question the passage does not hold ("1837")


@dataclass(frozen=True)
class Decision:
    """Answerability's output: whether to answer from the best passage, and why."""

    rule: Rule
    evidence: Evidence
    readings: dict[tuple[int, int], Reading]  # the reader's, by the sentence's offsets in the document
    failed: str | None  # the condition of the rule that failed (None: answer)
    numbers: str  # the decision in numbers (explain)
    reason: str | None  # why it refused, for the person who asked (None: answered)
    # the confidence and relevance models fitted for this index and reader (qa/pipeline/confidence.py)
    calibrated: Calibrated = Calibrated()

    @property
    def answered(self) -> bool:
        return self.failed is None


class Answerability:
    """The answer rule over the best passage's evidence, with the reader's verdict on a fact
    question when the rest admits it (the reader costs more than the rest of a question)."""

    name = "answerability"

    def __init__(
        self,
        settings: Settings,
        reader: Reader | None | bool = True,
        *,
        typed_share: float = TYPED_SHARE,
    ) -> None:
        """``reader``: True loads the one the settings name at ``warm_up``; a Reader, or None for
        none. ``typed_share`` other than the default is an ablation (tools/signal_ablation.py)."""
        self.settings = settings
        self._load = reader is True
        self.reader: Reader | None = None if reader is True else (reader or None)
        self.read = settings.reader_sentences  # how many of the best passage's sentences it reads
        self.typed_share = typed_share

    def warm_up(self) -> None:
        if self._load:
            from qa.reader import load_reader

            # The reader shares the cores with the encoder and, under --workers, with the other workers.
            threads = max(1, len(os.sched_getaffinity(0)) // self.settings.workers)
            self.reader = load_reader(self.settings.reader, threads)
            self._load = False
            if self.reader is not None and self.reader.default_threshold <= 0.0:
                log.warning(
                    "the reader in %s has no rule.json: unless `qa calibrate` fits a threshold for it, "
                    "it refuses nothing (/readyz says so)",
                    self.reader.folder,
                )

    def describe(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "about": "the answer rule over the best passage's evidence, and the reader's verdict",
            "model": self.reader.name if self.reader else None,
        }

    def rule_for(self, index: LoadedIndex) -> Rule:
        return thresholds_for(index, self.settings, self.reader)

    def run(self, work: Work) -> None:
        index, query, top = work.index, work.query, work.top
        rule = self.rule_for(index)
        coverage = passage_coverage(index, query, top.position) if top else 0.0
        similarity = top.similarity if top else 0.0
        sentences = (top.sentences or []) if top else []
        # every number the question gives, held by this passage itself, not only somewhere else in
        # its document (both measured: docs/evaluation.md, "Numbers taken as they are"), unless it
        # is a quantity held against a limit the passage states ("my 15 year old", "over 18 only")
        passage_stems = index.passage_terms(top.position)[0] if top else set()
        top_text = index.passages[top.position].text if top else ""
        missing = (
            tuple(index.lexicon.numbers_missing(query.words, passage_stems, query.text, top_text))
            if top
            else ()
        )
        typed = holds_value(sentences, self.typed_share) and not missing
        factoid = asks_for_a_fact(query.text)
        judged = isinstance(rule, ReaderRule) and rule.judges_question(factoid)
        heading = asked_by_heading(index, query, top) if top and (judged or work.read_all) else None
        # read even when the heading decides: the confidence and the short answer use the reading
        thresholds = rule.thresholds if isinstance(rule, ReaderRule) else rule
        decides = (judged and thresholds.admit(similarity, coverage, typed)) or (
            isinstance(rule, ReaderRule) and rule.may_overrule(similarity, coverage, typed)
        )
        readings = (
            _read(index, query, top, sentences, self.reader, self.read)
            if decides or work.read_all or work.explain
            else {}
        )
        best = max((r.probability for r in readings.values()), default=None)
        evidence = Evidence(similarity, coverage, typed, best, factoid, heading, missing)
        failed, numbers = _decide(index, query, top, evidence, rule)
        reason = None if failed is None else plain_reason(index, query, top, failed, work.scope, missing)
        calibrated = calibrated_for(index, self.reader)
        work.decision = Decision(rule, evidence, readings, failed, numbers, reason, calibrated)


def passage_coverage(index: LoadedIndex, query: Query, position: int) -> float:
    return index.lexicon.coverage(query.words, *index.passage_terms(position))


def asked_by_heading(index: LoadedIndex, query: Query, top: Candidate) -> str | None:
    """The question the passage's section asks in its heading ("## How long does shipping take?",
    each entry of an FAQ file), when it is the question asked: the heading holds the question's key
    words and the question the heading's (the same words, or words as close as "centres" and
    "centers"). Its author wrote the section as the answer to that question, so the reader, which
    judges whether a sentence states the fact asked for, need not. A heading that adds a key word
    ("... shipping to Canada ...") is another question, and the reader decides."""
    heading = index.passages[top.position].heading.rpartition(" › ")[2].strip()
    if not heading.endswith("?") or not query.words:
        return None
    terms = (set(analyze_one(heading)), index.lexicon.ids(heading))
    if index.lexicon.coverage(query.words, *terms) < FULL_COVERAGE:
        return None
    asked = {word.stem for word in query.words}
    vectors = np.stack([word.vector for word in query.words])
    lexicon = index.lexicon
    keys = [word for word in content_words(heading) if rarity(word) >= KEY_WORD_RARITY]
    for word, stem in zip(keys, stems(keys)):
        known = lexicon.word_ids.get(word)
        if stem not in asked and (
            known is None or float((vectors @ lexicon.vectors[known]).max()) < SOFT_HIGH
        ):
            return None
    return heading


def _read(
    index: LoadedIndex,
    query: Query,
    top: Candidate | None,
    scores: list[SentenceScore],
    reader: Reader | None,
    read: int,
) -> dict[tuple[int, int], Reading]:
    """The reader's reading of the ``read`` best sentences of the best passage (by the sentence
    score that also chooses the answer span), in one model call, by the sentence's offsets."""
    if reader is None or top is None or not query.words or not scores:
        return {}
    order = sorted(range(len(scores)), key=lambda i: -scores[i].score)[: max(1, read)]
    text = index.documents[index.passages[top.position].doc_id].text
    best = [scores[i] for i in order]
    # the sentence before each in its passage: what a reader trained with the context reads too
    before = [text[scores[i - 1].start : scores[i - 1].end] if i > 0 else "" for i in order]
    readings = reader.readings([(query.text, text[s.start : s.end]) for s in best], before)
    return {(s.start, s.end): r for s, r in zip(best, readings)}


def _read_at_depths(probabilities: list[float]) -> dict[str, float]:
    """The reader's best probability over the first 1, 3 and 5 sentences it read (in the order it
    read them), for measuring quality against cost from one run."""
    return {f"reader@{k}": max(probabilities[:k]) for k in (1, 3, 5)} if probabilities else {}


def _decide(
    index: LoadedIndex, query: Query, top: Candidate | None, evidence: Evidence, rule: Rule
) -> tuple[str | None, str]:
    """Which condition of the answer rule failed (None: answer), and the decision in numbers."""
    if not query.words:  # "the", "what is it", "?": nothing to look for, so nothing can match it
        return "no words", "the question has no content word to look for (only stop words or signs)"
    if top is None:
        return "nothing", "no passage in the corpus shares anything with the question"
    thresholds = rule.thresholds if isinstance(rule, ReaderRule) else rule
    similarity, coverage, typed = evidence.similarity, evidence.coverage, evidence.typed
    needed = thresholds.similarity_needed(coverage)
    if thresholds.admit(similarity, coverage, typed):
        lowered = ", lowered because the passage holds the question's key words"
        numbers = (
            f"the best passage has similarity {similarity:.2f} (threshold "
            f"{needed:.2f}{lowered if needed < thresholds.similarity else ''}) and covers "
            f"{_share(coverage, thresholds.coverage)} of the question's key words (threshold "
            f"{_share(thresholds.coverage, coverage)})"
        )
        if isinstance(rule, ReaderRule) and rule.judges_question(evidence.factoid):
            if evidence.heading is not None:
                asked = f"its section's heading asks this question (“{evidence.heading}”)"
                return None, f"answered: {numbers}, and {asked}"
            read = evidence.reader or 0.0  # a passage with no sentence to read states nothing
            verdict = (
                f"the reader gives {_figure(read, rule.reader)} that it states the fact asked for (threshold "
                f"{_figure(rule.reader, read)})"
            )
            if read < rule.reader:
                return "reader", f"no passage in the corpus answers this: {numbers}, but {verdict}"
            return None, f"answered: {numbers}, and {verdict}"
        return None, f"answered: {numbers}"
    # Refused: say which condition of the rule failed first.
    if similarity < needed:
        return "similarity", (
            f"no passage in the corpus answers this: the closest passage has similarity "
            f"{_figure(similarity, needed)}, below the threshold {_figure(needed, similarity)}"
        )
    if coverage < thresholds.coverage:
        as_asked = {word.stem.lower(): word.word for word in query.words}  # "toothache", not "toothach"
        unknown = [as_asked.get(stem, stem) for stem in index.lexicon.unknown(query.terms)]
        missing = f" (never used in the corpus: {', '.join(unknown)})" if unknown else ""
        covers = (
            f"the closest passage covers {_share(coverage, thresholds.coverage)} of the question's key "
            f"words, below the threshold {_share(thresholds.coverage, coverage)}{missing}"
        )
        overrule = (
            rule.overrule
            if isinstance(rule, ReaderRule) and rule.may_overrule(similarity, coverage, typed)
            else None
        )
        # asked in other words than the passage's: the reader, when sure enough, answers it
        if overrule is not None:
            read = evidence.reader or 0.0
            verdict = (
                f"the reader gives {_figure(read, overrule)} that it states the answer "
                f"({_figure(overrule, read)} or more overrules the coverage threshold)"
            )
            if read >= overrule:
                return None, f"answered: {covers}, but {verdict}"
            return "coverage", f"no passage in the corpus answers this: {covers}, and {verdict}"
        return "coverage", f"no passage in the corpus answers this: {covers}"
    if evidence.numbers_missing:
        return "number", (
            f"no passage in the corpus answers this: the closest passage does not hold "
            f"{', '.join(evidence.numbers_missing)}, which the question gives"
        )
    return "value", _no_value(query)


def _figure(value: float, other: float) -> str:
    """A value beside the threshold it is compared with, to two decimals, or three when two would
    print them equal ("0.576, below the threshold 0.580", not "0.58, below the threshold 0.58")."""
    return f"{value:.2f}" if f"{value:.2f}" != f"{other:.2f}" else f"{value:.3f}"


def _share(value: float, other: float) -> str:
    """The same as a percentage: "57.6%, below the threshold 58.0%"."""
    return f"{value:.0%}" if f"{value:.0%}" != f"{other:.0%}" else f"{value:.1%}"


def _no_value(query: Query) -> str:
    return (
        f"no passage in the corpus answers this: the question asks for a {expected_type(query.text)} "
        f"and the closest passage gives none"
    )
