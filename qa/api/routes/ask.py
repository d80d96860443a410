"""POST /ask: the question route, rate-limited per client."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from qa.api.deps import EngineDep, MetricsDep, rate_limited
from qa.schemas import AskRequest, AskResponse, Problem

router = APIRouter(tags=["questions"], dependencies=[Depends(rate_limited)])


@router.post(
    "/ask",
    response_model=AskResponse,
    responses={
        413: {"description": "Request body too large (plain text when announced by Content-Length)"},
        429: {"model": Problem, "description": "Too many questions from this client"},
    },
)
def ask(body: AskRequest, engine: EngineDep, metrics: MetricsDep) -> Response:
    """Answer with the best sentence of the best passage and cite the top passages, or refuse."""
    result = engine.ask(body.question, body.top_k, explain=body.explain)
    metrics.answers.labels("answered" if result.answered else "refused").inc()
    if result.cached:
        metrics.cache_hits.inc()
    # The body is built from typed dataclasses that mirror AskResponse (the fuzz run checks the
    # schema); skipping a second validation of it keeps the cached path fast.
    return JSONResponse(result.to_json(explain=body.explain))
