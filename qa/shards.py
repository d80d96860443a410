"""Search over a sharded index: each shard finds its candidates, the router merges them into the
pool one index over the whole corpus would have found, and the stages after retrieval
(qa/pipeline/) run on that.

Why the answers are the same as one index's: a shard's dense list holds its nearest passages, so
the union of the shards' lists holds the corpus' nearest (exact search; HNSW is approximate in both);
BM25 scores were computed at build time with the whole corpus' document frequencies and average
length (qa/store/writer.py, ``_bm25_rows``); the lexicon is the whole corpus' in every shard; and every
signal that divides by "the best score" is computed after the merge, over the merged pool.
Passages whose scores tie exactly may come out in another order.

The shards are searched in this process (``LocalShards``, a sharded build served by ``qa serve``)
or in Ray actors under Ray Serve (qa/cluster/serve.py); both hand back the same ``ShardPool``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qa.pipeline.query import Query
from qa.pipeline.retrieve import Pool, retrieve
from qa.pipeline.scope import Scope
from qa.store import CandidateView, LoadedIndex


@dataclass(frozen=True)
class ShardPool:
    """What one shard found for a question: its candidates, with what ranking needs of them — their
    scores, not their vectors (the cosines are all the stages after retrieval read of those)."""

    passage_ids: list[str]
    bm25: np.ndarray  # raw BM25, with corpus-wide statistics
    in_dense: np.ndarray  # bool: in the shard's dense list
    in_bm25: np.ndarray  # bool: in the shard's keyword list
    dense: np.ndarray  # float32: each candidate's cosine with the question
    sentences: np.ndarray  # float32: each candidate's sentences' cosines, one candidate after the other

    @classmethod
    def empty(cls) -> ShardPool:
        none = np.zeros(0, np.float32)
        return cls([], none, none.astype(bool), none.astype(bool), none, none)


def search_shard(
    shard: LoadedIndex, query: Query, candidates: int, retrievers: set[str], scope: Scope | None
) -> ShardPool:
    """A shard's side of a question: both retrievers over its passages (those in ``scope``)."""
    allowed = scope.positions(shard) if scope is not None else None
    pool = (
        None
        if allowed is not None and len(allowed) == 0
        else retrieve(shard, query, candidates, retrievers, allowed)
    )
    if pool is None:
        return ShardPool.empty()
    rows = pool.positions
    return ShardPool(
        passage_ids=[shard.passages[int(p)].passage_id for p in rows],
        bm25=pool.bm25,
        in_dense=pool.ranks.get("dense", np.zeros(len(rows), np.int64)) > 0,
        in_bm25=pool.ranks.get("bm25", np.zeros(len(rows), np.int64)) > 0,
        dense=np.asarray(shard.passage_similarities(rows, query.vector), np.float32),
        sentences=np.asarray(shard.sentence_similarities(rows, query.vector), np.float32),
    )


def merge(
    catalog: LoadedIndex, query: Query, pools: Sequence[ShardPool], candidates: int, retrievers: set[str]
) -> tuple[LoadedIndex, Pool] | None:
    """The shards' pools as one: each retriever's list cut to its first ``candidates`` over all
    shards, and a view of just those passages (from the catalog, with the shards' scores) to rank
    them on. None when no shard found any."""
    ids = [pid for pool in pools for pid in pool.passage_ids]
    if not ids:
        return None
    dense = np.concatenate([p.dense for p in pools])  # the dense retriever's score
    bm25 = np.concatenate([p.bm25 for p in pools])
    ranks: dict[str, np.ndarray] = {}
    kept = np.zeros(len(ids), dtype=bool)
    for name, found, score in (
        ("dense", np.concatenate([p.in_dense for p in pools]), dense),
        ("bm25", np.concatenate([p.in_bm25 for p in pools]), bm25),
    ):
        if name not in retrievers:
            continue
        listed = np.flatnonzero(found)
        listed = listed[np.argsort(-score[listed], kind="stable")][:candidates]
        ranks[name] = np.zeros(len(ids), np.int64)
        ranks[name][listed] = np.arange(1, len(listed) + 1)
        kept[listed] = True
    # The pool in the catalog's passage order, as one index lists its candidates by row.
    chosen = sorted(np.flatnonzero(kept), key=lambda j: catalog.positions[ids[j]])
    passages = [catalog.passages[catalog.positions[ids[j]]] for j in chosen]
    sentences = _sentence_slices(pools, catalog)
    view = _view(
        catalog,
        query,
        passages,
        dense[chosen],
        np.concatenate([sentences[j] for j in chosen]),
    )
    order = np.array(chosen, dtype=np.int64)
    pool = Pool(np.arange(len(chosen), dtype=np.int64), bm25[order], {n: r[order] for n, r in ranks.items()})
    return view, pool


def _sentence_slices(pools: Sequence[ShardPool], catalog: LoadedIndex) -> list[np.ndarray]:
    """Each candidate's sentences' cosines, in the order of the concatenated pools."""
    slices = []
    for pool in pools:
        start = 0
        for pid in pool.passage_ids:
            count = len(catalog.passages[catalog.positions[pid]].sentences)
            slices.append(pool.sentences[start : start + count])
            start += count
    return slices


class Fanout(Protocol):
    """Asks every shard of a sharded index for its pool: in this process or in other ones."""

    loads_shards: bool  # whether the engine loads the shards' vectors itself

    def prepare(self, index: LoadedIndex) -> None:
        """Make every shard ready to search ``index`` (a new build) before the router serves it."""

    def __call__(
        self, index: LoadedIndex, query: Query, candidates: int, retrievers: set[str], scope: Scope | None
    ) -> list[ShardPool]: ...


class LocalShards:
    """The shards of a sharded build, loaded in this process with its catalog."""

    loads_shards = True

    def prepare(self, index: LoadedIndex) -> None:
        pass

    def __call__(
        self, index: LoadedIndex, query: Query, candidates: int, retrievers: set[str], scope: Scope | None
    ) -> list[ShardPool]:
        return [search_shard(shard, query, candidates, retrievers, scope) for shard in index.shards]


def _view(
    catalog: LoadedIndex,
    query: Query,
    passages: list,
    passage_scores: np.ndarray,
    sentence_scores: np.ndarray,
) -> LoadedIndex:
    """A small index of the merged candidates: the catalog's documents and lexicon, their scores."""
    offsets = np.zeros(len(passages) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p.sentences) for p in passages])
    none = np.zeros((0, catalog.dim), np.float32)
    return CandidateView(
        path=catalog.path,
        manifest=catalog.manifest,
        documents=catalog.documents,
        passages=passages,
        dense=None,
        passage_vectors=none,
        sentence_vectors=none,
        sentence_offsets=offsets,
        bm25=None,
        lexicon=catalog.lexicon,
        with_context=catalog.with_context,
        stamp=catalog.stamp,
        _sentence_terms=catalog._sentence_terms,  # terms of a passage are computed once per build
        _passage_terms=catalog._passage_terms,
        query_vector=query.vector,
        passage_scores=passage_scores,
        sentence_scores=sentence_scores,
    )
