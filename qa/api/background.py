"""Work beside the requests: reindex or reload off the event loop, the corpus watch and index follow
loops, and stopping a build when the server is told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from qa.api.state import state_of
from qa.config import Settings
from qa.engine import Engine
from qa.errors import QAError
from qa.store import IndexFolder

log = logging.getLogger("qa")
T = TypeVar("T")


def stop_builds_on_signal(stopping: threading.Event) -> None:
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


async def counted(app: FastAPI, action: Callable[[], T]) -> T:
    """Run a reindex or reload off the event loop and count its outcome; errors propagate."""
    try:
        result = await run_in_threadpool(action)
    except Exception:
        state_of(app).metrics.reloads.labels("failed").inc()
        raise
    state_of(app).metrics.reloads.labels("ok").inc()
    return result


async def watch(app: FastAPI) -> None:
    """Reindex when the corpus changes (watchfiles debounces bursts of edits)."""
    from watchfiles import awatch

    settings: Settings = state_of(app).settings
    async for _changes in awatch(settings.corpus_dir, debounce=1000, recursive=True):
        await _swap(
            app,
            state_of(app).running.reloader.reindex,
            "corpus changed; index %s",
            "corpus changed but the rebuild failed, still serving the previous index: %s",
        )


async def follow(app: FastAPI, every: float = 1.0) -> None:
    """Load the build the index folder's ``current`` points to once another process has changed it
    (a sibling worker's reindex, ``qa index``, ``qa calibrate``). A build that fails to load is not
    retried until it changes again; the previous index keeps serving meanwhile."""
    settings: Settings = state_of(app).settings
    tried: tuple[Path, int] | None = None
    while True:
        await asyncio.sleep(every)
        stamp = IndexFolder(settings.index_dir).stamp()
        engine: Engine = state_of(app).running.engine
        if stamp is None or stamp == tried or (engine.ready and engine.index.stamp == stamp):
            continue
        tried = stamp
        await _swap(
            app,
            state_of(app).running.reloader.reload,
            "followed the index to %s",
            "the index folder moved to a build that does not load, still serving: %s",
        )


async def _swap(app: FastAPI, action: Callable[[], Any], done: str, failed: str) -> None:
    """A reindex or reload in the background: counted and logged; a failure leaves the index serving."""
    try:
        result = await counted(app, action)
        log.info(done, result.fingerprint[:12])
    except QAError as error:
        log.error(failed, error)
    except Exception:  # a bug must not end the watch or follow loop: later builds still load
        log.exception(failed, "unexpected error")
