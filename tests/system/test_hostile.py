"""What a hostile probe of the service found, each fixed at its depth: links out of the corpus,
bodies JSON cannot echo, inconsistent or damaged builds, shutdown during a build, spoofed client
addresses, pruning, costly corpus files, and the smaller items."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from qa.api import create_app
from qa.api.state import state_of
from qa.builder import build_index
from qa.config import Settings
from qa.corpus import read_corpus
from qa.encoder import HashingEncoder, _remove_orphans
from qa.errors import BuildCancelled, CorpusError, IndexCorrupt
from qa.isolation import ParseLimits
from qa.passages import WINDOW_CHARS, sentence_spans
from qa.readers.markdown import MAX_FRONT_MATTER_BYTES
from qa.store import FORMAT_VERSION, check, file_records, load_index
from qa.terms import _stemmer
from tests.conftest import Server, slow_bodies, write_corpus

ADMIN = {"Authorization": "Bearer t"}


def current(settings: Settings) -> Path:
    return (settings.index_dir / "current").resolve()


def run_qa(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`qa ARGS` in a child process (as a user runs it), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


# 1. The corpus folder is a boundary.


def test_links_out_of_the_corpus_and_special_files_are_skipped(
    small_settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    corpus = small_settings.corpus_dir
    (corpus / "passwd.txt").symlink_to(secret)
    os.mkfifo(corpus / "pipe.txt")
    (corpus / "alias.txt").symlink_to(corpus / "bees.txt")  # a link that stays inside is a document
    os.link(secret, corpus / "shadow.txt")  # a hard link looks like a file of the folder
    report = build_index(small_settings, HashingEncoder())
    assert report.skipped == [
        "passwd.txt: a link to a file outside the corpus folder",
        "pipe.txt: not a regular file",
        "shadow.txt: a file with 2 names (hard links), one of which may be outside the corpus folder: "
        "copy it in instead",
    ]
    assert any(line.startswith("skipped passwd.txt") for line in report.lines())
    documents = load_index(small_settings.index_dir).documents
    assert "alias" in documents and "passwd" not in documents and "shadow" not in documents
    assert not any("root:x" in d.text for d in documents.values())


def test_an_index_folder_inside_the_corpus_is_not_read_as_documents(small_settings: Settings) -> None:
    # `qa index` run inside the documents' folder with the default index folder, `index`
    settings = small_settings.model_copy(update={"index_dir": small_settings.corpus_dir / "index"})
    first = build_index(settings, HashingEncoder())
    assert sorted(first.documents_added) == ["bees", "solar", "trains"]
    second = build_index(settings, HashingEncoder())
    assert second.up_to_date and second.fingerprint == first.fingerprint  # its own files change nothing
    assert second.skipped == ["index/: an index folder (`qa index` writes them), not documents"]
    (settings.corpus_dir / "bees.txt").write_text("Bees make honey from nectar.", encoding="utf-8")
    third = build_index(settings, HashingEncoder())
    assert third.documents_changed == ["bees"] and not third.documents_added
    assert sorted(load_index(settings.index_dir).documents) == ["bees", "solar", "trains"]


# 2. Every malformed body is a 422 in JSON.


@pytest.mark.parametrize(
    "body",
    [
        '{"question": "\\ud800"}',
        '{"question": "bees \\udfff?"}',
        '{"question": "bees?", "top_k": NaN}',
        '{"question": "bees?", "top_k": Infinity}',
        '{"question": "bees?", "top_k": -Infinity}',
        '{"question": "bees?", "top_k": 1e309}',
        '{"question": "bees?", "explain": NaN}',
        '{"question": "bees?", "extra": NaN}',
        '{"question": "bees?", "\\ud800": 1}',
        '{"question": NaN}',
    ],
)
def test_bodies_json_cannot_echo_are_422(built_settings: Settings, body: str) -> None:
    with TestClient(
        create_app(built_settings, encoder=HashingEncoder()), raise_server_exceptions=False
    ) as client:
        response = client.post("/ask", content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"


# 3. A build is checked whole when it is loaded; a broken one is rebuilt over.


def _damage(settings: Settings, how: str) -> str:
    """Damage the current build the way an operator or a failing disk might; the file to name."""
    build = current(settings)
    if how == "manifest lacks fields":
        (build / "manifest.json").write_text(json.dumps({"format_version": FORMAT_VERSION}))
        return "manifest.json"
    rows = [json.loads(line) for line in (build / "passages.jsonl").read_text().splitlines()]
    if how == "passage of an unknown document":
        rows[0]["doc_id"] = "nope"
    elif how == "offsets outside the document":
        rows[-1]["end"] = 10**9
    elif how == "fewer passages than vectors":
        rows = rows[:-1]
    (build / "passages.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # Record the damaged file as written, so only the content checks can find the problem.
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["files"] = file_records(build)
    (build / "manifest.json").write_text(json.dumps(manifest))
    return "passages.jsonl"


DAMAGES = [
    "manifest lacks fields",
    "passage of an unknown document",
    "offsets outside the document",
    "fewer passages than vectors",
]


@pytest.mark.parametrize("how", DAMAGES)
def test_an_inconsistent_build_is_refused_naming_the_file_and_rebuilt_over(
    built_settings: Settings, how: str
) -> None:
    name = _damage(built_settings, how)
    with pytest.raises(IndexCorrupt, match=name.replace(".", r"\.")):
        load_index(built_settings.index_dir)
    assert name in (check(built_settings) or "")
    report = build_index(built_settings, HashingEncoder())  # no need to delete anything by hand
    assert not report.up_to_date
    assert len(load_index(built_settings.index_dir).passages) == report.passages_added
    assert check(built_settings) is None


def test_admin_routes_refuse_a_broken_build_and_rebuild_over_it(built_settings: Settings) -> None:
    settings = built_settings.model_copy(update={"admin_token": "t"})
    with TestClient(create_app(settings, encoder=HashingEncoder())) as client:
        before = client.get("/readyz").json()["fingerprint"]
        _damage(settings, "manifest lacks fields")
        response = client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 409 and "manifest.json" in response.json()["detail"]
        ready = client.get("/readyz").json()
        assert ready["fingerprint"] == before and "manifest.json" in ready["last_reload_error"]
        assert client.post("/ask", json={"question": "How many eggs does the queen lay?"}).status_code == 200
        response = client.post("/admin/reindex", headers=ADMIN)
        assert response.status_code == 200, response.text
        assert client.get("/readyz").json()["last_reload_error"] is None


def test_following_survives_a_broken_build_and_picks_up_the_next(built_settings: Settings) -> None:
    with TestClient(create_app(built_settings, encoder=HashingEncoder(), follow=True)) as client:
        _damage(built_settings, "passage of an unknown document")
        # The folder still points at the same build, whose manifest changed: the follower tries it.
        deadline = time.monotonic() + 10
        while not client.get("/readyz").json()["last_reload_error"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "passages.jsonl" in client.get("/readyz").json()["last_reload_error"]
        (built_settings.corpus_dir / "volcano.txt").write_text("Volcanoes erupt lava.", encoding="utf-8")
        report = build_index(built_settings, HashingEncoder())
        deadline = time.monotonic() + 10
        while (
            client.get("/readyz").json()["fingerprint"] != report.fingerprint and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        ready = client.get("/readyz").json()
        assert ready["fingerprint"] == report.fingerprint and ready["last_reload_error"] is None


@pytest.mark.slow
@pytest.mark.parametrize("how", ["manifest lacks fields", "passage of an unknown document"])
def test_serve_and_index_on_an_inconsistent_build_give_a_message(built_settings: Settings, how: str) -> None:
    name = _damage(built_settings, how)
    env = {
        **os.environ,
        "QA_MODEL": "hashing",
        "QA_INDEX_DIR": str(built_settings.index_dir),
        "QA_CORPUS_DIR": str(built_settings.corpus_dir),
    }
    serve = subprocess.run(
        [sys.executable, "-O", "-m", "qa.cli", "serve", "--port", "1"],  # -O: no assert to lean on
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert serve.returncode == 1 and name in serve.stderr and "Traceback" not in serve.stderr
    index = subprocess.run(
        [sys.executable, "-O", "-m", "qa.cli", "index"], env=env, capture_output=True, text=True, timeout=60
    )
    assert index.returncode == 0 and "Traceback" not in index.stderr, index.stderr
    assert check(built_settings) is None


# 4. `qa index --check` verifies the build it would serve.


@pytest.mark.parametrize("how", ["truncated FAISS file", "same-size edit of documents.jsonl"])
def test_check_finds_a_damaged_build(built_settings: Settings, how: str) -> None:
    build = current(built_settings)
    if how == "truncated FAISS file":
        data = (build / "dense.faiss").read_bytes()
        (build / "dense.faiss").write_bytes(data[: len(data) // 2])
        name = "dense.faiss"
    else:
        text = (build / "documents.jsonl").read_text(encoding="utf-8")
        (build / "documents.jsonl").write_text(text.replace("queen", "QUEEN", 1), encoding="utf-8")
        name = "documents.jsonl"
    reason = check(built_settings)
    assert reason is not None and name in reason
    env = {
        **os.environ,
        "QA_MODEL": "hashing",
        "QA_INDEX_DIR": str(built_settings.index_dir),
        "QA_CORPUS_DIR": str(built_settings.corpus_dir),
    }
    result = run_qa(env, "index", "--check")
    assert result.returncode == 1 and name in result.stderr


def test_index_rebuilds_a_same_size_corruption_that_check_finds(built_settings: Settings) -> None:
    from qa.builder import build_index
    from qa.encoder import HashingEncoder

    build = current(built_settings)
    damaged = build / "bm25" / "indices.csc.index.npy"
    data = bytearray(damaged.read_bytes())
    data[-8:] = b"\xff" * 8  # the values overwritten, the header and the size kept
    damaged.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="bm25 is unusable: a score of a passage that does not exist"):
        load_index(built_settings.index_dir)  # a server refuses it (and keeps serving the previous one)
    assert "bm25" in (check(built_settings) or "")
    report = build_index(built_settings, HashingEncoder())
    assert not report.up_to_date  # not "index is up to date" over a damaged build
    assert check(built_settings) is None


def test_check_names_a_manifest_entry_that_is_not_a_file_of_the_build(built_settings: Settings) -> None:
    build = current(built_settings)
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["bm25"] = {"bytes": 4096, "sha256": "0" * 64}  # a folder, not a file
    (build / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    reason = check(built_settings)
    assert reason is not None and "bm25" in reason


# 5. Shutdown during a reindex: cancelled within a bound, answered in JSON, nothing swapped.


@pytest.mark.slow
def test_sigterm_during_a_reindex_cancels_it(built_settings: Settings) -> None:
    # Enough documents that the build takes several seconds on this machine (the fake encoder is fast).
    paragraph = "Honey bees gather nectar from many flowers in the valley. " * 20
    for n in range(8000):
        (built_settings.corpus_dir / f"extra-{n:04}.txt").write_text(
            f"Note {n}.\n\n" + paragraph, encoding="utf-8"
        )
    before = current(built_settings)
    server = Server(built_settings, env={"QA_ADMIN_TOKEN": "t"})
    server.wait_ready()
    responses: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: responses.append(httpx.post(server.url + "/admin/reindex", headers=ADMIN, timeout=60))
    )
    thread.start()
    time.sleep(2.0)
    signalled = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    stopped = time.monotonic() - signalled
    thread.join(timeout=30)
    (response,) = responses
    assert response.status_code == 503 and "shutting down" in response.json()["detail"]
    assert response.headers["x-request-id"]
    assert stopped < 10  # the README states the bound
    assert current(built_settings) == before  # nothing was published after shutdown began


# 6. X-Forwarded-For is believed only from configured proxies.


@pytest.mark.slow
@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_for_is_believed_only_from_configured_proxies(
    built_settings: Settings, trusted: bool
) -> None:
    env = {"QA_RATE_LIMIT_PER_MINUTE": "2"}
    if trusted:
        env["QA_FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    server = Server(built_settings, env=env)
    try:
        server.wait_ready()
        statuses = [
            httpx.post(
                server.url + "/ask",
                json={"question": "bees?"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
                timeout=30,
            ).status_code
            for n in range(3)
        ]
    finally:
        server.stop()
    clients = {
        json.loads(line).get("client") for line in server.log.read_text().splitlines() if '"request"' in line
    }
    if trusted:  # a proxy on loopback, configured: each forwarded address is its own client
        assert statuses == [200, 200, 200] and "203.0.113.2" in clients
    else:
        assert statuses == [200, 200, 429] and clients == {"127.0.0.1"}


# 7. Pruning with a relative index folder keeps two builds.


def test_pruning_with_a_relative_index_folder_keeps_two_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "corpus")
    settings = Settings(corpus_dir=Path("corpus"), index_dir=Path("index"), model="hashing")
    for n in range(3):
        (tmp_path / "corpus" / "extra.txt").write_text(f"Version {n} of a note.", encoding="utf-8")
        build_index(settings, HashingEncoder())
    assert len(list((tmp_path / "index" / "builds").iterdir())) == 2


# 8. What a corpus file may cost.


def test_a_file_over_the_size_limit_is_refused_with_the_setting_named(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    (tmp_path / "huge.txt").write_text("word " * 3000, encoding="utf-8")
    with pytest.raises(CorpusError, match="huge.txt.*QA_MAX_DOCUMENT_BYTES"):
        read_corpus(tmp_path, max_bytes=10_000)


@pytest.mark.parametrize(
    ("front", "problem"),
    [
        (
            'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
            "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
            "aliases are not allowed",
        ),
        ("title: " + "x" * (MAX_FRONT_MATTER_BYTES + 10) + "\n", "over 16 KiB"),
    ],
)
def test_costly_front_matter_is_refused_at_once(tmp_path: Path, front: str, problem: str) -> None:
    (tmp_path / "laughs.md").write_text(f"---\n{front}---\nOne line.\n", encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(CorpusError, match=f"laughs.md.*{problem}"):
        read_corpus(tmp_path)
    assert time.perf_counter() - started < 5


def test_a_paragraph_longer_than_a_window_splits_with_exact_offsets() -> None:
    text = ("A sentence about bees and honey. " * 40 + "\n") * (3 * WINDOW_CHARS // 1300)
    spans = sentence_spans(text, 0, len(text))
    assert len(text) > 2 * WINDOW_CHARS and len(spans) == text.count("A sentence")
    assert all(text[s:e] == "A sentence about bees and honey." for s, e in spans)


# 9. The smaller items.


def test_announced_413_is_json(built_settings: Settings) -> None:
    with TestClient(create_app(built_settings, encoder=HashingEncoder())) as client:
        response = client.post(
            "/ask",
            content=b'{"question": "' + b"a" * 20000 + b'"}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413 and "over 16384 bytes" in response.json()["detail"]
    assert response.headers["x-request-id"]


def test_head_is_answered_like_get_without_a_body(built_settings: Settings) -> None:
    with TestClient(create_app(built_settings, encoder=HashingEncoder())) as client:
        for path in ("/healthz", "/readyz", "/documents", "/"):
            response = client.head(path)
            assert response.status_code == 200 and response.content == b""
            assert int(response.headers["content-length"]) > 0


def test_a_text_of_only_nul_bytes_is_not_a_document(tmp_path: Path) -> None:
    (tmp_path / "nul.txt").write_bytes(b"\x00" * 64)
    with pytest.raises(CorpusError, match="nul.txt.*no words"):
        read_corpus(tmp_path)


def test_half_written_onnx_exports_of_dead_processes_are_removed(tmp_path: Path) -> None:
    onnx_file = tmp_path / "model.onnx"
    orphan = tmp_path / "model.tmp-99999999"
    mine = tmp_path / f"model.tmp-{os.getpid()}"
    orphan.write_bytes(b"half")
    mine.write_bytes(b"in progress")
    _remove_orphans(onnx_file)
    assert not orphan.exists() and mine.exists()


def test_allowed_hosts(built_settings: Settings) -> None:
    settings = built_settings.model_copy(update={"allowed_hosts": ["qa.example.org"]})
    with TestClient(create_app(settings, encoder=HashingEncoder()), base_url="http://evil.example") as client:
        assert client.get("/healthz").status_code == 400
    with TestClient(
        create_app(settings, encoder=HashingEncoder()), base_url="http://qa.example.org"
    ) as client:
        assert client.get("/healthz").status_code == 200


def test_each_thread_has_its_own_stemmer() -> None:
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(_stemmer())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen[0] is not seen[1] and _stemmer() is _stemmer()


# 10. Round three: corpus files that crashed a build with a traceback. Each is one line naming the
# file, skippable, and nothing is embedded before every document is known good.


def pdf_bomb(operators: int) -> bytes:
    """A small PDF whose one deflated content stream holds ``operators`` text-showing operators."""
    content = zlib.compress(b"BT /F1 1 Tf 10 10 Td " + b"0 -1 Td (ab) Tj " * operators + b"ET", 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def hostile_corpus(folder: Path) -> dict[str, str]:
    """A corpus folder of files that once crashed `qa index`; returns file -> what must be named."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.md").write_text("# Bees\n\nHoney bees live in colonies.\n", encoding="utf-8")
    files = {
        "feb30.md": "---\npublished: 2024-02-30\n---\nText.\n",
        "month13.md": "---\npublished: 2024-13-01\n---\nText.\n",
        "offset.md": "---\npublished: 2024-01-01 10:00:00 +99:00\n---\nText.\n",
        "digits.md": "---\nn: " + "9" * 4400 + "\n---\nText.\n",
        "nested.md": "---\nn: " + "[" * 5000 + "]" * 5000 + "\n---\nText.\n",
        "deep.jsonl": '{"question": "q", "answer": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
        "wide.csv": "question,answer\n" + "x" * 140_000 + ",ok\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "surrogate.md").write_bytes(b'---\ntitle: "\\ud800"\n---\nText.\n')
    (folder / "loop.md").symlink_to("loop.md")
    for name, xml in WORD_FILES.items():
        word_file(folder, name, xml)
    (folder / "bomb.pdf").write_bytes(pdf_bomb(400_000))
    (folder / "hi.txt").write_text("Hi. " * 20_000, encoding="utf-8")
    outside = folder.parent / "outside.txt"
    outside.write_text("Not part of the corpus.\n", encoding="utf-8")
    os.link(outside, folder / "hardlink.txt")
    return {
        name: name
        for name in [*files, "surrogate.md", "loop.md", *WORD_FILES, "bomb.pdf", "hi.txt", "hardlink.txt"]
    }


def word_file(folder: Path, name: str, document_xml: bytes) -> None:
    """A .docx whose main part is ``document_xml`` (the rest of the package as Word writes it)."""
    import zipfile

    content_types = (
        b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
        b'officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    rels = (
        b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        b'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        b'2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    )
    with zipfile.ZipFile(folder / name, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", content_types)
        package.writestr("_rels/.rels", rels)
        package.writestr("word/document.xml", document_xml)


WORD = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
WORD_FILES = {
    "malformed.docx": WORD + b"<w:p><w:r><w:t>unclosed",
    "deep.docx": WORD + b"<w:p>" * 100_000 + b"</w:p>" * 100_000 + b"</w:body></w:document>",
    "entities.docx": b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">' % ((98 + i,) + (97 + i,) * 10)
        for i in range(8)
    )
    + b"]>"
    + WORD
    + b"<w:p><w:r><w:t>&i;</w:t></w:r></w:p></w:body></w:document>",
}


def test_a_hostile_corpus_is_indexed_with_each_bad_file_named_once(tmp_path: Path) -> None:
    named = hostile_corpus(tmp_path / "corpus")
    env = {
        **os.environ,
        "QA_MODEL": "hashing",
        "QA_READER": "off",
        "QA_CORPUS_DIR": str(tmp_path / "corpus"),
        "QA_INDEX_DIR": str(tmp_path / "index"),
        "QA_MAX_PARSE_MEMORY_MB": "256",  # the PDF bomb refused sooner
    }
    strict = run_qa(env, "index")
    assert strict.returncode == 1 and "Traceback" not in strict.stderr and "--skip-invalid" in strict.stderr
    result = run_qa(env, "index", "--skip-invalid")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for name in named:
        assert (result.stdout + result.stderr).count(f"skipped {name}:") == 1, name
    assert "1 added" in result.stdout


def test_files_deleted_while_the_corpus_is_read_are_left_out(built_settings: Settings, monkeypatch) -> None:
    import qa.corpus

    gone = built_settings.corpus_dir / "gone.md"
    listed = qa.corpus.scan_corpus(built_settings.corpus_dir)
    monkeypatch.setattr(qa.corpus, "scan_corpus", lambda folder: ([*listed[0], gone], listed[1]))
    assert qa.corpus.corpus_fingerprint(built_settings.corpus_dir)  # no FileNotFoundError
    assert [d.path for d in read_corpus(built_settings.corpus_dir).documents] == [p.name for p in listed[0]]
    client = TestClient(create_app(built_settings, encoder=HashingEncoder()))
    with client:
        assert client.get("/readyz").status_code == 200


def test_reading_the_corpus_stops_when_the_build_is_cancelled(built_settings: Settings) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(BuildCancelled):
        read_corpus(built_settings.corpus_dir, cancel=cancel)


# 11. Slow clients: a body that trickles in is cut at its deadline with a JSON 408, so it holds no
# request slot (under Ray Serve five such clients once held every slot of the router: test_cluster).


@pytest.mark.slow
def test_a_body_that_trickles_in_is_cut_with_a_json_408(built_settings: Settings) -> None:
    server = Server(built_settings, env={"QA_BODY_TIMEOUT_SECONDS": "1"})
    try:
        server.wait_ready()
        (connection,) = slow_bodies(server.port, 1)
        started = time.monotonic()
        reply = b""
        while b"\r\n\r\n{" not in reply or not reply.endswith(b"}"):
            connection.sendall(b" ")  # one byte now and then: never idle, never done
            time.sleep(0.2)
            connection.setblocking(False)
            try:
                reply += connection.recv(4096)
            except BlockingIOError:
                pass
            connection.setblocking(True)
            assert time.monotonic() - started < 15, reply
        head, body = reply.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 408") and b"x-request-id" in head.lower()
        assert json.loads(body) == {"detail": "the request body did not arrive within 1 s"}
        assert httpx.post(server.url + "/ask", json={"question": "bees?"}, timeout=30).status_code == 200
    finally:
        server.stop()


# 12. Container files whose content costs far more than their size: read in a child process with a
# time and a memory limit, refused in one line naming the limit, the reading process untouched.


def test_a_pdf_over_the_memory_limit_is_refused_and_the_reader_stays_small(tmp_path: Path) -> None:
    (tmp_path / "bomb.pdf").write_bytes(pdf_bomb(400_000))  # 13 KB: once 45 s and 2 GB, indexed
    (tmp_path / "good.md").write_text("# Bees\n\nHoney bees live in colonies.\n", encoding="utf-8")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    corpus = read_corpus(tmp_path, skip_invalid=True, limits=ParseLimits(memory_mb=256))
    assert [d.path for d in corpus.documents] == ["good.md"]
    assert corpus.skipped == [
        "bomb.pdf: needs over 256 MiB of memory to read (QA_MAX_PARSE_MEMORY_MB); the file was left out"
    ]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100 * 2**10  # KiB: under 100 MiB


def test_a_pdf_over_the_time_limit_is_refused_naming_the_settings(tmp_path: Path) -> None:
    (tmp_path / "slow.pdf").write_bytes(pdf_bomb(40_000))  # 1.9 KB, about 4 s to read
    started = time.monotonic()
    with pytest.raises(CorpusError, match=r"took over 1 s to read \(QA_MAX_PARSE_SECONDS=1 and "):
        read_corpus(tmp_path, limits=ParseLimits(min_seconds=1, seconds_per_mb=0))
    assert time.monotonic() - started < 10


# 13. Tiny and repeated sentences: each sentence costs a vector. A document of mostly tiny ones is
# refused before it is split; a sentence repeated anywhere is stored once.


def test_a_document_of_tiny_sentences_is_refused_before_it_is_split(tmp_path: Path) -> None:
    (tmp_path / "hi.txt").write_text("Hi. " * 20_000, encoding="utf-8")
    (tmp_path / "good.md").write_text("# Bees\n\nHoney bees live in colonies.\n", encoding="utf-8")
    corpus = read_corpus(tmp_path, skip_invalid=True)
    assert [d.path for d in corpus.documents] == ["good.md"]
    assert corpus.skipped == [
        "hi.txt: about 20,000 sentences in 79,999 characters, one every 4; a document of over 10,000 "
        "sentences must average 32 characters a sentence (each costs a vector)"
    ]
    (tmp_path / "good.md").unlink()
    with pytest.raises(CorpusError, match="no usable documents; left out: hi.txt: about 20,000 sentences"):
        read_corpus(tmp_path, skip_invalid=True)


def test_a_repeated_sentence_is_embedded_and_stored_once(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, {"notes.txt": "Bees make honey in the summer months. " * 3000 + "Wasps do not."})
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="hashing", reader="off")
    report = build_index(settings, HashingEncoder())
    index = load_index(settings.index_dir)
    assert index.manifest.sentences == 3001
    assert len(index.sentence_vectors) == 2 and report.texts_embedded < 20
    assert np.array_equal(index.sentence_rows([0])[0], index.sentence_rows([len(index.passages) - 1])[0])


