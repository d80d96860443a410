"""Readers of container formats (PDF, Word) run in a child process with a time and a memory limit.

Their text is compressed: a 13 KB PDF of 400,000 text operators once took 45 s and 2 GB to read, in
the process that serves questions when a reindex came through the API. In a child such a file costs
at most the limits, is refused in one line naming the limit, and the reading process is untouched.

How: one worker process (``python -m qa.isolation``), started on first use, imports the readers'
libraries once; for each file it forks a child (cheap: the worker is small and has one thread), which
sets its memory limit and reads the file; the worker kills a child that overruns its time. So a file
costs a fork, not an interpreter start, and the serving process never forks itself.
"""

from __future__ import annotations

import atexit
import os
import resource
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import cast

from qa.errors import CorpusError
from qa.readers.base import Metadata

# A failure with this close to the memory limit held is put down to the limit: an allocation the
# limit refused surfaces as MemoryError, or as another error from inside a library.
NEAR_LIMIT = 64 * 2**20
# How long past a file's own limit the reading process waits for the worker before restarting it.
WORKER_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class ParseLimits:
    """What reading one container file may take: wall-clock time by its size (pdfplumber reads a
    text-heavy PDF at about 20 KB a second here: 49 s for a 300-page, 0.9 MB one), and memory
    (address space; pages are read one at a time, so a long document needs no more than a short one)."""

    min_seconds: float = 30.0
    seconds_per_mb: float = 60.0
    memory_mb: int = 512

    def seconds(self, size: int) -> float:
        return self.min_seconds + self.seconds_per_mb * size / 2**20


class _Worker:
    """The reading process's side of the worker: one request at a time, restarted when it dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None

    def read(self, suffix: str, path: Path, raw: bytes, limits: ParseLimits) -> tuple[str, object]:
        with self._lock:
            for _ in range(2):  # a worker that died (since the last file, or on this one) starts again once
                requests, replies = self._started()
                try:
                    requests.send((suffix, str(path), raw, limits))
                    if replies.poll(limits.seconds(len(raw)) + WORKER_GRACE_SECONDS):
                        return replies.recv()
                except (EOFError, OSError):
                    self.stop()
                    continue
                self.stop()  # no reply long past the file's limit: the worker is stuck
                raise CorpusError(
                    path,
                    f"the reading process did not answer within {limits.seconds(len(raw)):.0f} s and was "
                    "stopped (QA_MAX_PARSE_SECONDS); the file was left out",
                )
        raise CorpusError(path, "the reading process stopped while reading it; the file was left out")

    def _started(self) -> tuple[Connection, Connection]:
        if self._process is not None and self._process.poll() is None:
            assert self._requests is not None and self._replies is not None
            return self._requests, self._replies
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        package_root = str(Path(__file__).resolve().parent.parent)
        paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "qa.isolation", str(to_worker_r), str(from_worker_w)],
            pass_fds=(to_worker_r, from_worker_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # a library's prints never mix with the command's output
            env=env,
        )
        os.close(to_worker_r)
        os.close(from_worker_w)
        self._requests = Connection(to_worker_w, readable=False)
        self._replies = Connection(from_worker_r, writable=False)
        return self._requests, self._replies

    def stop(self) -> None:
        for connection in (self._requests, self._replies):
            if connection is not None:
                connection.close()
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        self._process = self._requests = self._replies = None


_worker = _Worker()
atexit.register(_worker.stop)


def read_contained(suffix: str, path: Path, raw: bytes, limits: ParseLimits) -> tuple[str, Metadata]:
    """The reader of ``suffix`` (qa/corpus.py's ``READERS``) on ``raw`` in a child process under
    ``limits``: its text and metadata, or a CorpusError with its problem or the limit it went over."""
    outcome, value = _worker.read(suffix, path, raw, limits)
    if outcome == "error":
        raise CorpusError(path, str(value))
    return cast(tuple[str, Metadata], value)


def _over_time(seconds: float, limits: ParseLimits) -> str:
    return (
        f"took over {seconds:.0f} s to read (QA_MAX_PARSE_SECONDS={limits.min_seconds:g} and "
        f"QA_MAX_PARSE_SECONDS_PER_MB={limits.seconds_per_mb:g}); the file was left out"
    )


def _over_memory(memory_mb: int) -> str:
    return f"needs over {memory_mb} MiB of memory to read (QA_MAX_PARSE_MEMORY_MB); the file was left out"


# The worker process.


def _serve(requests: Connection, replies: Connection) -> None:
    """Each request (suffix, path, bytes, limits) read in a forked child; its outcome ("ok", (text,
    metadata)) or ("error", problem) sent back, until the reading process goes away."""
    while True:
        try:
            suffix, path, raw, limits = requests.recv()
        except (EOFError, OSError):
            return
        replies.send(_read_in_child(suffix, Path(path), raw, limits))


def _read_in_child(suffix: str, path: Path, raw: bytes, limits: ParseLimits) -> tuple[str, object]:
    seconds = limits.seconds(len(raw))
    receiving, sending = Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # the child: read under the memory limit, send the outcome, exit
        receiving.close()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # a library's warnings, or Python's own report of a fatal MemoryError
        try:
            sending.send(_read_limited(suffix, path, raw, limits.memory_mb))
        finally:
            os._exit(0)
    sending.close()
    try:
        if not receiving.poll(seconds):
            return ("error", _over_time(seconds, limits))
        try:
            return receiving.recv()
        except EOFError:  # died without a word: Python aborts when it cannot recover from a
            _, status, usage = os.wait4(pid, 0)  # MemoryError, and a library may crash
            pid = 0
            if usage.ru_maxrss * 1024 > limits.memory_mb * 2**20 // 2:
                return ("error", _over_memory(limits.memory_mb))
            how = f"signal {-os.waitstatus_to_exitcode(status)}" if os.WIFSIGNALED(status) else "an error"
            return ("error", f"the reader crashed on it ({how}); the file was left out")
    finally:
        receiving.close()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)


def _read_limited(suffix: str, path: Path, raw: bytes, memory_mb: int) -> tuple[str, object]:
    from qa.corpus import problem_of
    from qa.readers import READERS

    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        return ("ok", READERS[suffix][1](path, raw))
    except Exception as error:  # noqa: BLE001 - whatever a library raises on a hostile file is its problem
        if _peak_memory() > limit - NEAR_LIMIT:
            return ("error", _over_memory(memory_mb))
        return ("error", error.problem if isinstance(error, CorpusError) else problem_of(error))


def _peak_memory() -> int:
    """The most address space this process has held, in bytes (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    import logging

    logging.getLogger().addHandler(logging.NullHandler())  # a damaged file's warnings are not shown
    import docx  # noqa: F401
    import pdfplumber  # noqa: F401 - imported once here, inherited by every child

    import qa.corpus  # noqa: F401
    import qa.readers  # noqa: F401

    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
