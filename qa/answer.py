"""From ranked candidates to a cited answer: the answer sentence, the citations, or a refusal."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.answer_type import asks_for_a_fact, expected_type
from qa.index import LoadedIndex
from qa.question import rarity
from qa.ranking import SIGNALS, Candidate, SentenceScore, score_sentences
from qa.retrieve import Query, Scope
from qa.terms import Lexicon

if TYPE_CHECKING:
    from qa.reader import Reader, Reading

# An adjacent sentence joins the answer only when it brings this much more of the question's words.
SPAN_GAIN = 0.25
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


@dataclass(frozen=True)
class ReaderRule:
    """The answer rule when the reader is there: the thresholds' rule, and, for a question asking
    for a fact (``answer_type.asks_for_a_fact``), the reader's probability that the passage states
    it at least ``reader``. Why, how and yes/no questions are left to the thresholds: the reader was
    not trained on them and doubts their answers (docs/reader.md). Fitted by `qa calibrate`."""

    similarity: float
    coverage: float
    reader: float  # the least probability the reader must give a fact question's best sentence
    source: str = "default"

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.similarity, self.coverage, self.source)

    def admit(self, similarity: float, coverage: float, typed: bool, factoid: bool, read: float) -> bool:
        return self.thresholds.admit(similarity, coverage, typed) and (not factoid or read >= self.reader)

    def to_json(self) -> dict[str, float]:
        return {"similarity": self.similarity, "coverage": self.coverage, "reader": self.reader}


Rule = Thresholds | ReaderRule

# What the confidence reads: the evidence the answer rule decides on, and the answer sentence's score.
CONFIDENCE_INPUTS = ("similarity", "coverage", "answer_score", "factoid", "reader_logit")
# What a citation's relevance reads, all already computed for the ranking: its passage's closeness
# to the question, its BM25 score over the question's best, and its ranking score. (The key-word
# coverage of each cited passage instead of BM25 cost 1.1 ms a question: qa bench profile.)
RELEVANCE_INPUTS = ("similarity", "keyword", "score")


def confidence_inputs(
    similarity: Any, coverage: Any, answer_score: Any, factoid: Any, reader: Any
) -> np.ndarray:
    """The confidence's inputs (``CONFIDENCE_INPUTS``) for one answer, or (numpy arrays) for many,
    as `qa calibrate` fits them: the reader counts as its log-odds, for fact questions only (the
    service reads the others only when asked to explain)."""
    read = np.clip(np.asarray(reader, dtype=float), 1e-3, 1 - 1e-3)
    factoid = np.asarray(factoid, dtype=float)
    logit = np.log(read / (1 - read)) * factoid
    columns = [similarity, coverage, answer_score, factoid, logit]
    return np.stack([np.asarray(c, dtype=float) for c in columns], axis=-1)


@dataclass(frozen=True)
class Logistic:
    """A probability from named inputs, fitted by `qa calibrate` (logistic regression) on questions
    whose answers are known: the answers' confidence (that an answer is right) and the citations'
    relevance (that a passage holds the answer). docs/evaluation.md has their reliability tables."""

    inputs: tuple[str, ...]
    weights: tuple[float, ...]  # one per input
    intercept: float

    def of(self, values: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(values) @ np.asarray(self.weights) + self.intercept)))

    def to_json(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "weights": list(self.weights), "intercept": self.intercept}

    @classmethod
    def from_json(cls, stored: dict[str, Any] | None, inputs: tuple[str, ...]) -> Logistic | None:
        """None for a model of other inputs (or none)."""
        if not stored or stored.get("inputs") != list(inputs):
            return None
        return cls(inputs, tuple(float(w) for w in stored["weights"]), float(stored["intercept"]))


@dataclass(frozen=True)
class Calibrated:
    """What `qa calibrate` fits beside the answer rule (None: not fitted)."""

    confidence: Logistic | None = None
    relevance: Logistic | None = None
    relevance_floor: float = 0.0  # citations less relevant than this are left out (never the answer's)


@dataclass
class Short:
    """The words of the answer sentence that answer a fact question, as the reader points at them."""

    text: str  # verbatim document text at [start:end], inside the answer sentence
    start: int
    end: int
    probability: float  # the reader's, that its sentence states the answer


@dataclass
class Span:
    text: str
    doc_id: str
    passage_id: str
    start: int
    end: int
    score: float
    confidence: float | None = None  # P(right), calibrated; None without a fitted confidence
    short: Short | None = None


@dataclass
class Citation:
    rank: int
    passage_id: str
    doc_id: str
    title: str
    source: str | None
    text: str
    start: int
    end: int
    score: float
    page: int | None = None  # where the passage begins, in a paged document (PDF)
    relevance: float | None = None  # P(the passage holds the answer), calibrated; None: not fitted


@dataclass
class Result:
    question: str
    answered: bool
    answer: Span | None
    citations: list[Citation]
    reason: str | None
    index_fingerprint: str
    explain: dict[str, Any] | None = None
    # Internal, for evaluation and calibration: the signals and the ranking even when refusing.
    signals: dict[str, float] = field(default_factory=dict)
    ranking: list[Citation] = field(default_factory=list)
    cached: bool = False  # served from the engine's answer cache
    relevance_inputs: list[tuple[float, float, float]] = field(default_factory=list)  # per ranking row

    def to_json(self, explain: bool = False) -> dict[str, Any]:
        body = asdict(self)
        body.pop("signals")
        body.pop("ranking")
        body.pop("cached")
        body.pop("relevance_inputs")
        if not explain:
            body.pop("explain")
        return body


def answer(
    index: LoadedIndex,
    query: Query,
    ranked: list[Candidate],
    *,
    top_k: int,
    thresholds: Rule,
    explain: bool = False,
    scope: Scope | None = None,
    reader: Reader | None = None,
    read: int = 1,
    read_all: bool = False,
    calibrated: Calibrated = Calibrated(),
) -> Result:
    """Pick the answer span inside the best passage, or refuse when the evidence is too weak.
    ``reader`` reads the question with the ``read`` best sentences of that passage when its verdict
    decides: a fact question the thresholds admit (``read_all`` or ``explain``: every question, to
    measure or show it)."""
    top = ranked[0] if ranked else None
    coverage = passage_coverage(index, query, top.position) if top else 0.0
    similarity = top.similarity if top else 0.0
    sentence_scores: list[SentenceScore] = []
    if top is not None:  # scored when reranked; else (no rerank stage) now
        sentence_scores = top.sentences or score_sentences(index, [top.position], query)[0]
    typed = holds_value(sentence_scores)
    factoid = asks_for_a_fact(query.text)
    # The reader costs more than the rest of a question: it reads only when its verdict can decide.
    decides = (
        isinstance(thresholds, ReaderRule)
        and factoid
        and thresholds.thresholds.admit(similarity, coverage, typed)
    )
    readings = (
        _read(index, query, top, sentence_scores, reader, read) if decides or read_all or explain else {}
    )
    evidence = Evidence(
        similarity, coverage, typed, max((r.probability for r in readings.values()), default=None), factoid
    )
    failed, reason = _decide(index, query, top, evidence, thresholds)
    confidence = calibrated.confidence  # its inputs are computed only when there is one
    inputs = (
        None
        if confidence is None
        else confidence_inputs(
            similarity,
            coverage,
            max((s.score for s in sentence_scores), default=0.0),
            factoid,
            evidence.reader if evidence.reader is not None else 0.5,  # unread: neutral
        )
    )
    answered = failed is None
    span: Span | None = None
    if top is not None:
        passage = index.passages[top.position]
        if answered:
            text = index.documents[passage.doc_id].text
            terms = index.sentence_terms(top.position)
            start, end, score = choose_span(sentence_scores, terms, index.lexicon, query)
            certainty = (
                None if confidence is None or inputs is None else round(float(confidence.of(inputs)), 4)
            )
            span = Span(
                text=text[start:end],
                doc_id=passage.doc_id,
                passage_id=passage.passage_id,
                start=start,
                end=end,
                score=round(score, 4),
                confidence=certainty,
                short=short_answer(text, start, end, readings) if factoid else None,
            )
    cited = ranked[:top_k]
    relevance_inputs = [(c.similarity, c.signals.get("keyword", 0.0), c.score) for c in cited]
    relevant = calibrated.relevance.of(np.array(relevance_inputs)) if calibrated.relevance and cited else None
    ranking = [
        _citation(index, c, None if relevant is None else round(float(relevant[i]), 4))
        for i, c in enumerate(cited)
    ]
    # the answer's passage always; the others when relevant enough (a passage about something else
    # does not fill the list because top_k asked for more)
    shown = [
        c
        for i, c in enumerate(ranking)
        if i == 0 or c.relevance is None or c.relevance >= calibrated.relevance_floor
    ]
    result = Result(
        question=query.question,
        answered=answered,
        answer=span,
        citations=shown if answered else [],
        reason=None if failed is None else plain_reason(index, query, top, failed, scope),
        index_fingerprint=index.fingerprint,
        signals={
            "similarity": similarity,
            "coverage": coverage,
            "fused": top.fused if top else 0.0,
            "answer_coverage": max((s.coverage for s in sentence_scores), default=0.0),
            "answer_score": max((s.score for s in sentence_scores), default=0.0),
            "typed": 1.0 if typed else 0.0,
            "factoid": 1.0 if evidence.factoid else 0.0,
            **({} if evidence.reader is None else {"reader": evidence.reader}),
            **_read_at_depths([r.probability for r in readings.values()]),
        },
        ranking=ranking,
        relevance_inputs=relevance_inputs,
    )
    if explain:
        result.explain = _explanation(
            index,
            query,
            ranked[: max(top_k, 5)],
            sentence_scores,
            thresholds,
            evidence,
            readings,
            reason,
            answered,
        )
        result.explain["confidence"] = (
            None
            if confidence is None or inputs is None
            else {
                "inputs": dict(zip(CONFIDENCE_INPUTS, np.round(inputs, 4).tolist())),
                "weights": dict(zip(CONFIDENCE_INPUTS, confidence.weights)),
                "intercept": confidence.intercept,
                "value": round(float(confidence.of(inputs)), 4),
            }
        )
        result.explain["scope"] = (
            None if scope is None else {**scope.to_json(), "documents": scope.documents(index)}
        )
    return result


def holds_value(scores: list[SentenceScore]) -> bool:
    """A sentence of the passage holds the kind of value asked for (a number, a date) AND is itself
    about the question: a "how many stations" question is not answered by a figure for the economy
    in the next sentence."""
    best = max((s.score for s in scores), default=0.0)
    return any(s.typed and s.score >= TYPED_SHARE * best for s in scores)


@dataclass(frozen=True)
class Evidence:
    """What the answer rule decides on, for the best passage."""

    similarity: float  # max(passage cosine, best sentence cosine)
    coverage: float  # rarity-weighted share of the question's content words found in the passage
    typed: bool  # a sentence about the question holds the kind of value asked for (or none is asked)
    reader: float | None  # the reader's best probability over the sentences it read (None: no reader)
    factoid: bool = False  # the question asks for a fact (who, what, when, how many ...)


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
    best = sorted(scores, key=lambda s: -s.score)[: max(1, read)]
    text = index.documents[index.passages[top.position].doc_id].text
    readings = reader.readings([(query.text, text[s.start : s.end]) for s in best])
    return {(s.start, s.end): r for s, r in zip(best, readings)}


def short_answer(text: str, start: int, end: int, readings: dict[tuple[int, int], Reading]) -> Short | None:
    """The short answer inside the answer span [start, end) of the document ``text``: where the
    reader points in the sentence it finds likeliest to state the answer, among those it read there."""
    inside = [
        (r.probability, where[0] + r.short[0], where[0] + r.short[1])
        for where, r in readings.items()
        if r.short is not None and start <= where[0] and where[1] <= end
    ]
    if not inside:
        return None
    probability, begin, finish = max(inside)
    return Short(text[begin:finish], begin, finish, round(probability, 4))


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
            f"{coverage:.0%} of the question's key words (threshold {thresholds.coverage:.0%})"
        )
        if isinstance(rule, ReaderRule) and evidence.factoid:
            read = evidence.reader or 0.0  # a passage with no sentence to read states nothing
            verdict = (
                f"the reader gives {read:.2f} that it states the fact asked for (threshold {rule.reader:.2f})"
            )
            if read < rule.reader:
                return "reader", f"no passage in the corpus answers this: {numbers}, but {verdict}"
            return None, f"answered: {numbers}, and {verdict}"
        return None, f"answered: {numbers}"
    # Refused: say which condition of the rule failed first.
    if similarity < needed:
        return "similarity", (
            f"no passage in the corpus answers this: the closest passage has similarity "
            f"{similarity:.2f}, below the threshold {needed:.2f}"
        )
    if coverage < thresholds.coverage:
        unknown = index.lexicon.unknown(query.terms)
        missing = f" (never used in the corpus: {', '.join(unknown)})" if unknown else ""
        return "coverage", (
            f"no passage in the corpus answers this: the closest passage covers {coverage:.0%} of the "
            f"question's key words, below the threshold {thresholds.coverage:.0%}{missing}"
        )
    return "value", _no_value(query)


def _no_value(query: Query) -> str:
    return (
        f"no passage in the corpus answers this: the question asks for a {expected_type(query.text)} "
        f"and the closest passage gives none"
    )


# A word named in a refusal ("doesn't mention budget") tells at least this much (qa/question.py's
# rarity: "get" 0.25, "short" 0.67, "article" 0.91; "budget" 1.18, "microchips" 3.5): filler is not
# what the passage lacks.
KEY_WORD_RARITY = 1.0


def plain_reason(
    index: LoadedIndex, query: Query, top: Candidate | None, failed: str, scope: Scope | None = None
) -> str:
    """Why the service refused, for the person who asked: no scores, no stems, no thresholds (those
    stay in ``explain``). Names the closest section and the key words it does not hold, even in
    other forms ("chips" is held by "microchips"). ``failed`` is the condition of the answer rule
    that failed (``_decide``); a question asked within ``scope`` speaks of that document."""
    if failed == "no words":
        return "Ask about something: the question has no word the documents could be searched for."
    they, dont = _subject(index, scope)
    if top is None:
        return f"Nothing in {they[0].lower() + they[1:]} relates to this question."
    passage = index.passages[top.position]
    where = passage.heading.split(" › ")[-1] if passage.heading else index.documents[passage.doc_id].title
    if failed == "similarity":
        return f"{they} {dont} seem to cover this: nothing in {_it(they)} comes close to the question."
    if failed == "reader":
        clause = what_is_asked(query.asked)
        said = f"say {clause}" if clause else "answer this question"
        return f"{they} {dont} {said}. The closest passage, in “{where}”, does not state it."
    if failed == "value":
        wanted = {"number": "a number", "time": "a date or time"}.get(
            expected_type(query.text) or "", "the value"
        )
        return f"{they} {dont} give {wanted} for this. The closest passage, in “{where}”, has none."
    held = index.lexicon.matches(query.words, [index.passage_terms(top.position)])[0] if query.words else []
    text = index.documents[passage.doc_id].text[passage.start : passage.end].lower()
    missing = [
        w.word
        for w, h in sorted(zip(query.words, held), key=lambda p: -p[0].weight)
        if h < 0.5 and rarity(w.word) >= KEY_WORD_RARITY and w.word.lower() not in text
    ][:3]
    if not missing:
        return f"{they} {dont} say. The closest passage, in “{where}”, is about something else."
    listed = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " or " + missing[-1]
    return f"{they} {dont} say. The closest passage, in “{where}”, doesn't mention {listed}."


def _subject(index: LoadedIndex, scope: Scope | None) -> tuple[str, str]:
    """Who "doesn't say": the documents, or the one (or few) the question was asked within."""
    if scope is None:
        return "The documents", "don't"
    return ("This document", "doesn't") if len(scope.documents(index)) == 1 else ("These documents", "don't")


def _it(they: str) -> str:
    return "it" if they == "This document" else "them"


_WH = frozenset("who whom whose what which when where why how".split())
_AUXILIARY = frozenset(
    "is are was were do does did has have had can could will would should may might".split()
)
_BE = frozenset("is are was were".split())


def what_is_asked(question: str) -> str | None:
    """The question as the object of "The documents don't say ...", when that is plain to do:
    "Which network broadcast it?" -> "which network broadcast it"; "What is the goal of X?" -> "what
    the goal of X is". None when it would take rewriting the verb ("How many eggs does it lay?")."""
    words = " ".join(question.split()).rstrip(" ?.!").split()
    if len(words) < 2 or words[0].lower() not in _WH:
        return None
    head = [words[0].lower()]
    rest = words[1:]
    if head[0] in ("which", "what", "whose", "how") and rest and rest[0].lower() not in _AUXILIARY:
        head.append(rest.pop(0))  # "which network", "how many" (one word of the asked-for phrase)
        if head[0] == "how" and rest and rest[0].lower() not in _AUXILIARY:
            head.append(rest.pop(0))  # "how many eggs"
    if not rest:
        return None
    subject = len(head) > (2 if head[0] == "how" else 1)  # "which network was", "how many people were"
    if rest[0].lower() not in _AUXILIARY or (subject and rest[0].lower() in _BE):
        return " ".join(head + rest)  # the asked-for phrase is the subject: no inversion to undo
    if rest[0].lower() in _BE and len(rest) > 1:
        return " ".join(head + rest[1:] + [rest[0].lower()])  # "what is the goal" -> "what the goal is"
    return None


