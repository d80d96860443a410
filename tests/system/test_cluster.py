"""The service on a real Ray cluster on this machine (a head and a second node, on free ports,
stopped by pid): a build on Ray Data equals a local build; search on Ray Serve answers as one index
does and rolls out a reindex without failing a request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench.server import free_port
from qa.builder import build_index
from qa.store import load_index
from tests.conftest import QUESTIONS, Server, slow_bodies

# A real Ray cluster on this machine: a head and a second node, on free ports, stopped by pid.


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    from bench.cluster import LocalCluster

    with LocalCluster(nodes=2, cpus=2) as running:
        yield running


def test_a_build_on_ray_data_equals_a_local_build(
    cluster, sharded, tmp_path: Path, real_encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    import qa.builder
    from qa.cluster import connect
    from qa.cluster.data import RayStages

    settings, _, _ = sharded
    local = settings.model_copy(update={"index_dir": tmp_path / "local", "shards": 2})
    build_index(local, real_encoder)
    on_ray = local.model_copy(update={"index_dir": tmp_path / "ray"})
    connect(cluster.address)

    def not_here(*args: object) -> None:
        raise AssertionError("a stage of the Ray build ran in this process")

    # Splitting and embedding must happen in Ray's workers: here, they would fail.
    monkeypatch.setattr(qa.builder, "_split", not_here)
    monkeypatch.setattr(qa.builder.LocalStages, "embed", not_here)
    monkeypatch.setattr(real_encoder, "encode", not_here)
    try:
        report = build_index(on_ray, real_encoder, stages=RayStages(on_ray, real_encoder.dim, actors=2))
    finally:
        ray.shutdown()
    assert report.texts_embedded > 0 and report.shards == 2
    a, b = load_index(local.index_dir), load_index(on_ray.index_dir)
    assert a.fingerprint == b.fingerprint and a.passages == b.passages
    for left, right in zip(a.shards, b.shards, strict=True):
        assert left.passages == right.passages and left.lexicon.words == right.lexicon.words
        np.testing.assert_allclose(left.passage_vectors, right.passage_vectors, atol=1e-5)
        np.testing.assert_allclose(left.sentence_vectors, right.sentence_vectors, atol=2e-3)  # float16
        np.testing.assert_allclose(left.lexicon.vectors, right.lexicon.vectors, atol=2e-3)
        np.testing.assert_array_equal(left.bm25.scores["data"], right.bm25.scores["data"])


def test_ray_serve_answers_as_one_index_and_rolls_out_a_reindex_without_a_failed_request(
    cluster, sharded, real_encoder
) -> None:
    settings, one, _ = sharded
    server = Server(settings, args=["--ray", cluster.address, "--shards", "3", "--replica-cpus", "0.25"])
    try:
        server.wait_ready(timeout=240)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get("/readyz").json()["shards"] == 3
            first = client.post("/ask", json={"question": QUESTIONS[0]}).json()["index_fingerprint"]
            for question in QUESTIONS:
                body = client.post("/ask", json={"question": question}).json()
                expected = one.ask(question, use_cache=False)
                assert body["answered"] == expected.answered, question
                if expected.answered:
                    assert body["citations"][0]["passage_id"] == expected.ranking[0].passage_id, question
        assert "Ray Serve: 3 shard(s), 1 replica(s) each" in server.log.read_text()  # served by Ray Serve

        # A shard that dies is started again and reloads its build: the next questions are answered.
        shards = shard_processes()
        assert len(shards) == 3, shards  # one actor per shard, each its own process
        os.kill(shards[0], signal.SIGKILL)
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for question in QUESTIONS[:5]:  # with explain: not from the answer cache
                response = client.post("/ask", json={"question": question, "explain": True})
                assert response.status_code == 200, response.text
                assert response.json()["answered"] == one.ask(question, use_cache=False).answered
        assert shards[0] not in shard_processes() and len(shard_processes()) == 3

        slow = slow_bodies(server.port, 8)  # more than Serve's default of requests per replica
        try:
            time.sleep(1)
            assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
            assert httpx.post(server.url + "/ask", json={"question": QUESTIONS[0]}, timeout=10).is_success
        finally:
            for connection in slow:
                connection.close()

        seen: list[tuple[int, str, list[str]]] = []
        stop = threading.Event()

        def client_loop(offset: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                n = offset
                while not stop.is_set():
                    response = client.post(
                        "/ask", json={"question": QUESTIONS[n % len(QUESTIONS)], "top_k": 3}
                    )
                    body = response.json()
                    seen.append(
                        (
                            response.status_code,
                            body.get("index_fingerprint", ""),
                            [c["passage_id"] for c in body.get("citations", [])],
                        )
                    )
                    n += 4

        clients = [threading.Thread(target=client_loop, args=(i,)) for i in range(4)]
        for thread in clients:
            thread.start()
        time.sleep(2)
        (settings.corpus_dir / "festival.md").write_text(
            "---\ntitle: Festival\n---\n\nThe bee festival opens in June in Kazan.\n", encoding="utf-8"
        )
        report = build_index(settings, real_encoder)  # the router follows the index folder and rolls it out
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(f == report.fingerprint for _, f, _ in seen):
            time.sleep(0.5)
        time.sleep(2)
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
        assert seen and all(status == 200 for status, _, _ in seen), {s for s, _, _ in seen}
        assert {f for _, f, _ in seen} == {first, report.fingerprint}  # the old build, then the new one
        new = load_index(settings.index_dir)
        for _, fingerprint, cited in seen:  # every answer's citations are of the build it names
            if fingerprint == report.fingerprint:
                assert set(cited) <= set(new.positions)
    finally:
        assert server.stop(timeout=60) == 0
        (settings.corpus_dir / "festival.md").unlink(missing_ok=True)
        build_index(settings, real_encoder)


def shard_processes() -> list[int]:
    """The pids of this machine's shard actors (Ray titles an actor's process ``ray::Shard``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and command.startswith(b"ray::Shard"):
            found.append(int(entry.name))
    return sorted(found)