# 14. Lesser items: every error a JSON body with the service's headers, no input echoed at length.


def test_a_refused_host_or_origin_is_json_with_the_request_id(built_settings: Settings) -> None:
    settings = built_settings.model_copy(
        update={"allowed_hosts": ["good.example"], "cors_origins": ["http://ok.example"]}
    )
    with TestClient(create_app(settings, encoder=HashingEncoder()), base_url="http://good.example") as client:
        host = client.get("/healthz", headers={"host": "evil.example"})
        origin = client.options(
            "/ask", headers={"origin": "http://evil.example", "access-control-request-method": "POST"}
        )
    assert (host.status_code, host.json()) == (400, {"detail": "Invalid host header"})
    assert (origin.status_code, origin.json()) == (400, {"detail": "Disallowed CORS origin"})
    for response in (host, origin):
        assert response.headers["x-request-id"] and response.headers["x-content-type-options"] == "nosniff"


def test_options_on_a_static_file_names_the_methods_it_answers(client_of_built: TestClient) -> None:
    response = client_of_built.options("/static/app.js")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"


def test_ids_and_field_names_are_echoed_at_most_64_characters(client_of_built: TestClient) -> None:
    missing = client_of_built.get("/documents/" + "x" * 3000)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no document with id '" + "x" * 64 + "…'"}
    extra = client_of_built.post("/ask", json={"question": "bees?", "z" * 3000: 1})
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "z" * 64 + "…"]


