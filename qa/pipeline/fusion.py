"""Fusion: every signal that orders passages, in one table (``SIGNALS``), and the stage that
scores the retrievers' pool by the weighted sum of the fusion signals.

The retrievers (qa/pipeline/retrieve.py) hand over a pool of candidate passages; **fusion** orders
it; **reranking** (qa/pipeline/rerank.py) re-scores the best few by adding the weighted rerank
signals. The weights come from the settings named in the table; the explain
rows (``answer._explanation``, ``qa ask --explain``) and ``qa eval --ablation``'s variants are read
from it too. A new signal is one entry in ``SIGNALS`` and one function computing it for a pool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from qa.pipeline.query import Query
from qa.pipeline.retrieve import Pool
from qa.pipeline.sentences import SentenceScore, score_sentences
from qa.pipeline.stage import Plain
from qa.store import LoadedIndex
from qa.terms import segment_max

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.pipeline.stage import Work

Stage = Literal["fusion", "rerank"]


# The signals: each maps a pool of candidates to one value per candidate.


def _dense(index: LoadedIndex, query: Query, pool: Pool) -> np.ndarray:
    return index.passage_similarities(pool.positions, query.vector)


def _sentence(index: LoadedIndex, query: Query, pool: Pool) -> np.ndarray:
    similarities = index.sentence_similarities(pool.positions, query.vector)
    return segment_max(similarities, index.sentence_counts(pool.positions))


def _keyword(index: LoadedIndex, query: Query, pool: Pool) -> np.ndarray:
    best = float(pool.bm25.max()) if len(pool.bm25) else 0.0
    return pool.bm25 / best if best > 0 else np.zeros(len(pool.positions), dtype=np.float32)


def _answer_sentence(index: LoadedIndex, query: Query, pool: Pool) -> np.ndarray:
    scores = pool.sentences
    if scores is None:
        scores = score_sentences(index, [int(p) for p in pool.positions], query)
    return np.array([max((s.score for s in ss), default=0.0) for ss in scores], dtype=np.float32)


@dataclass(frozen=True)
class Signal:
    name: str  # its key in Candidate.signals, the explain rows and Weights
    stage: Stage
    setting: str  # the Settings field holding its weight
    about: str  # what it measures, for the ablation table and the README
    compute: Callable[[LoadedIndex, Query, Pool], np.ndarray]


SIGNALS: tuple[Signal, ...] = (
    Signal(
        "keyword",
        "fusion",
        "keyword_weight",
        "BM25 over stems, divided by the best of the question",
        _keyword,
    ),
    Signal(
        "dense",
        "fusion",
        "dense_weight",
        "cosine of the question and the passage with its title and headings",
        _dense,
    ),
    Signal(
        "sentence",
        "fusion",
        "sentence_weight",
        "best cosine of the question and one sentence of the passage",
        _sentence,
    ),
    Signal(
        "answer_sentence",
        "rerank",
        "rerank_weight",
        "best answer-sentence score (half cosine, half word coverage) of the passage",
        _answer_sentence,
    ),
)
# The retriever whose candidates each signal needs; a retriever no weighted signal needs is not run.
_RETRIEVER = {"keyword": "bm25", "dense": "dense", "sentence": "dense", "answer_sentence": "dense"}


@dataclass(frozen=True)
class Weights:
    """The weight of each signal, by name (every name of ``SIGNALS``)."""

    of: Mapping[str, float]

    @classmethod
    def from_settings(cls, settings: Settings) -> Weights:
        return cls({s.name: float(getattr(settings, s.setting)) for s in SIGNALS})

    def only(self, *names: str) -> Weights:
        """These signals at their weights, every other at 0 (an ablation variant)."""
        return Weights({n: (w if n in names else 0.0) for n, w in self.of.items()})

    def stage(self, stage: Stage) -> list[tuple[Signal, float]]:
        return [(s, self.of[s.name]) for s in SIGNALS if s.stage == stage and self.of.get(s.name, 0.0) != 0.0]

    @property
    def retrievers(self) -> set[str]:
        fusion = [s.name for s, _ in self.stage("fusion")]
        needed = {_RETRIEVER[name] for name in fusion}
        return needed or {"dense"}


@dataclass
class Candidate:
    position: int  # row of the passage in the index
    signals: dict[str, float]  # every fusion signal; the rerank signals once reranked
    bm25: float  # raw BM25, for explain
    retriever_ranks: dict[str, int] = field(default_factory=dict)  # 1-based rank in each retriever's list
    fused: float = 0.0  # weighted sum of the fusion signals
    score: float = 0.0  # final score: fused, plus the weighted rerank signals
    rank: int = 0  # 1-based rank after fusion and reranking
    # Its sentences scored (qa/pipeline/sentences.py), once: reranking and the answer read them.
    sentences: list[SentenceScore] | None = None

    @property
    def similarity(self) -> float:
        """How close the passage is to the question: the better of its own and its best sentence's
        cosine (what the answer rule's similarity threshold is for)."""
        return max(self.signals["dense"], self.signals["sentence"])


class Fusion(Plain):
    """Each candidate of the pool scored by the weighted sum of the fusion signals, and ordered."""

    name = "fusion"

    def describe(self) -> dict[str, Any]:
        signals = [s.name for s in SIGNALS if s.stage == "fusion"]
        return {"stage": self.name, "about": "weighted sum of the fusion signals", "signals": signals}

    def run(self, work: Work) -> None:
        pool = work.pool
        if pool is None:
            work.candidates = []
            return
        index, query = work.index, work.query
        fusion = [s for s in SIGNALS if s.stage == "fusion"]
        values = {s.name: s.compute(index, query, pool) for s in fusion}
        fused = sum(
            (w * values[s.name] for s, w in work.weights.stage("fusion")), np.zeros(len(pool.positions))
        )
        order = np.argsort(-fused, kind="stable")
        work.candidates = [
            Candidate(
                position=int(pool.positions[j]),
                signals={name: float(v[j]) for name, v in values.items()},
                bm25=float(pool.bm25[j]),
                retriever_ranks={r: int(ranks[j]) for r, ranks in pool.ranks.items() if ranks[j] > 0},
                fused=float(fused[j]),
                score=float(fused[j]),
                rank=rank,
            )
            for rank, j in enumerate(order, start=1)
        ]
