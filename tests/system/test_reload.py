"""Corpus changes while serving: reindex under load, the file watcher, and builds killed mid-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from qa.builder import build_index
from qa.config import Settings
from qa.corpus import read_corpus
from qa.encoder import HashingEncoder
from qa.store import IndexFolder, check, load_index
from tests.conftest import Server

pytestmark = pytest.mark.slow

QUESTIONS = [
    "How many eggs does the queen lay?",
    "When did the Shinkansen open?",
    "How much does a home solar system cost?",
    "What do worker bees gather?",
    "Who painted the Mona Lisa?",
]


def snapshot(corpus: Path) -> dict[str, str]:
    return {d.doc_id: d.text for d in read_corpus(corpus).documents}


def test_five_reindexes_under_concurrent_load(built_settings: Settings) -> None:
    versions = {load_index(built_settings.index_dir).fingerprint: snapshot(built_settings.corpus_dir)}
    server = Server(built_settings, env={"QA_ADMIN_TOKEN": "token", "QA_ABSTAIN_SIMILARITY": "0.2"})
    failures: list[str] = []
    responses: list[dict] = []
    stop = threading.Event()

    def client(number: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            i = number
            while not stop.is_set():
                i += 1
                try:
                    response = http.post("/ask", json={"question": QUESTIONS[i % len(QUESTIONS)], "top_k": 3})
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    responses.append(response.json())

    try:
        server.wait_ready()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for round_ in range(5):
            time.sleep(0.4)
            bees = built_settings.corpus_dir / "bees.txt"
            bees.write_text(
                f"Honey bees live in colonies of up to {60 + round_},000 workers.\n\n"
                f"The queen lays about {2000 + round_} eggs a day in summer. Worker bees gather nectar.\n",
                encoding="utf-8",
            )
            if round_ % 2:
                (built_settings.corpus_dir / f"note{round_}.md").write_text(
                    f"Note {round_} about tides.", encoding="utf-8"
                )
            report = httpx.post(
                server.url + "/admin/reindex", headers={"Authorization": "Bearer token"}, timeout=60
            ).json()
            versions[report["fingerprint"]] = snapshot(built_settings.corpus_dir)
            assert report["documents_changed"] == ["bees"]
            assert httpx.get(server.url + "/readyz").json()["fingerprint"] == report["fingerprint"]
        time.sleep(0.4)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()

    assert failures == []
    assert len(versions) == 6
    seen = {r["index_fingerprint"] for r in responses}
    assert len(seen) >= 3, "the clients should have been answered by several index versions"
    for body in responses:
        texts = versions[body["index_fingerprint"]]  # a version the test built, never a mix
        spans = body["citations"] + ([body["answer"]] if body["answer"] else [])
        for span in spans:
            assert texts[span["doc_id"]][span["start"] : span["end"]] == span["text"]


def test_watch_reloads_after_an_edit(built_settings: Settings) -> None:
    server = Server(built_settings, args=["--watch"], env={"QA_ABSTAIN_SIMILARITY": "0.2"})
    try:
        server.wait_ready()
        before = httpx.get(server.url + "/readyz").json()["fingerprint"]
        time.sleep(0.5)  # let the watcher start
        (built_settings.corpus_dir / "volcano.txt").write_text(
            "Volcanoes erupt molten rock called lava.", encoding="utf-8"
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = httpx.get(server.url + "/readyz").json()
            if ready["fingerprint"] != before:
                break
            time.sleep(0.2)
        assert ready["fingerprint"] != before and ready["stale"] is False
        body = httpx.post(server.url + "/ask", json={"question": "What do volcanoes erupt?"}).json()
        assert body["answer"]["doc_id"] == "volcano"
    finally:
        server.stop()


DOCUMENTS = 6000


def _many_documents(folder: Path, n: int) -> None:
    for i in range(n):
        (folder / f"doc{i:04d}.txt").write_text(
            f"Document {i} describes station {i}. It opened in year {1900 + i % 100}. "
            f"The station serves {i * 7} passengers a day and has {i % 9} platforms.",
            encoding="utf-8",
        )


@pytest.mark.parametrize("moment", ["while reading and embedding", "while writing files"])
def test_kill_9_during_a_build_keeps_the_previous_index(built_settings: Settings, moment: str) -> None:
    before = load_index(built_settings.index_dir).fingerprint
    # Enough documents that the build is still reading or embedding a second after it starts (the
    # fake encoder embeds 60,000 texts a second: 1,500 documents were built within the second).
    _many_documents(built_settings.corpus_dir, DOCUMENTS)
    env = {
        **os.environ,
        "QA_MODEL": "hashing",
        "QA_CORPUS_DIR": str(built_settings.corpus_dir),
        "QA_INDEX_DIR": str(built_settings.index_dir),
    }
    build = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "index"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    if moment == "while writing files":
        while (
            not list(built_settings.index_dir.glob(".tmp-*"))
            and time.monotonic() < deadline
            and build.poll() is None
        ):
            time.sleep(0.001)
    else:
        time.sleep(1.0)
    assert build.poll() is None, "the build finished before it could be killed"
    os.kill(build.pid, signal.SIGKILL)
    build.wait()

    assert load_index(built_settings.index_dir, HashingEncoder()).fingerprint == before
    assert check(built_settings) == "the corpus changed since the index was built"
    report = build_index(built_settings, HashingEncoder())
    assert len(report.documents_added) == DOCUMENTS
    assert check(built_settings) is None
    assert not list(built_settings.index_dir.glob(".tmp-*"))
    index = load_index(built_settings.index_dir, HashingEncoder())
    assert len(index.documents) == DOCUMENTS + 3  # and the small corpus
    for passage in index.passages:
        assert index.documents[passage.doc_id].text[passage.start : passage.end] == passage.text


def test_a_second_build_stops_or_waits_for_the_lock(built_settings: Settings) -> None:
    from filelock import FileLock

    _many_documents(built_settings.corpus_dir, 10)
    env = {
        **os.environ,
        "QA_MODEL": "hashing",
        "QA_CORPUS_DIR": str(built_settings.corpus_dir),
        "QA_INDEX_DIR": str(built_settings.index_dir),
    }
    lock = FileLock(str(built_settings.index_dir / ".lock"))
    with lock:  # a build in progress holds this lock
        second = subprocess.run(
            [sys.executable, "-m", "qa.cli", "index"], env=env, capture_output=True, text=True
        )
        waiting = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "index", "--wait", "60"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        assert waiting.poll() is None, "the waiting build must not run while the lock is held"
    out, err = waiting.communicate(timeout=60)
    assert second.returncode == 1 and "another `qa index` is building" in second.stderr
    assert waiting.returncode == 0 and "10 added" in out, err
    assert check(built_settings) is None


def test_workers_follow_a_reindex_made_by_one_of_them(built_settings: Settings) -> None:
    server = Server(
        built_settings,
        args=["--workers", "2"],
        env={"QA_ADMIN_TOKEN": "token", "QA_ABSTAIN_SIMILARITY": "0.2"},
    )
    try:
        server.wait_ready()
        deadline = time.monotonic() + 60  # the second worker may still be starting
        while server.log.read_text().count("serving index") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.log.read_text().count("serving index") == 2
        (built_settings.corpus_dir / "volcano.txt").write_text(
            "Volcanoes erupt molten rock called lava.", encoding="utf-8"
        )
        report = httpx.post(
            server.url + "/admin/reindex", headers={"Authorization": "Bearer token"}, timeout=60
        ).json()
        # The worker that did not receive the reindex loads the new build within about a second.
        followed = f"followed the index to {report['fingerprint'][:12]}"
        deadline = time.monotonic() + 15
        while followed not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert followed in server.log.read_text()
        bodies = [
            httpx.post(server.url + "/ask", json={"question": "What do volcanoes erupt?"}).json()
            for _ in range(8)
        ]
        assert {b["index_fingerprint"] for b in bodies} == {report["fingerprint"]}
        assert all(b["answer"]["doc_id"] == "volcano" for b in bodies)

        # New thresholds in the same build's manifest (what `qa calibrate` writes) reach both workers.
        seen = server.log.read_text().count(followed)
        model = load_index(built_settings.index_dir).model
        IndexFolder(built_settings.index_dir).save_calibration(
            {"model": model, "thresholds": {"similarity": 0.99, "coverage": 1.0}}
        )
        deadline = time.monotonic() + 15
        while server.log.read_text().count(followed) < seen + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.log.read_text().count(followed) == seen + 2
        bodies = [
            httpx.post(server.url + "/ask", json={"question": "What do volcanoes erupt?"}).json()
            for _ in range(8)
        ]
        assert not any(b["answered"] for b in bodies)
    finally:
        assert server.stop() == 0


def test_watch_needs_a_single_worker(built_settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qa.cli", "serve", "--watch", "--workers", "2"],
        capture_output=True,
        text=True,
        env={**os.environ, "QA_MODEL": "hashing", "QA_INDEX_DIR": str(built_settings.index_dir)},
    )
    assert result.returncode == 2 and "--watch needs a single worker" in result.stderr


def test_one_worker_follows_a_qa_index_made_beside_it(built_settings: Settings) -> None:
    """`qa serve` with one worker picks up a build made by another process; while the corpus is
    ahead of the index, /readyz says stale and how to fix it."""
    server = Server(built_settings, env={"QA_ABSTAIN_SIMILARITY": "0.2"})
    try:
        server.wait_ready()
        before = httpx.get(server.url + "/readyz").json()
        assert before["stale"] is False and before["stale_fix"] is None
        (built_settings.corpus_dir / "volcano.txt").write_text(
            "Volcanoes erupt molten rock called lava.", encoding="utf-8"
        )
        stale = httpx.get(server.url + "/readyz").json()
        while not stale["stale"]:  # staleness is cached for two seconds
            time.sleep(0.2)
            stale = httpx.get(server.url + "/readyz").json()
        assert stale["stale_reason"] == "the corpus changed since the index was built"
        assert "qa index" in stale["stale_fix"] and "loads the new build by itself" in stale["stale_fix"]
        build_index(built_settings, HashingEncoder())  # another process's `qa index`, in effect
        deadline = time.monotonic() + 30
        ready = stale
        while time.monotonic() < deadline and ready["fingerprint"] == before["fingerprint"]:
            time.sleep(0.2)
            ready = httpx.get(server.url + "/readyz").json()
        assert ready["fingerprint"] != before["fingerprint"]
        body = httpx.post(server.url + "/ask", json={"question": "What do volcanoes erupt?"}).json()
        assert body["answer"]["doc_id"] == "volcano"
    finally:
        server.stop()
