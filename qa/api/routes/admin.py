"""Admin routes: rebuild or reload the index while serving. Off without ``QA_ADMIN_TOKEN``."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from qa.api.background import counted
from qa.api.deps import EngineDep, SettingsDep, require_admin
from qa.api.routes.health import ready_report
from qa.api.schemas import DocumentIn, Problem, Ready, ReindexReport
from qa.api.state import state_of
from qa.readers import READERS

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


# Uploads are held to QA_MAX_DOCUMENT_BYTES as they arrive; this is only the route's own ceiling,
# above the 16 KiB every other body is held to (QA_MAX_BODY_BYTES).
UPLOAD_CEILING = 1 << 30
# A file's format as its suffix ("md", "txt") or as the documents list it ("markdown", "text"); the
# FAQ format has two suffixes, so it is named by one of them.
_SUFFIXES = {suffix.removeprefix("."): suffix for suffix in READERS}
_NAMES = {name: suffix for suffix, (name, _) in reversed(READERS.items()) if name != "faq"}  # first wins
SUFFIX_OF = dict(sorted((_NAMES | _SUFFIXES).items()))
FORMATS = list(SUFFIX_OF)
FILE_ROUTE = r"^/admin/documents/[^/]+/file$"  # the one route whose body may be a whole document


@router.put(
    "/documents/{doc_id}/file",
    response_model=ReindexReport,
    responses={409: {"model": Problem}, 413: {"model": Problem}, 422: {"model": Problem}},
    summary="Add or replace a document from a file",
    max_body_size=UPLOAD_CEILING,
)
async def put_file(
    doc_id: str,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    format: Annotated[
        str,
        Query(
            pattern="^(" + "|".join(FORMATS) + ")$",
            description="The file's format, as its suffix or its name: " + ", ".join(FORMATS) + ".",
        ),
    ],
) -> ReindexReport:
    """The request body is the file itself (`curl -T manual.pdf '.../admin/documents/manual/file?format=pdf'`):
    written into the corpus folder as `<doc_id>.<suffix>` (`text` as `.txt`), replacing the file the
    document came from in any format, and read as `qa index` reads it (PDF and Word in a child process
    under the parse limits), then the incremental build swapped in. Needs QA_ADMIN_TOKEN. At most QA_MAX_DOCUMENT_BYTES
    (413 beyond); a file the build cannot use is a 422 and the corpus folder is left as it was."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > settings.max_document_bytes:
            raise HTTPException(
                413, f"the file is over {settings.max_document_bytes} bytes (QA_MAX_DOCUMENT_BYTES)"
            )
    reloader = state_of(request.app).running.reloader
    return _reported(
        engine.index.fingerprint if engine.ready else None,
        await counted(request.app, lambda: reloader.put_file(doc_id, SUFFIX_OF[format], bytes(raw))),
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
