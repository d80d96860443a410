"""HTTP API: create_app(settings) loads the encoder and the index once, then serves the routes."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from qa.config import Settings
from qa.encoder import BatchingEncoder, Encoder, encoder_from
from qa.engine import Engine, Reloader, thresholds_for
from qa.errors import (
    BuildCancelled,
    CorpusError,
    IndexBusy,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    NotFound,
    QAError,
)
from qa.index import LoadedIndex, build_stamp, staleness
from qa.middleware import Metrics, Observe, RateLimiter, configure_logging
from qa.schemas import (
    AskRequest,
    AskResponse,
    DocumentList,
    DocumentOut,
    DocumentSummary,
    Health,
    PassageOut,
    Problem,
    Ready,
    ReindexReport,
    Suggestions,
)

log = logging.getLogger("qa")
T = TypeVar("T")
WEB = resources.files("qa") / "web"


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_index(request: Request) -> LoadedIndex:
    return request.app.state.engine.index  # raises IndexMissing -> 503 until an index is loaded


EngineDep = Annotated[Engine, Depends(get_engine)]
IndexDep = Annotated[LoadedIndex, Depends(get_index)]


def serving_encoder(settings: Settings, encoder: Encoder | None = None) -> Encoder:
    """The encoder for request threads: concurrent questions share one model call."""
    encoder = encoder or encoder_from(settings, serving=True)
    return BatchingEncoder(encoder) if settings.batch_requests else encoder


def create_app(
    settings: Settings | None = None,
    *,
    encoder: Encoder | None = None,
    engine: Engine | None = None,
    watch: bool = False,
    follow: bool = False,
) -> FastAPI:
    """Build the app. Pass ``engine`` to serve one already loaded (``qa serve`` loads before binding)."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal engine
        if engine is None:
            engine = Engine(settings, serving_encoder(settings, encoder))
            try:
                engine.load()
            except IndexMissing as error:
                log.warning("%s; serving 503 until it is built", error)
        app.state.engine = engine
        app.state.reloader = Reloader(engine)
        app.state.stale_cache = (0.0, None, None)
        app.state.corpus_memo = {}  # per-file digests, so probes re-read only edited files
        if engine.ready:
            log.info("serving index %s", engine.index.fingerprint[:12])
        _stop_builds_on_signal(app.state.reloader.stopping)
        tasks = [asyncio.create_task(_watch(app))] if watch else []
        tasks += [asyncio.create_task(_follow(app))] if follow else []
        yield
        app.state.reloader.stopping.set()
        for task in tasks:
            task.cancel()

    app = FastAPI(
        title="Cited answers",
        version="1",
        summary="Extractive answers with verbatim, checkable citations, or an honest refusal.",
        lifespan=lifespan,
        responses={503: {"model": Problem, "description": "No index loaded"}},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "authorization"],
        )
    # 413 whether announced by Content-Length or streamed.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_body_bytes)
    if settings.allowed_hosts != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    # Added last, so outermost: every response, a 413 or a 429 included, gets its id and headers.
    app.add_middleware(
        Observe,
        metrics=metrics,
        limiter=RateLimiter(settings.rate_limit_per_minute),
        max_body_bytes=settings.max_body_bytes,
    )
    _add_error_handlers(app)
    _add_routes(app, settings, metrics)
    app.mount("/static", StaticFiles(directory=str(WEB)), name="static")
    return app