def test_replicas_that_do_not_fit_the_cluster_are_refused_with_the_figures(cluster, sharded) -> None:
    settings, _, _ = sharded
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa.cli",
            "serve",
            "--corpus",
            str(settings.corpus_dir),
            "--index",
            str(settings.index_dir),
            "--port",
            str(free_port()),
            "--ray",
            cluster.address,
            "--replica-cpus",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QA_ONNX_DIR": str(settings.onnx_export_dir)},
    )
    assert result.returncode == 1
    assert "need 16 CPUs; the cluster has 4: lower --replica-cpus or --replicas" in result.stderr


def listening_sockets(port: int) -> int:
    """How many sockets of this machine listen on ``port`` (/proc/net/tcp: state 0A is LISTEN)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def test_ray_serve_replicas_can_answer_http_themselves(cluster, sharded) -> None:
    """--http replicas: no proxy; each router replica serves the port itself (two replicas, two
    listening sockets on one port), answering as one index does, slow clients or not."""
    settings, one, _ = sharded
    args = ["--ray", cluster.address, "--shards", "3", "--replica-cpus", "0.25", "--replicas", "2"]
    server = Server(settings, args=[*args, "--http", "replicas"])
    try:
        server.wait_ready(timeout=240)  # the first replica answers while Serve starts the second
        deadline = time.monotonic() + 120
        while "HTTP by the replicas" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "Ray Serve: 3 shard(s), 2 replica(s) each, HTTP by the replicas" in server.log.read_text()
        assert listening_sockets(server.port) == 2  # one per replica, the port shared
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for question in QUESTIONS[:20]:
                body = client.post("/ask", json={"question": question, "explain": True}).json()
                expected = one.ask(question, use_cache=False)
                assert body["answered"] == expected.answered, question
                if expected.answered:
                    assert body["citations"][0]["passage_id"] == expected.ranking[0].passage_id, question
        slow = slow_bodies(server.port, 8)
        try:
            time.sleep(1)
            assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
        finally:
            for connection in slow:
                connection.close()
    finally:
        assert server.stop(timeout=60) == 0
    assert listening_sockets(server.port) == 0  # the replicas closed the port when Serve stopped them
