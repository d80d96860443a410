"""Admin routes: rebuild or reload the index while serving. Off without ``QA_ADMIN_TOKEN``."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Request

from qa.api.background import counted
from qa.api.deps import EngineDep, SettingsDep, require_admin
from qa.api.routes.health import ready_report
from qa.api.schemas import Problem, Ready, ReindexReport

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": Problem}, 404: {"model": Problem}},
)


@router.post(
    "/reindex",
    response_model=ReindexReport,
    responses={409: {"model": Problem}, 422: {"model": Problem}},
    summary="Rebuild the index from the corpus",
)
async def reindex(request: Request, engine: EngineDep) -> ReindexReport:
    """Rebuild from the corpus and swap the new index in while serving. Needs QA_ADMIN_TOKEN."""
    previous = engine.index.fingerprint if engine.ready else None
    report = await counted(request.app, request.app.state.reloader.reindex)
    return ReindexReport(
        **{
            **asdict(report),
            "previous_fingerprint": previous,
            "embed_seconds": round(report.embed_seconds, 3),
            "total_seconds": round(report.total_seconds, 3),
        }
    )


@router.post(
    "/reload", response_model=Ready, responses={500: {"model": Problem}}, summary="Load the current build"
)
async def reload(request: Request, engine: EngineDep, settings: SettingsDep) -> Ready:
    """Load the index folder's current build without rebuilding. Needs QA_ADMIN_TOKEN.
    A broken build is refused and the previous index keeps serving."""
    await counted(request.app, request.app.state.reloader.reload)
    return ready_report(request, engine, settings)
