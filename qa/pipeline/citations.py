"""The citations: the first ``top_k`` candidates as passages a client can check, each with its
calibrated relevance (P(the passage holds the answer)); a passage less relevant than the fitted floor
is left out (never the answer's: a passage about something else does not fill the list because
``top_k`` asked for more)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from qa.pipeline.confidence import RELEVANCE_INPUTS, Calibrated
from qa.pipeline.fusion import Candidate
from qa.pipeline.result import Citation
from qa.pipeline.stage import Plain
from qa.store import LoadedIndex

if TYPE_CHECKING:
    from qa.pipeline.stage import Work


class Citations(Plain):
    """The first ``top_k`` candidates as citations, with their relevance."""

    name = "citations"

    def describe(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "about": "the cited passages, with their relevance",
            "inputs": list(RELEVANCE_INPUTS),
        }

    def run(self, work: Work) -> None:
        calibrated = work.decision.calibrated if work.decision else Calibrated()
        cited = work.candidates[: work.top_k]
        work.relevance_inputs = [(c.similarity, c.signals.get("keyword", 0.0), c.score) for c in cited]
        relevant = (
            calibrated.relevance.of(np.array(work.relevance_inputs))
            if calibrated.relevance and cited
            else None
        )
        work.ranking = [
            _citation(work.index, c, None if relevant is None else round(float(relevant[i]), 4))
            for i, c in enumerate(cited)
        ]
        work.relevance_floor = calibrated.relevance_floor


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
