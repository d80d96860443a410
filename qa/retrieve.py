"""The question as the retrievers see it, and the two retrievers: dense (FAISS) and keyword (BM25).

What they find is a pool of candidate passages; qa/ranking.py scores and orders it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qa.index import LoadedIndex
from qa.terms import QueryWord


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
class Pool:
    """The candidates the retrievers found: their rows in the index, in order, with their raw BM25
    scores and their 1-based rank in each retriever's list (0: not found by that retriever)."""

    positions: np.ndarray
    bm25: np.ndarray
    ranks: dict[str, np.ndarray]


def retrieve(index: LoadedIndex, query: Query, candidates: int, retrievers: set[str]) -> Pool | None:
    """The union of the dense retriever's (FAISS) and the keyword retriever's (BM25) first
    ``candidates`` passages, of those in ``retrievers`` ("dense", "bm25"); None when both find none."""
    n = len(index.passages)
    if n == 0:
        return None
    k = min(candidates, n)
    dense_rank: dict[int, int] = {}
    if "dense" in retrievers:
        _, ids = index.dense.search(query.vector.reshape(1, -1), k)
        # FAISS pads with -1 when fewer than k vectors are found.
        dense_rank = {int(i): r + 1 for r, i in enumerate(ids[0]) if i >= 0}
    bm25_scores = np.zeros(n, dtype=np.float32)
    bm25_rank: dict[int, int] = {}
    if "bm25" in retrievers and query.terms:
        bm25_scores = np.asarray(index.bm25.get_scores(query.terms), dtype=np.float32)
        top = np.argpartition(-bm25_scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-bm25_scores[top], kind="stable")]
        bm25_rank = {int(i): r + 1 for r, i in enumerate(top) if bm25_scores[i] > 0}
    positions = np.array(sorted(set(dense_rank) | set(bm25_rank)), dtype=np.int64)
    if len(positions) == 0:
        return None
    ranks = {
        name: np.array([found.get(int(p), 0) for p in positions], dtype=np.int64)
        for name, found in (("dense", dense_rank), ("bm25", bm25_rank))
        if name in retrievers
    }
    return Pool(positions, bm25_scores[positions], ranks)
