"""The app: settings, middleware, error handlers, the engine's lifespan and the routers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Mount

from qa.api import background
from qa.api.routes import admin, ask, documents, health, web
from qa.api.schemas import Problem
from qa.api.state import AppState, Serving, state_of
from qa.config import Settings
from qa.encoder import Encoder, serving_encoder
from qa.engine import Engine, Reloader, one_blas_thread
from qa.errors import (
    ECHO_CHARS,
    BuildCancelled,
    CorpusError,
    IndexBusy,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    NotFound,
    QAError,
    ServingDamaged,
)
from qa.middleware import Metrics, Observe, RateLimiter, configure_logging

log = logging.getLogger("qa")
ROUTERS = (ask.router, documents.router, health.router, admin.router, web.router)


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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal engine
        if engine is None:
            engine = Engine(settings, serving_encoder(settings, encoder))
            try:
                engine.load()
            except IndexMissing as error:
                log.warning("%s; serving 503 until it is built", error)
        serving = state_of(app).serving = Serving(engine, Reloader(engine))
        if engine.ready:
            log.info("serving index %s", engine.index.fingerprint[:12])
        background.stop_builds_on_signal(serving.reloader.stopping)
        tasks = [asyncio.create_task(background.watch(app))] if watch else []
        tasks += [asyncio.create_task(background.follow(app))] if follow else []
        yield
        serving.reloader.stopping.set()
        for task in tasks:
            task.cancel()

    # Swagger UI and ReDoc from fastapi-offline's copies of their files: /docs works without a network.
    app = FastAPIOffline(
        title="Cited answers",
        version=_version(),
        summary="Extractive answers with verbatim, checkable citations, or an honest refusal.",
        lifespan=lifespan,
        # No redirect from "/documents/" to "/documents": Starlette builds its address from the
        # Host header, which a client chooses.
        redirect_slashes=False,
        responses={503: {"model": Problem, "description": "No index loaded"}},
    )
    metrics = Metrics()
    app.state.qa = AppState(settings, metrics, RateLimiter(settings.rate_limit_per_minute))
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
        max_body_bytes=settings.max_body_bytes,
        routes=lambda: app.router.routes,
        body_seconds=settings.body_timeout_seconds,
        uploads=(admin.FILE_ROUTE, settings.max_document_bytes),
    )
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(web.WEB)), name="static")
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qa")
    except PackageNotFoundError:  # run from a checkout without installing it
        return "0+unknown"


def worker_app() -> FastAPI:
    """The app of each ``qa serve --workers N`` process: settings from the environment, index followed."""
    settings = Settings()
    configure_logging("INFO" if settings.access_log else "WARNING")
    one_blas_thread()  # this process answers questions
    return create_app(settings, follow=True)


def _add_error_handlers(app: FastAPI) -> None:
    statuses = {
        IndexMissing: 503,
        ServingDamaged: 503,
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
        if isinstance(error, IndexMissing):  # its message names the folder: not for any client
            return JSONResponse(
                {"detail": "no index is loaded yet; build it with `qa index`"}, status_code=503
            )
        return JSONResponse({"detail": str(error)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # Where and what, never the input: it may hold what JSON cannot carry back (NaN, Infinity,
        # a lone surrogate), and echoing it made the error handler itself fail with a 500.
        detail = [
            {"loc": [_location(part) for part in e["loc"]], "msg": _printable(e["msg"]), "type": e["type"]}
            for e in error.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and "parsing the body" in str(error.detail):
            # A body that is not JSON (or not UTF-8) is invalid input like any other: 422.
            detail = [{"loc": ["body"], "msg": "the request body is not valid JSON", "type": "json_invalid"}]
            return JSONResponse({"detail": detail}, status_code=422)
        headers = dict(error.headers or {})
        if (
            error.status_code == 405
        ):  # every method of the path, not only the first route's (GET and POST /ask)
            headers["Allow"] = ", ".join(_methods(request))
        return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=headers)


def _methods(request: Request) -> list[str]:
    """The methods the routes of this request's path answer."""
    found: set[str] = set()
    for route in _flat(request.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path):
            # A mount (the static files) answers GET and HEAD.
            found |= set(
                getattr(route, "methods", None) or (("GET", "HEAD") if isinstance(route, Mount) else ())
            )
    return sorted(found)


def _printable(value: object) -> object:
    """A location part or message that encodes as UTF-8 (a field named by a lone surrogate)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _location(part: object) -> object:
    """A location part of a 422, cut at ``ECHO_CHARS`` (an unknown field's name is the client's)."""
    if isinstance(part, str) and len(part) > ECHO_CHARS:
        part = part[:ECHO_CHARS] + "…"
    return _printable(part)


def _flat(routes: list) -> Iterator:
    """Every route, those of included routers too (FastAPI keeps an included router whole)."""
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is None:
            yield route
        else:
            yield from _flat(inner)
