"""Concurrent calls to a model merged into one model call: the embedder's and the reader's.

A call that finds the model idle runs it in its own thread, with no hand-off and no waiting window:
one client pays nothing. Calls arriving while the model is busy queue up; when the run ends, the
batcher thread takes them all in one call (up to ``max_batch`` items), and keeps going while more
arrive. One model run at a time, so the model's own threads have the cores.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


class Batcher(Generic[Item]):
    """Runs ``run(items) -> results`` (one result per item, in order: a list or an array's rows)
    for many callers at once."""

    def __init__(self, run: Callable[[list[Item]], Any], name: str, max_batch: int = 64) -> None:
        self._model = run
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._handed_over = threading.Condition(self._lock)
        self._queue: deque[_Pending[Item]] = deque()
        self._busy = False  # a model run is in progress or about to start
        self._batcher_owns = False  # the run in progress is the batcher thread's
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def __call__(self, items: list[Item]) -> Any:
        with self._lock:
            lead = not self._busy
            self._busy = True
            if not lead:
                pending = _Pending(items)
                self._queue.append(pending)
        if lead:
            try:
                return self._model(items)
            finally:
                self._release()
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        if pending.result is None:  # the batcher sets a result or an error before ``done``
            raise RuntimeError("the batcher finished a call without a result")
        return pending.result

    def _release(self) -> None:
        """End of a run: hand the queued calls to the batcher thread, or mark the model idle."""
        with self._lock:
            if self._queue:
                self._batcher_owns = True
                self._handed_over.notify()
            else:
                self._busy = self._batcher_owns = False

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._batcher_owns:
                    self._handed_over.wait()
                batch: list[_Pending[Item]] = []
                size = 0
                while self._queue and size < self.max_batch:
                    batch.append(self._queue.popleft())
                    size += len(batch[-1].items)
            try:
                results = self._model([item for p in batch for item in p.items])
            except Exception as error:  # handed to every waiting caller, which re-raises it
                for p in batch:
                    p.error = error
                    p.done.set()
            else:
                offset = 0
                for p in batch:
                    p.result = results[offset : offset + len(p.items)]
                    offset += len(p.items)
                    p.done.set()
            self._release()


class _Pending(Generic[Item]):
    __slots__ = ("items", "done", "result", "error")

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.done = threading.Event()
        self.result: Any = None
        self.error: Exception | None = None
