"""The library API, scoped questions and settings from a .env file."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import qa.api.schemas
from qa.api import create_app
from qa.config import Settings
from qa.encoder import HashingEncoder
from qa.engine import Engine
from qa.errors import ScopeEmpty
from qa.pipeline.scope import Scope

ROOT = Path(__file__).resolve().parent.parent


def engine_for(settings: Settings) -> Engine:
    engine = Engine(settings, HashingEncoder())
    engine.load()
    return engine


def test_a_scope_restricts_retrieval_and_keeps_top_k_full(built_settings: Settings) -> None:
    engine = engine_for(built_settings)
    question = "When did the Shinkansen open in Japan?"
    everywhere = engine.ask(question, top_k=3)
    assert everywhere.citations[0].doc_id == "trains"
    scoped = engine.ask(question, top_k=3, scope=Scope.of(["bees", "solar"]), explain=True)
    in_scope = [p for d in ("bees", "solar") for p in engine.index.by_document[d]]
    assert {c.doc_id for c in scoped.ranking} <= {"bees", "solar"}
    assert len(scoped.ranking) == min(3, len(in_scope))  # filtered inside retrieval, not after
    assert scoped.explain is not None and scoped.explain["scope"]["documents"] == ["bees", "solar"]
    by_metadata = engine.ask(
        question, top_k=3, scope=Scope.of(metadata={"source": "https://example.org/solar"})
    )
    assert {c.doc_id for c in by_metadata.ranking} == {"solar"}
    assert engine.ask(question, top_k=3).citations[0].doc_id == "trains"  # the cache keeps scopes apart
    with pytest.raises(ScopeEmpty, match="no document matches"):
        engine.ask(question, scope=Scope.of(["no-such-document"]))
    with pytest.raises(ValueError, match="is not a field name"):
        Scope.of(metadata={"col our": "red"})
    with pytest.raises(ScopeEmpty, match="no document matches the filter: colour = 'red'"):
        engine.ask(question, scope=Scope.of(metadata={"colour": "red"}))  # a field no document has


def test_filter_and_get_over_http(built_settings: Settings) -> None:
    answering = built_settings.model_copy(update={"abstain_similarity": 0.0, "abstain_coverage": 0.0})
    with TestClient(create_app(answering, encoder=HashingEncoder())) as client:
        body = {"question": "When did the Shinkansen open in Japan?", "filter": {"doc_ids": ["bees"]}}
        scoped = client.post("/ask", json=body).json()
        assert scoped["citations"] and all(c["doc_id"] == "bees" for c in scoped["citations"])
        unknown = client.post("/ask", json={**body, "filter": {"doc_ids": ["nope"]}})
        assert unknown.status_code == 404 and "no document matches" in unknown.json()["detail"]
        assert client.options("/ask").headers["allow"] == "GET, POST"
        bad_field = client.post("/ask", json={**body, "filter": {"metadata": {"col our": "red"}}})
        assert bad_field.status_code == 422
        no_one = client.post("/ask", json={**body, "filter": {"metadata": {"colour": "red"}}})
        assert no_one.status_code == 404
        posted = client.post("/ask", json={"question": "How many eggs does the queen lay?"}).json()
        linked = client.get("/ask", params={"q": "How many eggs does the queen lay?"}).json()
        assert linked["answer"] == posted["answer"] and linked["citations"] == posted["citations"]
        assert client.get("/ask", params={"q": "   "}).status_code == 422
        in_bees = client.get("/ask", params={"q": "When did the Shinkansen open?", "doc_id": "bees"}).json()
        assert in_bees["citations"] and all(c["doc_id"] == "bees" for c in in_bees["citations"])


def test_settings_from_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QA_PORT", raising=False)
    (tmp_path / ".env").write_text("QA_PORT=9123\nQA_CACHE_SIZE=7\n", encoding="utf-8")
    assert Settings().port == 9123 and Settings().cache_size == 7
    monkeypatch.setenv("QA_PORT", "9200")
    assert Settings().port == 9200  # the environment wins over the file


def test_the_readme_library_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"<!-- library example -->\s*```python\n(.*?)```", readme, re.DOTALL)
    assert example is not None
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    (tmp_path / "example.py").write_text(example.group(1), encoding="utf-8")
    env = {**os.environ, "QA_MODEL": "hashing", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "index" / "current" / "manifest.json").exists()
    assert "documents: 1 added" in done.stdout
    assert done.stdout.strip().splitlines()[-1]  # an answer with its citation, or the reason for none


def test_importing_qa_loads_nothing_heavy() -> None:
    code = (
        "import sys, qa; assert 'faiss' not in sys.modules and 'torch' not in sys.modules; print(qa.Settings)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "qa.config.Settings" in done.stdout


def test_suggestions_are_written_as_questions_not_title_case() -> None:
    from qa.api.routes.documents import sentence_case

    text = "Putin launched Russia’s national AI task force. The task force was launched at a conference."
    heading = "What is Russia’s National AI Task Force Launched by Putin?"
    assert sentence_case(heading, text) == "What is Russia’s national AI task force launched by Putin?"
    assert sentence_case("Why Does BRICS Matter?", "BRICS members matter.") == "Why does BRICS matter?"


def test_favicon_and_examples_in_the_api_schema(built_settings: Settings) -> None:
    with TestClient(create_app(built_settings, encoder=HashingEncoder())) as client:
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    request_and_response_models = ("AskRequest", "AskResponse", "Problem", "DocumentList", "DocumentOut")
    for name in (
        *request_and_response_models,
        "PassageOut",
        "Suggestions",
        "Health",
        "Ready",
        "ReindexReport",
    ):
        assert schemas[name]["examples"], name
        model = getattr(qa.api.schemas, name)
        for example in schemas[name]["examples"]:
            model.model_validate(example)  # every example is a valid body of its model


def test_the_library_changes_nothing_process_wide(built_settings) -> None:
    """Engine() and the encoders leave BLAS threads and the environment as they were: the program
    (a `qa` command, a server worker, a Ray replica) sets them where it starts."""
    code = f"""
import json, os, threadpoolctl
from qa.config import Settings
from qa.encoder import HashingEncoder
from qa.engine import Engine
blas = lambda: [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
settings = Settings(corpus_dir={str(built_settings.corpus_dir)!r}, index_dir={str(built_settings.index_dir)!r},
                    model="hashing", reader="off")
before, environment = blas(), dict(os.environ)
Engine(settings, HashingEncoder()).load()
assert blas() == before and dict(os.environ) == environment, (before, blas())
print(json.dumps(before))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    if len(os.sched_getaffinity(0)) > 1:  # else one thread is BLAS's own choice: nothing to tell apart
        assert any(n > 1 for n in json.loads(done.stdout)), "BLAS starts with a thread per core"


def test_the_library_build_can_be_called_again(small_settings) -> None:
    """`qa.build` stays the function once the build module is loaded (it was shadowed by a module
    of the same name: the second call raised "'module' object is not callable")."""
    import qa

    first = qa.build(small_settings)
    assert callable(qa.build) and qa.build(small_settings).fingerprint == first.fingerprint
