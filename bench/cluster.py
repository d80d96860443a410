"""A Ray cluster on this machine for the tests and benchmarks: a head and more nodes, each a
``ray start --block`` on free loopback ports in its own session, stopped by its pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.server import free_port

RAY = Path(sys.executable).with_name("ray")
STARTED = "Ray runtime started"
ATTEMPTS = 3  # a node that does not come up is started again on fresh ports
OBJECT_STORE = 512 * 2**20  # per node, in shared memory: Ray's default takes 30% of the machine


class LocalCluster:
    """``nodes`` Ray nodes (the first the head) of ``cpus`` logical CPUs each; ``address`` is the
    head's, for ``qa index --ray`` and ``qa serve --ray``."""

    def __init__(self, nodes: int = 2, cpus: int = 2, timeout: float = 90) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="qa-ray-", dir="/tmp"))  # short: Ray's socket paths
        self.address = f"127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            for number in range(nodes):
                self._start_node(number, cpus, timeout)
        except BaseException:
            self.stop()
            raise

    def _start_node(self, number: int, cpus: int, timeout: float) -> None:
        """Start node ``number``; one that fails to come up (a loopback port taken between
        ``free_port`` and its bind, a raylet slow to register on a busy machine) is stopped and
        started again on fresh ports, up to ``ATTEMPTS`` times."""
        failures = []
        for _ in range(ATTEMPTS):
            try:
                self._start(number, cpus, timeout)
                return
            except RuntimeError as error:
                failures.append(str(error))
                process = self.processes.pop()
                _stop(process, grace=5)
        raise RuntimeError("\n\n".join(failures))

    def _start(self, number: int, cpus: int, timeout: float) -> None:
        if number == 0:
            self.address = f"127.0.0.1:{free_port()}"
        ports = {
            "--node-manager-port": free_port(),
            "--object-manager-port": free_port(),
            "--min-worker-port": 0,  # any free port for workers
            "--max-worker-port": 0,
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--metrics-export-port": free_port(),
            "--runtime-env-agent-port": free_port(),
        }
        role = (
            [
                "--head",
                "--port",
                self.address.split(":")[1],
                "--temp-dir",
                str(self.temp),
                "--ray-client-server-port",
                str(free_port()),
                "--include-dashboard=false",
            ]
            if number == 0
            else ["--address", self.address]
        )
        command = [
            str(RAY),
            "start",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            str(cpus),
            "--disable-usage-stats",
            *role,
            *(str(x) for pair in ports.items() for x in pair),
        ]
        log = self.temp / f"node-{number}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its processes share its session: stopped together
                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
            )
        self.processes.append(process)
        deadline = time.monotonic() + timeout
        while STARTED not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"ray node {number} did not start:\n{log.read_text(errors='replace')[-2000:]}"
                    f"{self._raylet_errors()}"
                )
            time.sleep(0.2)

    def _raylet_errors(self) -> str:
        """The tail of each raylet's error log in the head's session folder, for a failed start."""
        logs = sorted((self.temp / "session_latest" / "logs").glob("raylet*.err"))
        tails = [f"\n{path.name}:\n{path.read_text(errors='replace')[-1000:]}" for path in logs]
        return "".join(tails)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM to each node, newest first; what is left of its session after ``grace`` seconds
        (raylet, workers, actors) is killed."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in reversed(self.processes):
            _stop(process, grace=max(deadline - time.monotonic(), 0.1), signalled=True)
        self.processes.clear()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop(process: subprocess.Popen[bytes], grace: float, signalled: bool = False) -> None:
    """SIGTERM (unless already ``signalled``), SIGKILL after ``grace`` seconds, then whatever is
    left of the node's session."""
    if not signalled and process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _kill_session(process.pid)


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the session ``sid`` (a node's raylet, workers and actors)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == sid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
