"""The question's way, as stages, each in its own file, in the order a question meets them:

1. ``query.py``         the question made ready, encoded, its words weighed (a batch at a time)
2. ``retrieve.py``      dense (FAISS) and keyword (BM25) retrievers, pooled; shards merged
3. ``fusion.py``        the pool scored by the weighted fusion signals (``SIGNALS``)
4. ``sentences.py``     the leading candidates' sentences scored, once
5. ``rerank.py``        the leading candidates re-scored by the rerank signals
6. ``answerability.py`` the answer rule and the reader's verdict: answer, or refuse and say why
7. ``span.py``          the answer: a verbatim sentence span and its short answer
8. ``confidence.py``    P(the answer is right), calibrated
9. ``citations.py``     the cited passages, with their relevance
10. ``explain.py``      every number above, when asked

Each stage is a small class (qa/pipeline/stage.py): its settings in ``__init__``, ``warm_up()``
for what it owns (the engine calls it once, before serving), ``run(work)`` reading what the stages
before it left in the ``Work`` and adding its own output, and ``describe()`` for ``/readyz`` and
``explain``. A new stage is a file with such a class and one line in ``default_stages``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qa.errors import ScopeEmpty
from qa.pipeline.answerability import Answerability, _read_at_depths
from qa.pipeline.citations import Citations
from qa.pipeline.confidence import Confidence
from qa.pipeline.explain import explanation
from qa.pipeline.fusion import Fusion, Weights
from qa.pipeline.query import Query, QueryStage
from qa.pipeline.rerank import Rerank
from qa.pipeline.result import Result
from qa.pipeline.retrieve import Retrieval
from qa.pipeline.sentences import SentenceScoring
from qa.pipeline.span import AnswerSpan
from qa.pipeline.stage import Plain, Stage, Work

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.encoder import Encoder
    from qa.pipeline.scope import Scope
    from qa.reader import Reader
    from qa.shards import Fanout
    from qa.store import LoadedIndex


class Explain(Plain):
    """Every number the stages decided on, when the question asks to explain."""

    name = "explain"

    def __init__(self, stages: Callable[[], list[dict[str, Any]]]) -> None:
        self.stages = stages  # the pipeline's description, shown with the numbers

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "about": "every number the stages decided on, when asked"}

    def run(self, work: Work) -> None:
        if work.explain:
            work.explanation = explanation(work, self.stages())


def default_stages(settings: Settings, fanout: Fanout, answerability: Answerability) -> list[Stage]:
    """The stages after the query, in order: the pipeline's configuration."""
    return [
        Retrieval(settings.candidates, fanout),
        Fusion(),
        SentenceScoring(settings.rerank_depth),
        Rerank(settings.rerank_depth),
        answerability,
        AnswerSpan(),
        Confidence(),
        Citations(),
    ]


