"""Bad input, faults and shutdown: every request gets a bounded, correct response."""

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
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.api import create_app
from qa.config import Settings
from qa.corpus import read_corpus
from qa.encoder import HashingEncoder
from qa.engine import Engine
from qa.errors import CorpusError
from qa.passages import split_document
from tests.conftest import Server


@pytest.fixture
def client(built_settings: Settings):
    with TestClient(create_app(built_settings, encoder=HashingEncoder())) as client:
        yield client


@pytest.mark.parametrize(
    "question",
    [
        "bees\x00 eggs?",
        "\x07\x1b[31m red? \x7f",
        "e\u0301\u0301\u0301 combining marks?",
        "\u202eRTL override: ?sgge yal neeuq",
        "ما هو النحل؟",
        "🐝🐝🐝 how many eggs? 🥚",
        "\ud7ff\ue000\uffff edge code points",
        "?",
        "x" * 1000,
    ],
)
def test_odd_questions_never_500(client: TestClient, question: str) -> None:
    response = client.post("/ask", json={"question": question})
    assert response.status_code == 200
    body = response.json()
    assert body["question"] == question
    assert body["answered"] in (True, False)


def test_no_stack_trace_on_an_unexpected_error(built_settings: Settings) -> None:
    class Broken(Engine):
        def ask(self, *args, **kwargs):
            raise RuntimeError("secret internal detail")

    engine = Broken(built_settings, HashingEncoder())
    engine.load()
    with TestClient(create_app(built_settings, engine=engine), raise_server_exceptions=False) as client:
        response = client.post("/ask", json={"question": "bees?"})
    assert response.status_code == 500
    assert "internal error" in response.json()["detail"]
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] in response.json()["detail"]


def test_reload_of_a_corrupt_build_keeps_serving(built_settings: Settings) -> None:
    settings = built_settings.model_copy(update={"admin_token": "t"})
    with TestClient(create_app(settings, encoder=HashingEncoder())) as client:
        before = client.get("/readyz").json()["fingerprint"]
        current = (settings.index_dir / "current").resolve()
        (current / "passages.jsonl").write_text("{not json\n")
        response = client.post("/admin/reload", headers={"Authorization": "Bearer t"})
        assert response.status_code == 409 and "passages.jsonl" in response.json()["detail"]
        ready = client.get("/readyz").json()
        assert ready["fingerprint"] == before and "passages.jsonl" in ready["last_reload_error"]
        assert str(settings.index_dir.resolve()) not in ready["last_reload_error"]  # no absolute paths
        assert client.post("/ask", json={"question": "How many eggs does the queen lay?"}).json()["answered"]
        assert 'qa_reloads_total{outcome="failed"} 1.0' in client.get("/metrics").text


@pytest.mark.slow
def test_server_refuses_to_start_on_a_corrupt_index(built_settings: Settings) -> None:
    current = (built_settings.index_dir / "current").resolve()
    (current / "dense.faiss").write_bytes(b"\x00" * 10)
    env = {
        **os.environ,
        "QA_MODEL": "hashing",
        "QA_INDEX_DIR": str(built_settings.index_dir),
        "QA_CORPUS_DIR": str(built_settings.corpus_dir),
    }
    result = subprocess.run(
        [sys.executable, "-m", "qa.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "dense.faiss" in result.stderr and "qa index" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests(built_settings: Settings) -> None:
    server = Server(built_settings)
    server.wait_ready()
    statuses: list[int] = []
    finish = threading.Event()

    def body() -> Iterator[bytes]:  # half a body now, the rest after SIGTERM: surely in flight
        yield b'{"question": "How many eggs does the queen lay?'
        finish.wait(10)
        yield b'"}'

    def ask() -> None:
        with httpx.Client(timeout=30) as http:
            response = http.post(
                server.url + "/ask", content=body(), headers={"content-type": "application/json"}
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every request has sent its headers and the start of its body
    os.kill(server.process.pid, signal.SIGTERM)
    time.sleep(0.5)
    finish.set()
    for thread in threads:
        thread.join()
    assert server.process.wait(timeout=30) == 0
    assert statuses == [200] * 8


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.text(st.characters(blacklist_categories=["Cs"]), min_size=0, max_size=400),
    suffix=st.sampled_from([".md", ".txt"]),
)
def test_property_loader_and_splitter(tmp_path: Path, body: str, suffix: str) -> None:
    folder = tmp_path / f"c{abs(hash((body, suffix)))}"
    folder.mkdir()
    (folder / f"doc{suffix}").write_text(body, encoding="utf-8", newline="")
    try:
        (document,) = read_corpus(folder).documents
    except CorpusError as error:  # the only failure allowed: a clear one naming the file
        assert "doc" in str(error)
        return
    passages = split_document(document, 200)
    end = 0
    for passage in passages:
        assert document.text[passage.start : passage.end] == passage.text
        assert passage.start >= end
        end = passage.end
        for sentence in passage.sentences:
            assert passage.start <= sentence.start < sentence.end <= passage.end