def choose_span(
    scores: list[SentenceScore], terms: list[tuple[set[str], np.ndarray]], lexicon: Lexicon, query: Query
) -> tuple[int, int, float]:
    """The best sentence; joined with a neighbour when the pair covers clearly more of the question."""
    # Prefer sentences holding the kind of value asked for; any sentence when none does.
    best = int(np.argmax([s.score + (1.0 if s.typed else 0.0) for s in scores]))
    start, end, score = scores[best].start, scores[best].end, scores[best].score
    if scores[best].coverage >= 1.0:
        return start, end, score
    for other in (best - 1, best + 1):
        if 0 <= other < len(scores):
            left, right = sorted((best, other))
            (stems_left, ids_left), (stems_right, ids_right) = terms[left], terms[right]
            pair_coverage = lexicon.coverage(
                query.words, stems_left | stems_right, np.concatenate([ids_left, ids_right]), ranking=True
            )
            if pair_coverage - scores[best].coverage >= SPAN_GAIN:
                return scores[left].start, scores[right].end, score
    return start, end, score


def passage_coverage(index: LoadedIndex, query: Query, position: int) -> float:
    return index.lexicon.coverage(query.words, *index.passage_terms(position))


def _citation(index: LoadedIndex, candidate: Candidate, relevance: float | None = None) -> Citation:
    passage = index.passages[candidate.position]
    document = index.documents[passage.doc_id]
    return Citation(
        rank=candidate.rank,
        passage_id=passage.passage_id,
        doc_id=passage.doc_id,
        title=document.title,
        source=document.source,
        text=passage.text,
        start=passage.start,
        end=passage.end,
        score=round(candidate.score, 4),
        page=document.page_at(passage.start),
        relevance=relevance,
    )


