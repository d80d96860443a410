"""The answer span: the best sentence of the best passage (joined with a neighbour when the pair
covers clearly more of the question), verbatim with its document offsets, and inside it the short
answer the reader points at."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from qa.pipeline.query import Query
from qa.pipeline.result import Short, Span
from qa.pipeline.sentences import SentenceScore
from qa.pipeline.stage import Plain
from qa.terms import Lexicon

if TYPE_CHECKING:
    from qa.pipeline.stage import Work
    from qa.reader import Reading

# An adjacent sentence joins the answer only when it brings this much more of the question's words.
SPAN_GAIN = 0.25


class AnswerSpan(Plain):
    """The answer, when answerability admits one: a verbatim span of the best passage's document."""

    name = "answer span"

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "about": "the best sentence of the best passage, and its short answer"}

    def run(self, work: Work) -> None:
        top, decision = work.top, work.decision
        if top is None or decision is None or not decision.answered:
            return
        index = work.index
        passage = index.passages[top.position]
        text = index.documents[passage.doc_id].text
        terms = index.sentence_terms(top.position)
        start, end, score = choose_span(top.sentences or [], terms, index.lexicon, work.query)
        work.span = Span(
            text=text[start:end],
            doc_id=passage.doc_id,
            passage_id=passage.passage_id,
            start=start,
            end=end,
            score=round(score, 4),
            short=short_answer(text, start, end, decision.readings) if decision.evidence.factoid else None,
        )


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
