"""What the pipeline answers: the answer span (with its short answer and confidence), the citations
(with their relevance), or a refusal and its reason — the shape /ask returns (qa/api/schemas.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