@pytest.fixture
def client_of_built(built_settings: Settings):
    with TestClient(create_app(built_settings, encoder=HashingEncoder())) as client:
        yield client


# 15. A build that turns out damaged while answering is no longer served: the newest intact
# earlier build is, and the question is answered from it.


def _two_builds(settings: Settings) -> tuple[str, str]:
    first = load_index(settings.index_dir).fingerprint
    (settings.corpus_dir / "wasps.md").write_text("# Wasps\n\nWasps build paper nests.\n", encoding="utf-8")
    build_index(settings, HashingEncoder())
    return first, load_index(settings.index_dir).fingerprint


def _damage_served(client: TestClient) -> None:
    """What a disk can do under a loaded build: its keyword rows changed in memory and on disk."""
    index = state_of(client.app).running.engine.serving
    index.bm25.scores["indices"][:] = 10**6
    np.save(index.path / "bm25" / "indices.csc.index.npy", index.bm25.scores["indices"])


def test_a_build_damaged_while_serving_falls_back_to_the_earlier_one(built_settings: Settings) -> None:
    first, second = _two_builds(built_settings)
    with TestClient(create_app(built_settings, encoder=HashingEncoder())) as client:
        assert client.post("/ask", json={"question": "bees?"}).json()["index_fingerprint"] == second
        _damage_served(client)
        response = client.post("/ask", json={"question": "Where do bees live?"})
        assert response.status_code == 200 and response.json()["index_fingerprint"] == first
        assert client.get("/readyz").json()["fingerprint"] == first


def test_with_no_intact_build_a_damaged_one_is_a_503(built_settings: Settings) -> None:
    with TestClient(create_app(built_settings, encoder=HashingEncoder())) as client:
        _damage_served(client)
        response = client.post("/ask", json={"question": "Where do bees live?"})
        assert response.status_code == 503
        assert response.json() == {
            "detail": "the index is damaged and no earlier build is intact; rebuild it with `qa index`"
        }
