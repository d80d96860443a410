"""Shared fixtures: a small corpus, the fake encoder, the real model (once) and a live server."""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.server import ServerProcess
from qa.builder import build_index
from qa.config import Settings
from qa.encoder import HashingEncoder, encoder_from
from qa.engine import Engine
from qa.store import load_index

ROOT = Path(__file__).resolve().parent.parent
EVAL_SET = ROOT / "tests" / "eval" / "questions.jsonl"
MODELS = ROOT / "index" / "models"  # the ONNX export of the model, shared by every test index

SMALL_CORPUS = {
    "solar.md": """---
id: solar
title: Solar panels
source: https://example.org/solar
published: 2024-05-01
---

# Solar panels

Solar panels turn sunlight into electricity. Most panels on houses are made of silicon cells.

## Cost

A typical home system costs about $12,000 before subsidies. Prices fell by 40% in the U.S. and Europe since 2015.

## Maintenance

Panels need little care—rain washes most dust away. An inverter usually lasts ten years.
""",
    "bees.txt": """Honey bees live in colonies of up to 60,000 workers.

The queen lays about 2,000 eggs a day in summer. Worker bees gather nectar and pollen from flowers.
""",
    "trains.md": """---
id: trains
title: High-speed trains
---

The Shinkansen opened in Japan in 1964. It connects Tokyo and Osaka.

Modern high-speed trains run at 300 km/h on dedicated tracks.
""",
}


def write_corpus(folder: Path, files: dict[str, str] = SMALL_CORPUS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def small_settings(tmp_path: Path) -> Settings:
    """Settings over the small corpus with the fake encoder; nothing built yet."""
    return Settings(
        corpus_dir=write_corpus(tmp_path / "corpus"),
        index_dir=tmp_path / "index",
        model="hashing",
        abstain_similarity=0.2,
        abstain_coverage=0.5,
        reader="off",  # the thresholds decide: unit tests of the rule, not of the reader
    )


@pytest.fixture
def fake_encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture
def built_settings(small_settings: Settings, fake_encoder: HashingEncoder) -> Settings:
    build_index(small_settings, fake_encoder)
    return small_settings


@pytest.fixture(scope="session")
def real_encoder():
    """The bundled all-MiniLM-L6-v2 (the configured backend), loaded once for the session."""
    return encoder_from(Settings(onnx_dir=MODELS))


@pytest.fixture(scope="session")
def article_settings(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Settings:
    """An index of the repository's corpus/ built with the real model in a temp folder."""
    work = tmp_path_factory.mktemp("article")
    shutil.copytree(ROOT / "corpus", work / "corpus")
    settings = Settings(corpus_dir=work / "corpus", index_dir=work / "index", onnx_dir=MODELS)
    build_index(settings, real_encoder)
    return settings


Server = ServerProcess  # a real `qa serve` on a free loopback port, stopped by its pid


@pytest.fixture(scope="session")
def article_server(article_settings: Settings) -> Iterator[Server]:
    server = Server(article_settings)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# A corpus of several documents about what the evaluation questions ask, as one index and as shards.

QUESTIONS = [
    json.loads(line)["question"]
    for file in sorted((ROOT / "tests" / "eval").glob("*.jsonl"))
    for line in file.read_text(encoding="utf-8").splitlines()
    if line.strip()
]


def sectioned_corpus(folder: Path) -> Path:
    """The article cut at its sections into one document each, beside the small corpus: several
    documents, so that shards hold different parts of what the evaluation questions ask about."""
    article = next((ROOT / "corpus").glob("*.md")).read_text(encoding="utf-8")
    body = article.split("---", 2)[2] if article.startswith("---") else article
    files = dict(SMALL_CORPUS)
    for number, section in enumerate(re.split(r"\n(?=## )", body)):
        if section.strip():
            files[f"section-{number}.md"] = section.strip() + "\n"
    return write_corpus(folder, files)


def top(result) -> tuple[bool, list[str], tuple[int, int] | None]:
    answer = (result.answer.start, result.answer.end) if result.answer else None
    return result.answered, [c.passage_id for c in result.ranking[:3]], answer


@pytest.fixture(scope="session")
def sharded(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> tuple[Settings, Engine, Engine]:
    """One index of the sectioned corpus, then the same corpus as 3 shards (vectors reused)."""
    work = tmp_path_factory.mktemp("sharded")
    settings = Settings(
        corpus_dir=sectioned_corpus(work / "corpus"), index_dir=work / "index", onnx_dir=MODELS
    )
    build_index(settings, real_encoder)
    one = Engine(settings, real_encoder, load_index(settings.index_dir, real_encoder))
    report = build_index(settings.model_copy(update={"shards": 3}), real_encoder)
    assert report.texts_embedded == 0  # every vector reused from the one-index build
    three = Engine(settings, real_encoder, load_index(settings.index_dir, real_encoder))
    return settings, one, three


def slow_bodies(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that announce a 16,000-byte question and send its first byte."""
    connections = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=30)
        connection.sendall(
            b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 16000\r\n\r\n{"
        )
        connections.append(connection)
    return connections


# Resource markers follow from the fixtures a test uses, so `make test-fast` (-m "not slow") leaves
# out every test that loads the real model or starts Ray, whether or not its module says so.
MODEL_FIXTURES = {"real_encoder", "article_settings", "article_server", "sharded"}
RAY_FIXTURES = {"cluster"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & MODEL_FIXTURES:
            item.add_marker(pytest.mark.model)
        if used & RAY_FIXTURES:
            item.add_marker(pytest.mark.ray)
        if used & (MODEL_FIXTURES | RAY_FIXTURES):
            item.add_marker(pytest.mark.slow)
