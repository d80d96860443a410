"""Dense, keyword and fused search over passages -> ranked candidates with every score kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from qa.index import LoadedIndex
from qa.terms import QueryWord, segment_max

Mode = Literal["hybrid", "dense", "bm25"]


@dataclass(frozen=True)
class Query:
    """A question as the retrievers see it."""

    text: str  # as prepared for retrieval (qa/question.py): what is analysed and encoded
    vector: np.ndarray  # normalised, shape (dim,)
    terms: list[str]  # stemmed content words, for BM25
    words: list[QueryWord] = field(default_factory=list)  # content words with vectors, for coverage
    asked: str = ""  # the question as the user wrote it (echoed in the answer); text when empty

    @property
    def question(self) -> str:
        return self.asked or self.text


@dataclass(frozen=True)
class Weights:
    """Fusion weights; the keyword weight is what dense and sentence leave of 1."""

    dense: float = 0.6
    sentence: float = 0.15

    @property
    def keyword(self) -> float:
        return max(0.0, 1.0 - self.dense - self.sentence)


@dataclass
class Candidate:
    position: int  # row of the passage in the index
    dense: float  # cosine of question and passage (with its title and headings)
    sentence: float  # best cosine of question and one sentence of the passage
    bm25: float  # raw BM25
    keyword: float  # BM25 divided by the best BM25 of this query (0..1)
    fused: float
    dense_rank: int | None = None  # 1-based rank in the dense list, None when not retrieved
    bm25_rank: int | None = None
    rank: int = 0  # 1-based rank after fusion (and reranking)
    answer: float | None = None  # best answer-sentence score, when reranked
    sentences: list[Any] = field(default_factory=list)  # the reranker's SentenceScores, reused by answer
    score: float = 0.0  # final score: fused, plus the reranking term


def search(
    index: LoadedIndex,
    query: Query,
    *,
    candidates: int = 50,
    weights: Weights = Weights(),
    mode: Mode = "hybrid",
) -> list[Candidate]:
    """Candidates from both retrievers, scored by a convex combination of normalised scores."""
    n = len(index.passages)
    if n == 0:
        return []
    k = min(candidates, n)
    dense_rank: dict[int, int] = {}
    if mode != "bm25":
        _, ids = index.dense.search(query.vector.reshape(1, -1), k)
        # FAISS pads with -1 when fewer than k vectors are found.
        dense_rank = {int(i): r + 1 for r, i in enumerate(ids[0]) if i >= 0}
    bm25_scores = np.zeros(n, dtype=np.float32)
    bm25_rank: dict[int, int] = {}
    if mode != "dense" and query.terms:
        bm25_scores = np.asarray(index.bm25.get_scores(query.terms), dtype=np.float32)
        top = np.argpartition(-bm25_scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-bm25_scores[top], kind="stable")]
        bm25_rank = {int(i): r + 1 for r, i in enumerate(top) if bm25_scores[i] > 0}
    positions = np.array(sorted(set(dense_rank) | set(bm25_rank)), dtype=np.int64)
    if len(positions) == 0:
        return []
    dense = index.passage_vectors[positions] @ query.vector
    # Each passage's best cosine between the question and one of its sentences (0 with none).
    sentence = segment_max(index.sentence_rows(positions) @ query.vector, index.sentence_counts(positions))
    best_bm25 = float(bm25_scores[positions].max())
    keyword = bm25_scores[positions] / best_bm25 if best_bm25 > 0 else np.zeros(len(positions))
    if mode == "dense":
        fused = dense
    elif mode == "bm25":
        fused = keyword
    else:
        fused = weights.dense * dense + weights.sentence * sentence + weights.keyword * keyword
    order = np.argsort(-fused, kind="stable")
    ranked = []
    for rank, j in enumerate(order, start=1):
        position = int(positions[j])
        ranked.append(
            Candidate(
                position=position,
                dense=float(dense[j]),
                sentence=float(sentence[j]),
                bm25=float(bm25_scores[position]),
                keyword=float(keyword[j]),
                fused=float(fused[j]),
                dense_rank=dense_rank.get(position),
                bm25_rank=bm25_rank.get(position),
                rank=rank,
                score=float(fused[j]),
            )
        )
    return ranked
