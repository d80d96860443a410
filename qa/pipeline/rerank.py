"""Reranking: the first few candidates re-scored by the rerank signals of ``SIGNALS`` (the best
answer sentence), so that a passage holding one sentence that answers beats one that merely shares
the topic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from qa.pipeline.fusion import SIGNALS
from qa.pipeline.retrieve import Pool
from qa.pipeline.stage import Plain

if TYPE_CHECKING:
    from qa.pipeline.stage import Work


class Rerank(Plain):
    """The first ``depth`` candidates re-scored by adding the weighted rerank signals; the rest stay
    below them."""

    name = "rerank"

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def describe(self) -> dict[str, Any]:
        signals = [s.name for s in SIGNALS if s.stage == "rerank"]
        return {"stage": self.name, "about": "the leading candidates re-scored", "signals": signals}

    def run(self, work: Work) -> None:
        stage = work.weights.stage("rerank")
        if not stage or self.depth <= 0:
            return
        ranked = work.candidates
        head, tail = ranked[: self.depth], ranked[self.depth :]
        # their sentences were scored by the stage before (qa/pipeline/sentences.py)
        sentences = [c.sentences or [] for c in head]
        pool = Pool(
            np.array([c.position for c in head], dtype=np.int64),
            np.array([c.bm25 for c in head]),
            {},
            sentences,
        )
        for signal, weight in stage:
            for candidate, value in zip(head, signal.compute(work.index, work.query, pool)):
                candidate.signals[signal.name] = float(value)
                candidate.score += weight * float(value)
        head.sort(key=lambda c: -c.score)
        floor = min((c.score for c in head), default=0.0)
        for candidate in tail:  # stay below the reranked head
            candidate.score = min(candidate.fused, floor)
        work.candidates = head + tail
        for position, candidate in enumerate(work.candidates, start=1):
            candidate.rank = position
