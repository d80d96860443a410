"""/ask: the question route (POST with a JSON body, GET for links and quick tests), rate-limited
per client."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import StringConstraints

from qa.api.deps import EngineDep, MetricsDep, rate_limited
from qa.api.schemas import (
    MAX_QUESTION_CHARS,
    MAX_TOP_K,
    AskBatch,
    AskBatchResponse,
    AskRequest,
    AskResponse,
    Problem,
)
from qa.engine import Engine
from qa.errors import quoted
from qa.middleware import Metrics
from qa.pipeline.scope import Scope

router = APIRouter(
    tags=["questions"],
    dependencies=[Depends(rate_limited)],
    responses={
        413: {"model": Problem, "description": "Request body too large"},
        404: {"model": Problem, "description": "The filter matches no document"},
        429: {"model": Problem, "description": "Too many questions from this client"},
    },
)


@router.post("/ask", response_model=AskResponse, summary="Ask a question")
def ask(body: AskRequest, engine: EngineDep, metrics: MetricsDep) -> Response:
    """Answer with the best sentence of the best passage and cite the top passages, or refuse.
    ``filter`` restricts the question to some documents (by id or metadata) inside retrieval."""
    scope = None
    if body.filter is not None:
        scope = body.filter.scope()
    return _answer(engine, metrics, body.question, body.top_k, body.explain, scope)


@router.post("/ask/batch", response_model=AskBatchResponse, summary="Ask several questions")
def ask_batch(body: AskBatch, request: Request, engine: EngineDep, metrics: MetricsDep) -> Response:
    """Up to 32 questions in one request, each answered (or refused) as POST /ask would; each counts
    against the rate limit. A filter that matches no document is that question's 404 for the whole
    request, as for one question."""
    for _ in body.questions[1:]:  # the router's dependency counted the first
        rate_limited(request)
    results = [
        _answered(
            engine,
            metrics,
            item.question,
            item.top_k,
            item.explain,
            item.filter.scope() if item.filter else None,
        )
        for item in body.questions
    ]
    return JSONResponse({"results": results})


def _known_parameters(request: Request) -> None:
    """Like POST /ask's body, GET /ask's parameters are checked: a misspelt one (``top-k``) is a 422,
    not silently ignored."""
    unknown = sorted(set(request.query_params) - {"q", "top_k", "doc_id", "where"})
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", quoted(name)[1:-1]),
                    "msg": "Unknown parameter: GET /ask takes q (the question), top_k, doc_id and where",
                    "type": "extra_forbidden",
                }
                for name in unknown[:5]
            ]
        )


@router.get(
    "/ask",
    response_model=AskResponse,
    summary="Ask a question from a link",
    dependencies=[Depends(_known_parameters)],
    responses={
        400: {
            "description": "An address past the HTTP server's limit (uvicorn refuses it, in plain text, "
            "before the service sees it): use POST /ask"
        }
    },
)
def ask_get(
    engine: EngineDep,
    metrics: MetricsDep,
    q: Annotated[
        str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=r"\S", description="The question.")
    ],
    top_k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = 3,
    doc_id: Annotated[
        list[Annotated[str, StringConstraints(max_length=128)]] | None,
        Query(max_length=100, description="Ask within these documents (repeat; at most 100)."),
    ] = None,
    where: Annotated[
        list[Annotated[str, StringConstraints(max_length=600, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}:")]]
        | None,
        Query(max_length=20, description="FIELD:VALUE, documents whose field equals the value (repeat)."),
    ] = None,
) -> Response:
    """The same answer as POST /ask, for a link: ``/ask?q=Who+launched+the+task+force%3F``."""
    pairs = [w.partition(":") for w in where or []]
    return _answer(engine, metrics, q, top_k, False, Scope.of(doc_id, {f: v for f, _, v in pairs}))


def _answer(
    engine: Engine, metrics: Metrics, question: str, top_k: int, explain: bool, scope: Scope | None
) -> Response:
    # The body is built from typed dataclasses that mirror AskResponse (the fuzz run checks the
    # schema); skipping a second validation of it keeps the cached path fast.
    return JSONResponse(_answered(engine, metrics, question, top_k, explain, scope))


def _answered(
    engine: Engine, metrics: Metrics, question: str, top_k: int, explain: bool, scope: Scope | None
) -> dict:
    result = engine.ask(question, top_k, explain=explain, scope=scope)
    metrics.answers.labels("answered" if result.answered else "refused").inc()
    if result.cached:
        metrics.cache_hits.inc()
    return result.to_json(explain=explain)