class Pipeline:
    """The query stage, then the per-question stages in order; thread-safe (stages keep no
    per-question state: it travels in the ``Work``)."""

    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        *,
        reader: Reader | None | bool = True,
        fanout: Fanout | None = None,
    ) -> None:
        """``reader``: True loads the one the settings name (at ``warm_up``); a Reader, or None.
        ``fanout``: how a sharded index's shards are searched (in this process when None)."""
        from qa.shards import LocalShards

        self.query = QueryStage(encoder)
        self.answerability = Answerability(settings, reader)
        stages = default_stages(settings, fanout or LocalShards(), self.answerability)
        self.stages: list[Stage] = [*stages, Explain(self.describe)]

    def with_stage(self, stage: Stage, after: str) -> Pipeline:
        """This pipeline with ``stage`` run after the stage named ``after`` (the same stage objects
        otherwise, so warm them up once)."""
        names = [s.name for s in self.stages]
        if after not in names:
            raise ValueError(f"no stage named {after!r}: {', '.join(names)}")
        at = names.index(after) + 1
        return self._copy(self.query, self.answerability, [*self.stages[:at], stage, *self.stages[at:]])

    def replaced(self, stage: QueryStage | Answerability) -> Pipeline:
        """This pipeline with its query or answerability stage replaced (an ablation's variant)."""
        if isinstance(stage, QueryStage):
            return self._copy(stage, self.answerability, self.stages)
        stages = [stage if s is self.answerability else s for s in self.stages]
        return self._copy(self.query, stage, stages)

    def _copy(self, query: QueryStage, answerability: Answerability, stages: list[Stage]) -> Pipeline:
        """A pipeline of these stages, its explain stage describing them."""
        copy = object.__new__(Pipeline)
        copy.query, copy.answerability = query, answerability
        copy.stages = [Explain(copy.describe) if isinstance(s, Explain) else s for s in stages]
        return copy

    @property
    def reader(self) -> Reader | None:
        return self.answerability.reader

    def warm_up(self) -> None:
        """Load what the stages own (the reader), once, before serving."""
        self.query.warm_up()
        for stage in self.stages:
            stage.warm_up()

    def describe(self) -> list[dict[str, Any]]:
        return [self.query.describe(), *(stage.describe() for stage in self.stages)]

    def queries(self, questions: list[str], index: LoadedIndex) -> list[Query]:
        return self.query.run(questions, index)

    def answer(self, work: Work, timings: dict[str, float] | None = None) -> Result:
        """Run the stages on one question made ready by ``work``; ``timings``, when given, gathers
        the seconds each stage took (summed over questions)."""
        return result_of(self.run(work, timings=timings))

    @staticmethod
    def work(
        index: LoadedIndex,
        query: Query,
        weights: Weights,
        *,
        top_k: int = 3,
        scope: Scope | None = None,
        explain: bool = False,
        read_all: bool = False,
    ) -> Work:
        """A question ready for the stages (ScopeEmpty when ``scope`` holds no passage)."""
        allowed = None if scope is None else scope.positions(index)
        if scope is not None and allowed is not None and len(allowed) == 0:
            raise ScopeEmpty(f"no document matches the filter: {scope.describe()}")
        return Work(
            index=index,
            query=query,
            weights=weights,
            top_k=top_k,
            scope=scope,
            allowed=allowed,
            explain=explain,
            read_all=read_all,
        )

    def run(self, work: Work, *, until: str | None = None, timings: dict[str, float] | None = None) -> Work:
        """The stages in order on ``work``, up to and including the one named ``until`` (all when
        None); ``timings``, when given, gathers the seconds each stage took (summed over calls)."""
        for stage in self.stages:
            if timings is None:
                stage.run(work)
            else:
                started = time.perf_counter()
                stage.run(work)
                timings[stage.name] = timings.get(stage.name, 0.0) + time.perf_counter() - started
            if stage.name == until:
                break
        return work


def result_of(work: Work) -> Result:
    """The stages' outputs as the answer /ask returns."""
    decision, top = work.decision, work.top
    assert decision is not None, "the answerability stage did not run"
    sentences = (top.sentences or []) if top else []
    evidence = decision.evidence
    shown = [
        c
        for i, c in enumerate(work.ranking)
        if i == 0 or c.relevance is None or c.relevance >= work.relevance_floor
    ]
    return Result(
        question=work.query.question,
        answered=decision.answered,
        answer=work.span,
        citations=shown if decision.answered else [],
        reason=decision.reason,
        index_fingerprint=work.index.fingerprint,
        explain=work.explanation,
        signals={
            "similarity": evidence.similarity,
            "coverage": evidence.coverage,
            "fused": top.fused if top else 0.0,
            "answer_coverage": max((s.coverage for s in sentences), default=0.0),
            "answer_score": max((s.score for s in sentences), default=0.0),
            "typed": 1.0 if evidence.typed else 0.0,
            "factoid": 1.0 if evidence.factoid else 0.0,
            "heading": 0.0 if evidence.heading is None else 1.0,
            **({} if evidence.reader is None else {"reader": evidence.reader}),
            **_read_at_depths([r.probability for r in decision.readings.values()]),
        },
        ranking=work.ranking,
        relevance_inputs=work.relevance_inputs,
    )
