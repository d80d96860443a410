"""Sentence scoring: each sentence of the leading candidates against the question (its cosine and
the share of the question's words it holds), once per question — reranking and the answer span
read the scores the candidates carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa.answer_type import expected_type, satisfies
from qa.pipeline.query import Query
from qa.pipeline.stage import Plain
from qa.store import LoadedIndex

if TYPE_CHECKING:
    from qa.pipeline.stage import Work


@dataclass(frozen=True)
class SentenceScore:
    """One sentence of a passage scored against the question."""

    start: int
    end: int
    similarity: float
    coverage: float
    score: float
    typed: bool  # holds a value of the type the question asks for (a number, a time), or none is asked


def score_sentences(index: LoadedIndex, positions: list[int], query: Query) -> list[list[SentenceScore]]:
    """Each sentence of each passage: cosine with the question, and the share of the question's words
    it holds. All passages' sentences are scored together, in one matrix product for each signal."""
    if not positions:
        return []
    terms = [t for p in positions for t in index.sentence_terms(p)]
    coverages = index.lexicon.coverages(query.words, terms, ranking=True)
    similarities = index.sentence_similarities(positions, query.vector)
    wanted = expected_type(query.text)
    scores: list[list[SentenceScore]] = []
    row = 0
    for position in positions:
        passage = index.passages[position]
        text = index.documents[passage.doc_id].text
        scores.append([])
        for s, sim, cov in zip(passage.sentences, similarities[row:], coverages[row:]):
            typed = satisfies(wanted, text[s.start : s.end], query.text)
            scores[-1].append(
                SentenceScore(
                    s.start, s.end, float(sim), float(cov), 0.5 * float(sim) + 0.5 * float(cov), typed
                )
            )
        row += len(passage.sentences)
    return scores


class SentenceScoring(Plain):
    """The sentences of the first ``depth`` candidates scored, when reranking reads them; of the
    first candidate alone (the answer's) when it does not."""

    name = "sentence scoring"

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def describe(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "about": "half cosine, half word coverage, per sentence of the leading candidates",
            "depth": self.depth,
        }

    def run(self, work: Work) -> None:
        reranked = bool(work.weights.stage("rerank")) and self.depth > 0
        head = work.candidates[: self.depth if reranked else 1]
        for candidate, scored in zip(
            head, score_sentences(work.index, [c.position for c in head], work.query)
        ):
            candidate.sentences = scored
