"""Admin routes: rebuild or reload the index while serving. Off without ``QA_ADMIN_TOKEN``."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request

from qa.api.background import counted
from qa.api.deps import EngineDep, SettingsDep, require_admin
from qa.api.routes.health import ready_report
from qa.api.schemas import DocumentIn, Problem, Ready, ReindexReport
from qa.api.state import state_of

if TYPE_CHECKING:
    from qa.builder import BuildReport

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
    return _reported(previous, await counted(request.app, state_of(request.app).running.reloader.reindex))


@router.put(
    "/documents/{doc_id}",
    response_model=ReindexReport,
    responses={409: {"model": Problem}, 422: {"model": Problem}},
    summary="Add or replace a document",
)
async def put_document(doc_id: str, body: DocumentIn, request: Request, engine: EngineDep) -> ReindexReport:
    """Write the document into the corpus folder (``<doc_id>.md``, or over the Markdown file it
    comes from) and swap in the incremental build. Needs QA_ADMIN_TOKEN. A document the build cannot
    use is a 422 and the corpus folder is left as it was."""
    reloader = state_of(request.app).running.reloader
    return _reported(
        engine.index.fingerprint if engine.ready else None,
        await counted(
            request.app,
            lambda: reloader.put_document(
                doc_id, body.text, title=body.title, source=body.source, published=body.published
            ),
        ),
    )


@router.delete("/documents/{doc_id}", response_model=ReindexReport, summary="Remove a document")
async def delete_document(doc_id: str, request: Request, engine: EngineDep) -> ReindexReport:
    """Remove the document's file from the corpus folder and swap in the incremental build. Needs
    QA_ADMIN_TOKEN; 404 for an id the served index does not have."""
    reloader = state_of(request.app).running.reloader
    previous = engine.index.fingerprint if engine.ready else None
    return _reported(previous, await counted(request.app, lambda: reloader.delete_document(doc_id)))


def _reported(previous: str | None, report: BuildReport) -> ReindexReport:
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
    await counted(request.app, state_of(request.app).running.reloader.reload)
    return ready_report(request, engine, settings)