def _stop_builds_on_signal(stopping: threading.Event) -> None:
    """Set ``stopping`` as soon as SIGTERM or SIGINT arrives, before uvicorn drains the requests in
    flight: a reindex under way must stop at once rather than publish after shutdown began. Chained
    in front of the handlers uvicorn installed (signals belong to the main thread; under a test
    client there are none to chain)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(number: int, frame: FrameType | None, previous: Callable = previous) -> None:
            stopping.set()
            previous(number, frame)

        signal.signal(sig, handler)


async def _watch(app: FastAPI) -> None:
    """Reindex when the corpus changes (watchfiles debounces bursts of edits)."""
    from watchfiles import awatch

    settings: Settings = app.state.settings
    async for _changes in awatch(settings.corpus_dir, debounce=1000, recursive=True):
        await _swap(
            app,
            app.state.reloader.reindex,
            "corpus changed; index %s",
            "corpus changed but the rebuild failed, still serving the previous index: %s",
        )


async def _follow(app: FastAPI, every: float = 1.0) -> None:
    """Load the build the index folder's ``current`` points to once another process has changed it
    (a sibling worker's reindex, ``qa index``, ``qa calibrate``). A build that fails to load is not
    retried until it changes again; the previous index keeps serving meanwhile."""
    settings: Settings = app.state.settings
    tried: tuple[Path, int] | None = None
    while True:
        await asyncio.sleep(every)
        stamp = build_stamp(settings.index_dir)
        engine: Engine = app.state.engine
        if stamp is None or stamp == tried or (engine.ready and engine.index.stamp == stamp):
            continue
        tried = stamp
        await _swap(
            app,
            app.state.reloader.reload,
            "followed the index to %s",
            "the index folder moved to a build that does not load, still serving: %s",
        )


async def _counted(app: FastAPI, action: Callable[[], T]) -> T:
    """Run a reindex or reload off the event loop and count its outcome; errors propagate."""
    try:
        result = await run_in_threadpool(action)
    except Exception:
        app.state.metrics.reloads.labels("failed").inc()
        raise
    app.state.metrics.reloads.labels("ok").inc()
    return result


async def _swap(app: FastAPI, action: Callable[[], Any], done: str, failed: str) -> None:
    """A reindex or reload in the background: counted and logged; a failure leaves the index serving."""
    try:
        result = await _counted(app, action)
        log.info(done, result.fingerprint[:12])
    except QAError as error:
        log.error(failed, error)
    except Exception:  # a bug must not end the watch or follow loop: later builds still load
        log.exception(failed, "unexpected error")


def worker_app() -> FastAPI:
    """The app of each ``qa serve --workers N`` process: settings from the environment, index followed."""
    settings = Settings()
    configure_logging("INFO" if settings.access_log else "WARNING")
    return create_app(settings, follow=True)


def _add_error_handlers(app: FastAPI) -> None:
    statuses = {
        IndexMissing: 503,
        BuildCancelled: 503,
        NotFound: 404,
        IndexBusy: 409,
        IndexCorrupt: 409,  # the build on disk cannot be served; the loaded one keeps serving
        IndexMismatch: 409,
        CorpusError: 422,
    }

    @app.exception_handler(QAError)
    async def domain_error(request: Request, error: QAError) -> JSONResponse:
        status = next((code for kind, code in statuses.items() if isinstance(error, kind)), 500)
        return JSONResponse({"detail": str(error)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # Where and what, never the input: it may hold what JSON cannot carry back (NaN, Infinity,
        # a lone surrogate), and echoing it made the error handler itself fail with a 500.
        detail = [
            {"loc": [_printable(part) for part in e["loc"]], "msg": _printable(e["msg"]), "type": e["type"]}
            for e in error.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and "parsing the body" in str(error.detail):
            # A body that is not JSON (or not UTF-8) is invalid input like any other: 422.
            detail = [{"loc": ["body"], "msg": "the request body is not valid JSON", "type": "json_invalid"}]
            return JSONResponse({"detail": detail}, status_code=422)
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)


def _printable(value: object) -> object:
    """A location part or message that encodes as UTF-8 (a field named by a lone surrogate)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _add_routes(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    @app.post(
        "/ask",
        response_model=AskResponse,
        responses={
            413: {"description": "Request body too large (plain text when announced by Content-Length)"},
            429: {"model": Problem, "description": "Too many questions from this client"},
        },
    )
    def ask(body: AskRequest, engine: EngineDep) -> Response:
        """Answer with the best sentence of the best passage and cite the top passages, or refuse."""
        result = engine.ask(body.question, body.top_k, explain=body.explain)
        metrics.answers.labels("answered" if result.answered else "refused").inc()
        if result.cached:
            metrics.cache_hits.inc()
        # The body is built from typed dataclasses that mirror AskResponse (the fuzz run checks the
        # schema); skipping a second validation of it keeps the cached path fast.
        return JSONResponse(result.to_json(explain=body.explain))

    @app.get("/documents", response_model=DocumentList)
    def list_documents(
        index: IndexDep,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> DocumentList:
        """Documents in the served index with their metadata, in id order, paginated."""
        ids = sorted(index.documents)
        page = [index.documents[i] for i in ids[offset : offset + limit]]
        return DocumentList(
            total=len(ids),
            offset=offset,
            limit=limit,
            documents=[
                DocumentSummary(
                    **d.to_json(), chars=len(d.text), passages=len(index.by_document.get(d.doc_id, []))
                )
                for d in page
            ],
        )

    @app.get("/documents/{doc_id}", response_model=DocumentOut, responses={404: {"model": Problem}})
    def get_document(doc_id: str, index: IndexDep) -> DocumentOut:
        document = index.documents.get(doc_id)
        if document is None:
            raise NotFound(f"no document with id {doc_id!r}")
        return DocumentOut(**document.to_json(), passages=index.by_document.get(doc_id, []))

    @app.get("/passages/{passage_id}", response_model=PassageOut, responses={404: {"model": Problem}})
    def get_passage(passage_id: str, index: IndexDep) -> PassageOut:
        position = index.positions.get(passage_id)
        if position is None:
            raise NotFound(f"no passage with id {passage_id!r}")
        passage = index.passages[position]
        document = index.documents[passage.doc_id]
        return PassageOut(**asdict(passage), title=document.title, source=document.source)

    @app.get("/suggestions", response_model=Suggestions)
    def suggestions(index: IndexDep) -> Suggestions:
        """Sample questions for the web page: section headings of the corpus phrased as questions."""
        seen: dict[str, None] = {}
        for passage in index.passages:
            for heading in passage.heading.split(" › "):
                if heading.endswith("?") and len(seen) < 6:
                    seen.setdefault(heading, None)
        return Suggestions(questions=list(seen))

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        """The process is alive."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Ready, responses={503: {"model": Problem}})
    def readyz(request: Request, engine: EngineDep) -> Ready:
        """An index is loaded: its size, model, fingerprint, age and whether the corpus changed since."""
        index = engine.index
        reason = _cached_staleness(request, settings, index)
        return Ready(
            status="ready",
            passages=len(index.passages),
            documents=len(index.documents),
            model=index.model,
            fingerprint=index.fingerprint,
            built_at=index.manifest["built_at"],
            age_seconds=round(index.age_seconds(), 1),
            stale=reason is not None,
            stale_reason=reason,
            calibration=thresholds_for(index, settings).source,
            last_reload_error=request.app.state.reloader.last_error,
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics_route(request: Request) -> Response:
        engine: Engine = request.app.state.engine
        if engine.ready:
            index = engine.index
            metrics.index_info.clear()
            metrics.index_info.labels(index.fingerprint, index.model).set(1)
            metrics.index_age.set(index.age_seconds())
            metrics.index_passages.set(len(index.passages))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/admin/reindex",
        response_model=ReindexReport,
        responses={
            401: {"model": Problem},
            404: {"model": Problem},
            409: {"model": Problem},
            422: {"model": Problem},
        },
    )
    async def reindex(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> ReindexReport:
        """Rebuild from the corpus and swap the new index in while serving. Needs QA_ADMIN_TOKEN."""
        _authorize(settings, authorization)
        engine: Engine = request.app.state.engine
        previous = engine.index.fingerprint if engine.ready else None
        report = await _counted(request.app, request.app.state.reloader.reindex)
        return ReindexReport(
            **{
                **asdict(report),
                "previous_fingerprint": previous,
                "embed_seconds": round(report.embed_seconds, 3),
                "total_seconds": round(report.total_seconds, 3),
            }
        )

    @app.post(
        "/admin/reload",
        response_model=Ready,
        responses={401: {"model": Problem}, 404: {"model": Problem}, 500: {"model": Problem}},
    )
    async def reload(request: Request, authorization: Annotated[str | None, Header()] = None) -> Ready:
        """Load the index folder's current build without rebuilding. Needs QA_ADMIN_TOKEN.
        A broken build is refused and the previous index keeps serving."""
        _authorize(settings, authorization)
        await _counted(request.app, request.app.state.reloader.reload)
        return readyz(request, request.app.state.engine)

    @app.get("/", include_in_schema=False)
    def home() -> FileResponse:
        return FileResponse(str(WEB / "index.html"))

    @app.get("/view/{doc_id}", include_in_schema=False)
    def view(doc_id: str) -> FileResponse:
        return FileResponse(str(WEB / "view.html"))


def _authorize(settings: Settings, authorization: str | None) -> None:
    """Admin routes: off (404) without a configured token, 401 without the right bearer token."""
    if not settings.admin_token:
        raise HTTPException(404, "Not Found")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def _cached_staleness(request: Request, settings: Settings, index: LoadedIndex) -> str | None:
    """Hashing the corpus on every probe would be wasteful: reuse the answer for two seconds."""
    checked_at, key, reason = request.app.state.stale_cache
    now = time.monotonic()
    if key == index.fingerprint and now - checked_at < 2.0:
        return reason
    reason = staleness(settings, index.manifest, request.app.state.corpus_memo)
    request.app.state.stale_cache = (now, index.fingerprint, reason)
    return reason