def _explanation(
    index: LoadedIndex,
    query: Query,
    ranked: list[Candidate],
    sentences: list[SentenceScore],
    rule: Rule,
    evidence: Evidence,
    readings: dict[tuple[int, int], Reading],
    reason: str,
    answered: bool,
) -> dict[str, Any]:
    signal_names = [s.name for s in SIGNALS]
    thresholds = rule.thresholds if isinstance(rule, ReaderRule) else rule
    decision = {
        **asdict(thresholds),
        "rule": "reader" if isinstance(rule, ReaderRule) else "thresholds",
        "similarity_needed": thresholds.similarity_needed(evidence.coverage),
        "reader": rule.reader if isinstance(rule, ReaderRule) else None,
    }
    return {
        "question_terms": query.terms,
        "unknown_terms": index.lexicon.unknown(query.terms),
        "candidates": [
            {
                "rank": c.rank,
                "passage_id": index.passages[c.position].passage_id,
                **{name: (round(c.signals[name], 4) if name in c.signals else None) for name in signal_names},
                "bm25": round(c.bm25, 4),
                **{f"{name}_rank": c.retriever_ranks.get(name) for name in ("dense", "bm25")},
                "fused": round(c.fused, 4),
                "score": round(c.score, 4),
                "coverage": round(passage_coverage(index, query, c.position), 4),
            }
            for c in ranked
        ],
        "sentences": [
            {
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(s).items()},
                "reader": None if (r := readings.get((s.start, s.end))) is None else round(r.probability, 4),
            }
            for s in sentences
        ],
        "signals": {
            "similarity": round(evidence.similarity, 4),
            "coverage": round(evidence.coverage, 4),
            "typed": evidence.typed,
            "asks_for_a_fact": evidence.factoid,
            "reader": None if evidence.reader is None else round(evidence.reader, 4),
        },
        "thresholds": decision,
        "decision": reason,
        "answered": answered,
    }
