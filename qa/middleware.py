"""HTTP plumbing around the routes: request ids, JSON access logs, metrics, headers, the rate limiter."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable

from cachetools import TTLCache
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("qa.access")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}
# The API docs pages (Swagger UI, ReDoc) are served from this server (fastapi-offline) and start
# with an inline script; ReDoc runs a worker from a blob. Nothing is loaded from elsewhere.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; font-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PAGES = ("/docs", "/docs/oauth2-redirect", "/redoc")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:  # kept in the log for operators; never sent to clients
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (uvicorn's own loggers included)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("qa", "qa.access"):
        logging.getLogger(name).disabled = False  # a library's dictConfig may have disabled them
    logging.getLogger("qa").setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # qa.access has one line per request


class Metrics:
    """Prometheus metrics in a registry of the app's own (no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("qa_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram(
            "qa_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.answers = Counter("qa_answers", "Questions by outcome", ["outcome"], registry=self.registry)
        self.cache_hits = Counter("qa_cache_hits", "Answers served from the cache", registry=self.registry)
        self.index_info = Gauge(
            "qa_index_info", "The index being served", ["fingerprint", "model"], registry=self.registry
        )
        self.index_age = Gauge(
            "qa_index_age_seconds", "Seconds since the served index was built", registry=self.registry
        )
        self.index_passages = Gauge(
            "qa_index_passages", "Passages in the served index", registry=self.registry
        )
        self.reloads = Counter("qa_reloads", "Index reloads by outcome", ["outcome"], registry=self.registry)


class RateLimiter:
    """Token bucket per client address for the question routes; off when ``per_minute`` is 0."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(maxsize=100_000, ttl=600)
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, seen = self._buckets.get(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - seen) * rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / rate


class BodyTimeout(HTTPException):
    """The request body did not arrive in time (FastAPI passes an HTTPException raised while it reads
    the body on to the app's handler: a JSON 408)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} s")


class Observe:
    """Pure ASGI middleware: request id, security headers, metrics, one JSON log line, a JSON 413 for
    an announced oversized body, a JSON 408 for a body slower than ``body_seconds``, and a 500
    without internals for any unexpected error. (The rate limit is a dependency of the question
    routes: qa/api/deps.py.)

    The body deadline frees what a slow client holds: under Ray Serve a request being received
    occupies one of its replica's request slots."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_body_bytes: int,
        routes: Callable[[], list[BaseRoute]],
        body_seconds: float = 10.0,
        uploads: tuple[str, int] | None = None,
    ) -> None:
        """``uploads``: the path pattern of PUT requests whose body is a document, and its limit."""
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.routes = routes  # the app's routes, to label a request the router did not tag
        self.body_seconds = body_seconds
        self.uploads = (re.compile(uploads[0]), uploads[1]) if uploads else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        client = scope["client"][0] if scope.get("client") else "-"
        status = 500
        started_response = False

        method = scope["method"]
        asked = dict(scope)  # as it came: routing rewrites the path of a mount's requests
        head = method == "HEAD"
        if head:  # routed as the GET it asks about; the body is dropped below
            scope = {**scope, "method": "GET"}

        plain_error: Message | None = None  # a plain-text error's start, held until its body is in
        plain_body: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started_response, plain_error
            if plain_error is not None and message["type"] == "http.response.body":
                # A middleware's plain-text error (a Host or CORS origin refused) in JSON like every
                # other error.
                plain_body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                text = b"".join(plain_body).decode("utf-8", "replace").strip()
                body = json.dumps({"detail": text}).encode()
                response_headers = MutableHeaders(scope=plain_error)
                response_headers["Content-Type"] = "application/json"
                response_headers["Content-Length"] = str(len(body))
                await send(plain_error)
                message = {"type": "http.response.body", "body": body}
            if head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                response_headers = MutableHeaders(scope=message)
                response_headers["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    response_headers.setdefault(name, value)
                if not scope["path"].startswith("/static/"):
                    # Answers, readiness and documents change with every reindex.
                    response_headers.setdefault("Cache-Control", "no-store")
                if scope["path"] in DOCS_PAGES:
                    response_headers["Content-Security-Policy"] = DOCS_CSP
                if status >= 400 and response_headers.get("content-type", "").startswith("text/plain"):
                    plain_error = message
                    return
            await send(message)

        deadline = time.monotonic() + self.body_seconds
        body_done = False

        async def receive_in_time() -> Message:
            """The next body part before the deadline; after the last one (waiting for a
            disconnect), as it comes."""
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise BodyTimeout(self.body_seconds) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        announced = headers.get(b"content-length", b"")
        limit = self.max_body_bytes
        if self.uploads and method == "PUT" and self.uploads[0].match(scope["path"]):
            limit = self.uploads[1]
        try:
            if announced.isdigit() and int(announced) > limit:
                # Streamed bodies are cut by Starlette's limit; an announced one is refused before
                # it is read, in JSON like every other error.
                response = JSONResponse(
                    {"detail": f"the request body is over {limit} bytes"}, status_code=413
                )
                await response(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive_in_time, send_with_headers)
        except BodyTimeout as error:  # raised where no handler turns it into a response
            if not started_response:
                response = JSONResponse({"detail": error.detail}, status_code=error.status_code)
                await response(scope, receive, send_with_headers)
        except Exception:  # logged with its traceback; the client gets only the request id
            log.exception("unexpected error", extra={"fields": {"request_id": request_id}})
            if not started_response:
                response = JSONResponse(
                    {"detail": f"internal error (request id {request_id})"}, status_code=500
                )
                await response(scope, receive, send_with_headers)
        elapsed = time.perf_counter() - started
        label = getattr(scope.get("route"), "path", None) or self._template(asked)  # bounded values
        self.metrics.requests.labels(label, str(status)).inc()
        self.metrics.latency.labels(label).observe(elapsed)
        log.info(
            "request",
            extra={
                "fields": {
                    "request_id": request_id,
                    "method": method,
                    "path": scope["path"],
                    "route": label,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "client": client,
                }
            },
        )

    def _template(self, scope: Scope) -> str:
        """The route template of a request FastAPI did not tag (the API docs, a static file: its
        mount), or "unmatched"; never the raw path, so label values stay bounded."""
        for route in self.routes():
            if route.matches(scope)[0] == Match.FULL:
                return getattr(route, "path", "unmatched") or "unmatched"
        return "unmatched"
