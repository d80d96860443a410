"""A real ``qa serve`` (uvicorn) on a free loopback port, stopped by its pid: what the benchmarks
and the tests start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from qa.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``qa serve`` on 127.0.0.1 for ``settings``' corpus, index, model and reader; its output goes to
    ``log`` (default: a file in the temporary folder, never the working tree). ``env`` adds to the
    environment, ``args`` to the command line."""

    def __init__(
        self,
        settings: Settings,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        *,
        workers: int = 1,
        log: Path | None = None,
    ) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or Path(tempfile.gettempdir()) / f"qa-server-{self.port}.log"
        full_env = {
            **os.environ,
            "QA_WORKERS": str(workers),
            "QA_CORPUS_DIR": str(settings.corpus_dir),
            "QA_INDEX_DIR": str(settings.index_dir),
            "QA_MODEL": settings.model,
            "QA_READER": settings.reader,
            "QA_ONNX_DIR": str(settings.onnx_export_dir),
            "HF_HUB_OFFLINE": "1",
            **(env or {}),
        }
        command = [sys.executable, "-m", "qa.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.started = time.monotonic()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, *(args or [])], env=full_env, stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from start until /readyz answers 200. A server that exits or is not ready in time
        is killed, and the error carries its log."""
        deadline = self.started + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()}")
                try:
                    if httpx.get(self.url + "/readyz", timeout=10).status_code == 200:
                        return time.monotonic() - self.started
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            raise TimeoutError(f"server not ready: {self.log.read_text()}")
        except BaseException:
            self.process.kill()  # never leave a half-started server behind
            self.process.wait()
            raise

    def rss_mib(self, field: str = "VmRSS") -> float:
        """Summed over the server and its worker processes (their peaks summed, for VmHWM)."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids += [int(p) for p in children.read_text().split()] if children.exists() else []
        total = 0.0
        for pid in pids:
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:  # a worker that exited meanwhile
                continue
            total += sum(int(line.split()[1]) / 1024 for line in lines if line.startswith(field + ":"))
        return total

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds; the exit code."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode
