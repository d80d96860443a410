"""Running the service: in this process, as several worker processes on one port (uvicorn's
supervisor), or on a Ray cluster with Ray Serve. ``qa serve`` picks one; every error a user can act
on is a QAError with its message."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
from typing import Any

from qa.config import Settings
from qa.errors import IndexMissing, QAError

# uvicorn drains requests in flight on SIGTERM for at most this long.
GRACEFUL_SECONDS = 10


def serve_one(settings: Settings, watch: bool) -> None:
    """One process: the index and the model loaded before the port is bound (a broken index stops
    here with its message), then uvicorn until SIGTERM or Ctrl+C (exit 0 after draining)."""
    import uvicorn

    from qa.api import create_app
    from qa.encoder import serving_encoder
    from qa.engine import Engine, one_blas_thread
    from qa.middleware import configure_logging

    check_port(settings.host, settings.port)
    one_blas_thread()
    engine = Engine(settings, serving_encoder(settings))
    try:
        engine.load()
    except IndexMissing as error:
        _say(f"warning: {error}; answering 503 until it exists")
    # Follows the index folder: a `qa index` beside the server is served within a second.
    application = create_app(settings, engine=engine, watch=watch, follow=True)
    configure_logging(_log_level(settings))  # last: loading the model resets logging
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal: exit 0 on it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _announce(settings)
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the JSON logging configured above
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        **_proxy_options(settings),
    )


def serve_workers(settings: Settings) -> None:
    """``settings.workers`` processes on one port, each building its app from the environment
    (qa.api.worker_app); the index is checked first, so a broken one still stops with a message.
    uvicorn's supervisor drains and exits 0 on SIGTERM, and stops if a worker cannot start."""
    import uvicorn

    from qa.middleware import configure_logging
    from qa.store import load_index

    check_port(settings.host, settings.port)
    try:
        load_index(settings.index_dir)  # no model needed to check it
    except IndexMissing as error:
        _say(f"warning: {error}; answering 503 until it exists")
    os.environ.update(
        {
            "QA_CORPUS_DIR": str(settings.corpus_dir.resolve()),
            "QA_INDEX_DIR": str(settings.index_dir.resolve()),
            "QA_ACCESS_LOG": str(settings.access_log).lower(),
            "QA_WORKERS": str(settings.workers),  # each worker's encoder takes its share of the cores
        }
    )
    configure_logging(_log_level(settings))
    _announce(settings)
    uvicorn.run(
        "qa.api:worker_app",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        **_proxy_options(settings),
    )


class ThreadServer:
    """uvicorn serving ``application`` from a thread of this process, on a port other processes of
    the machine may listen on too (SO_REUSEPORT: the kernel spreads connections over them). How a
    Ray Serve router replica answers HTTP itself (``qa serve --ray --http replicas``)."""

    def __init__(self, application: Any, settings: Settings) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.socket.bind((settings.host, settings.port))
        config = uvicorn.Config(
            application,
            log_config=None,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            **_proxy_options(settings),
        )
        self.server = uvicorn.Server(config)  # no signal handlers outside the main thread
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="qa-http", daemon=True
        )
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        """Drain the requests in flight (at most GRACEFUL_SECONDS), then close the port."""
        self.server.should_exit = True
        self.thread.join(GRACEFUL_SECONDS + 5)
        self.socket.close()


def serve_on_ray(
    settings: Settings, address: str, shards: int | None, replicas: int, cpus: float, http: str = "auto"
) -> None:
    """Ray Serve: the index built with ``shards`` shards if it has another count, then the router's
    replicas, each with an actor per shard, until SIGTERM or Ctrl+C. ``http``: "proxy" (Serve's
    HTTP proxy on the head node passes requests to the replicas), "replicas" (each replica answers
    HTTP itself on the port of the node it runs on) or "auto" (the replicas on a one-node cluster)."""
    from qa.cluster import connect
    from qa.store import IndexFolder

    settings = settings.model_copy(
        update={"corpus_dir": settings.corpus_dir.resolve(), "index_dir": settings.index_dir.resolve()}
    )
    check_port(settings.host, settings.port)
    connect(address)
    try:
        count = IndexFolder(settings.index_dir).read_manifest().shards
    except QAError:
        count = 0
    if count != (shards or count) or count == 0:
        from qa.builder import build_index
        from qa.encoder import encoder_from

        wanted = shards or 1
        _say(f"building the index with {wanted} shard(s)")
        build_index(settings.model_copy(update={"shards": wanted}), encoder_from(settings))
        count = wanted
    from qa.cluster import serve as ray_serve

    # Before deploying: replicas that answer HTTP themselves may be asked (and the server stopped)
    # while the others still start.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    http = ray_serve.run(settings, count, replicas, cpus, http)
    _say(f"Ray Serve: {count} shard(s), {replicas} replica(s) each, HTTP by the {http}")
    _announce(settings)
    stop.wait()
    ray_serve.shutdown()


def check_port(host: str, port: int) -> None:
    """A port another program listens on stops the command here, naming a free one to use instead."""
    if _busy(host, port):
        other = next((p for p in range(port + 1, min(port + 100, 65536)) if not _busy(host, p)), port + 1)
        raise QAError(
            f"port {port} on {host} is already in use (another qa serve?); choose another with "
            f"`qa serve --port {other}`, `QA_PORT={other}` or `make serve PORT={other}`"
        )


def _busy(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise QAError(f"cannot listen on {host}:{port}: {error.strerror}") from None
            return True
    return False


def _log_level(settings: Settings) -> str:
    return "INFO" if settings.access_log else "WARNING"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _announce(settings: Settings) -> None:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    _say(f"serving on http://{host}:{settings.port} (API docs at /docs; Ctrl+C stops)")


def _proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn believes X-Forwarded-* from 127.0.0.1 unless told otherwise: only configured proxies."""
    if not settings.forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.forwarded_allow_ips}
