"""What a stage of the question's way is, and what a question carries from one stage to the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from qa.pipeline.answerability import Decision
    from qa.pipeline.confidence import Logistic
    from qa.pipeline.fusion import Candidate, Weights
    from qa.pipeline.query import Query
    from qa.pipeline.result import Citation, Span
    from qa.pipeline.retrieve import Pool
    from qa.pipeline.scope import Scope
    from qa.store import LoadedIndex


class Stage(Protocol):
    """One step of a question's way (qa/pipeline/__init__.py lists them in order). Its settings are
    given to its constructor; ``warm_up`` loads what it owns (a model) once, before serving, and is
    called by the engine; ``run`` reads what the stages before it left in the ``Work`` and adds its
    own output; ``describe`` says what it is, for ``/readyz`` and ``explain``."""

    name: str

    def warm_up(self) -> None: ...

    def run(self, work: Work) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class Plain:
    """A stage that owns no model: nothing to warm up."""

    name = ""

    def warm_up(self) -> None:
        return None


@dataclass
class Work:
    """One question on its way: what it was asked with, then each stage's output, in order."""

    index: LoadedIndex  # the index it is answered from; for a sharded one, the merged view once retrieved
    query: Query
    weights: Weights  # the signals' weights (the settings', or an ablation's)
    top_k: int = 3
    scope: Scope | None = None
    allowed: np.ndarray | None = None  # the scope's passage rows (None: every passage)
    explain: bool = False
    read_all: bool = False  # the reader reads every question, not only those its verdict decides
    pool: Pool | None = None  # retrieval
    candidates: list[Candidate] = field(default_factory=list)  # fusion, sentence scoring, reranking
    decision: Decision | None = None  # answerability
    span: Span | None = None  # the answer span (None: refused)
    confidence: Logistic | None = None  # the confidence model, when one is fitted
    confidence_inputs: np.ndarray | None = None  # its inputs for this answer
    ranking: list[Citation] = field(default_factory=list)  # citations, with their relevance
    relevance_inputs: list[tuple[float, float, float]] = field(default_factory=list)
    relevance_floor: float = 0.0  # citations less relevant are not shown (never the answer's)
    explanation: dict[str, Any] | None = None  # explain

    @property
    def top(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None
