"""The retrievers: dense (FAISS) and keyword (BM25), over the whole index or within a scope. What
they find is a pool of candidate passages (``Pool``); fusion (qa/pipeline/fusion.py) scores it.

A sharded index is searched shard by shard and the shards' candidates merged into the pool one
index would have found (qa/shards.py); the stages after this one run on that merged view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.pipeline.query import Query
from qa.pipeline.stage import Plain
from qa.store import LoadedIndex

if TYPE_CHECKING:
    from qa.pipeline.stage import Work
    from qa.shards import Fanout


@dataclass(frozen=True)
class Pool:
    """The candidates the retrievers found: their rows in the index, in order, with their raw BM25
    scores and their 1-based rank in each retriever's list (0: not found by that retriever)."""

    positions: np.ndarray
    bm25: np.ndarray
    ranks: dict[str, np.ndarray]
    # Each passage's sentences scored (qa/pipeline/sentences.py), when they have been already: the
    # answer-sentence signal reads them instead of scoring them again.
    sentences: list[list[Any]] | None = None


def retrieve(
    index: LoadedIndex,
    query: Query,
    candidates: int,
    retrievers: set[str],
    allowed: np.ndarray | None = None,
) -> Pool | None:
    """The union of the dense retriever's (FAISS) and the keyword retriever's (BM25) first
    ``candidates`` passages, of those in ``retrievers`` ("dense", "bm25"), among the ``allowed``
    rows when given (a scope: only their vectors are searched, only they are scored by BM25); None
    when both find none."""
    n = len(index.passages) if allowed is None else len(allowed)
    if n == 0:
        return None
    k = min(candidates, n)
    dense_rank: dict[int, int] = {}
    if "dense" in retrievers:
        ids = _nearest(index, query, k, allowed)
        # FAISS pads with -1 when fewer than k vectors are found.
        dense_rank = {int(i): r + 1 for r, i in enumerate(ids[0]) if i >= 0}
    total = len(index.passages)
    bm25_scores = np.zeros(total, dtype=np.float32)
    bm25_rank: dict[int, int] = {}
    if "bm25" in retrievers and query.terms and index.bm25 is not None:
        bm25_scores = np.asarray(index.bm25.get_scores(query.terms), dtype=np.float32)
        if allowed is not None:
            outside = np.ones(total, dtype=bool)
            outside[allowed] = False
            bm25_scores[outside] = 0.0
        top = np.argpartition(-bm25_scores, k - 1)[:k] if k < total else np.arange(total)
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


def _nearest(index: LoadedIndex, query: Query, k: int, allowed: np.ndarray | None) -> np.ndarray:
    """Rows of the ``k`` passages nearest the question: FAISS over the whole index, or an exact
    search over the ``allowed`` rows (their vectors are in memory; an HNSW graph searched with a
    filter can return fewer than ``k``)."""
    if allowed is None:
        assert index.dense is not None, "a catalog or a candidate view has nothing to search"
        return index.dense.search(query.vector.reshape(1, -1), k)[1]
    scores = index.passage_similarities(allowed, query.vector)
    best = np.argpartition(-scores, k - 1)[:k] if k < len(allowed) else np.arange(len(allowed))
    return allowed[best[np.argsort(-scores[best], kind="stable")]].reshape(1, -1)


class Retrieval(Plain):
    """Both retrievers' candidates, among the scope's passages (on a sharded index: each shard's,
    merged into the pool one index would have found, and the stages after it run on the view of
    those passages)."""

    name = "retrieval"

    def __init__(self, candidates: int, fanout: Fanout) -> None:
        self.candidates = candidates  # from each retriever
        self.fanout = fanout  # how a sharded index's shards are searched (qa/shards.py)

    def describe(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "about": "dense (FAISS) and keyword (BM25) retrievers; their candidates pooled",
            "candidates": self.candidates,
        }

    def run(self, work: Work) -> None:
        retrievers = work.weights.retrievers
        if work.index.shard_count <= 1:
            work.pool = retrieve(work.index, work.query, self.candidates, retrievers, work.allowed)
            return
        from qa.shards import merge  # here: qa/shards.py reads this module's retriever

        pools = self.fanout(work.index, work.query, self.candidates, retrievers, work.scope)
        merged = merge(work.index, work.query, pools, self.candidates, retrievers)
        if merged is not None:
            work.index, work.pool = merged
