"""The HTTP API in-process (TestClient runs the lifespan) with the fake encoder."""

import json

import pytest
from fastapi.testclient import TestClient

from qa.api import create_app
from qa.config import Settings
from qa.encoder import HashingEncoder


@pytest.fixture
def client(built_settings: Settings):
    with TestClient(create_app(built_settings, encoder=HashingEncoder())) as client:
        yield client


def test_ask_returns_a_grounded_cited_answer(client: TestClient) -> None:
    response = client.post("/ask", json={"question": "How many eggs does the queen lay?", "top_k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["answered"] is True and body["reason"] is None
    assert set(body) >= {"question", "answered", "answer", "citations", "reason", "index_fingerprint"}
    assert len(body["citations"]) == 2
    doc = client.get(f"/documents/{body['answer']['doc_id']}").json()
    answer = body["answer"]
    assert doc["text"][answer["start"] : answer["end"]] == answer["text"]
    for citation in body["citations"]:
        text = client.get(f"/documents/{citation['doc_id']}").json()["text"]
        assert text[citation["start"] : citation["end"]] == citation["text"]
        passage = client.get(f"/passages/{citation['passage_id']}").json()
        assert passage["text"] == citation["text"]
        assert passage["sentences"] and all(
            passage["start"] <= s["start"] < s["end"] <= passage["end"] for s in passage["sentences"]
        )


def test_refusal_shape(client: TestClient) -> None:
    body = client.post("/ask", json={"question": "Who painted the Mona Lisa?"}).json()
    assert body["answered"] is False and body["answer"] is None and body["citations"] == []
    assert body["reason"]


def test_explain_over_http(client: TestClient) -> None:
    body = client.post(
        "/ask", json={"question": "What does a home solar system cost?", "explain": True}
    ).json()
    assert body["explain"]["candidates"][0]["fused"] > 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": "   \n\t"}, "question"),
        ({"question": "x" * 1001}, "question"),
        ({"question": "bees?", "top_k": 0}, "top_k"),
        ({"question": "bees?", "top_k": 21}, "top_k"),
        ({"question": "bees?", "top_k": "3"}, "top_k"),
        ({"question": 42}, "question"),
        ({"question": ["a"]}, "question"),
        ({}, "question"),
        ({"question": "bees?", "explain": "yes"}, "explain"),
    ],
)
def test_bad_input_is_422_naming_the_field(client: TestClient, payload: dict, field: str) -> None:
    response = client.post("/ask", json=payload)
    assert response.status_code == 422
    assert field in str(response.json()["detail"])


def test_malformed_json_and_wrong_body(client: TestClient) -> None:
    response = client.post("/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert client.post("/ask", json=["a list"]).status_code == 422


def test_body_over_limit_is_413(client: TestClient) -> None:
    response = client.post(
        "/ask", content=b'{"question": "' + b"a" * 20000 + b'"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_streamed_body_over_limit_is_413(client: TestClient) -> None:
    def chunks():  # no Content-Length: the limit must count what arrives
        yield b'{"question": "'
        for _ in range(20):
            yield b"a" * 1000
        yield b'"}'

    response = client.post("/ask", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_unknown_ids_are_404(client: TestClient) -> None:
    assert client.get("/documents/nope").status_code == 404
    assert client.get("/passages/nope:123").status_code == 404


def test_documents_list_is_paginated(client: TestClient) -> None:
    page = client.get("/documents", params={"limit": 2}).json()
    assert page["total"] == 3 and [d["doc_id"] for d in page["documents"]] == ["bees", "solar"]
    rest = client.get("/documents", params={"offset": 2, "limit": 2}).json()
    assert [d["doc_id"] for d in rest["documents"]] == ["trains"]
    assert client.get("/documents", params={"limit": 0}).status_code == 422
    for summary in page["documents"]:
        passages = client.get(f"/documents/{summary['doc_id']}").json()["passages"]
        assert summary["passages"] == len(passages) > 0
        assert all(client.get(f"/passages/{pid}").json()["doc_id"] == summary["doc_id"] for pid in passages)


def test_health_ready_and_headers(client: TestClient, built_settings: Settings) -> None:
    health = client.get("/healthz")
    assert health.json() == {"status": "ok"}
    assert health.headers["x-content-type-options"] == "nosniff" and health.headers["x-request-id"]
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["passages"] > 0 and ready["model"] == "hashing-256"
    assert ready["stale"] is False
    (built_settings.corpus_dir / "bees.txt").write_text("Bees dance.", encoding="utf-8")
    import time

    time.sleep(2.1)  # readiness caches the corpus check for two seconds
    stale = client.get("/readyz").json()
    assert stale["stale"] is True and "qa index" in stale["stale_fix"]
    assert str(built_settings.corpus_dir) not in stale["stale_fix"]  # no server path to any client


def test_answers_and_state_are_not_cached_by_browsers_or_proxies(client: TestClient) -> None:
    for response in (
        client.post("/ask", json={"question": "How many eggs does the queen lay?"}),
        client.get("/ask", params={"q": "bees?"}),
        client.get("/readyz"),
        client.get("/documents"),
    ):
        assert response.headers["cache-control"] == "no-store"


def test_a_trailing_slash_is_not_redirected_to_the_host_header(client: TestClient) -> None:
    response = client.get("/documents/", headers={"host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 404 and "evil.example" not in response.headers.get("location", "")


def test_get_ask_takes_the_limits_of_post(client: TestClient) -> None:
    many = client.get("/ask", params=[("q", "bees?")] + [("doc_id", f"d{n}") for n in range(101)])
    assert many.status_code == 422
    long_id = client.get("/ask", params={"q": "bees?", "doc_id": "x" * 60_000})
    assert long_id.status_code in (414, 422) and "x" * 200 not in long_id.text


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/ask" in client.get("/openapi.json").json()["paths"]


def test_no_index_is_503_naming_the_command(small_settings: Settings) -> None:
    with TestClient(create_app(small_settings, encoder=HashingEncoder())) as client:
        response = client.post("/ask", json={"question": "bees?"})
        assert response.status_code == 503 and "qa index" in response.json()["detail"]
        assert str(small_settings.index_dir) not in response.text  # no server path to any client
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


def test_admin_reindex_needs_a_configured_token(built_settings: Settings) -> None:
    with TestClient(create_app(built_settings, encoder=HashingEncoder())) as client:
        assert client.post("/admin/reindex").status_code == 404
    settings = built_settings.model_copy(update={"admin_token": "s3cret"})
    with TestClient(create_app(settings, encoder=HashingEncoder())) as client:
        assert client.post("/admin/reindex").status_code == 401
        assert client.post("/admin/reindex", headers={"Authorization": "Bearer wrong"}).status_code == 401
        before = client.get("/readyz").json()["fingerprint"]
        (settings.corpus_dir / "volcano.txt").write_text(
            "Volcanoes erupt molten rock called lava.", encoding="utf-8"
        )
        report = client.post("/admin/reindex", headers={"Authorization": "Bearer s3cret"}).json()
        assert report["documents_added"] == ["volcano"] and report["previous_fingerprint"] == before
        assert client.get("/readyz").json()["fingerprint"] == report["fingerprint"] != before
        body = client.post("/ask", json={"question": "What do volcanoes erupt?"}).json()
        assert body["index_fingerprint"] == report["fingerprint"] and body["answer"]["doc_id"] == "volcano"


def test_reindex_failure_keeps_serving(built_settings: Settings) -> None:
    settings = built_settings.model_copy(update={"admin_token": "t"})
    with TestClient(create_app(settings, encoder=HashingEncoder())) as client:
        before = client.get("/readyz").json()["fingerprint"]
        (settings.corpus_dir / "broken.md").write_bytes(b"\xff\xfe")
        response = client.post("/admin/reindex", headers={"Authorization": "Bearer t"})
        assert response.status_code == 422 and "broken.md" in response.json()["detail"]
        assert client.get("/readyz").json()["fingerprint"] == before
        assert client.post("/ask", json={"question": "How many eggs does the queen lay?"}).status_code == 200


def test_metrics_count_requests_and_outcomes(client: TestClient) -> None:
    client.post("/ask", json={"question": "How many eggs does the queen lay?"})
    client.post("/ask", json={"question": "How many eggs does the queen lay?"})
    client.post("/ask", json={"question": "Who painted the Mona Lisa?"})
    text = client.get("/metrics").text
    assert 'qa_requests_total{route="/ask",status="200"} 3.0' in text
    client.get("/docs")
    client.get("/static/app.js")
    client.get("/no/such/page")
    text = client.get("/metrics").text
    assert 'route="/docs",status="200"' in text and 'route="/static",status="200"' in text
    assert 'route="unmatched",status="404"' in text and "/no/such/page" not in text
    assert 'qa_answers_total{outcome="answered"} 2.0' in text
    assert 'qa_answers_total{outcome="refused"} 1.0' in text
    assert "qa_cache_hits_total 1.0" in text
    assert "qa_index_age_seconds" in text and "qa_index_info{" in text


def test_rate_limit_and_cors(built_settings: Settings) -> None:
    settings = built_settings.model_copy(
        update={"rate_limit_per_minute": 2, "cors_origins": ["https://app.example"]}
    )
    with TestClient(create_app(settings, encoder=HashingEncoder())) as client:
        codes = [client.post("/ask", json={"question": "bees?"}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = client.post("/ask", json={"question": "bees?"})
        assert int(limited.headers["retry-after"]) >= 1
        preflight = client.options(
            "/ask", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        )
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"


def test_cors_closed_by_default(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_reindex_report_carries_every_field_of_the_build_report() -> None:
    from dataclasses import fields

    from qa.api.schemas import ReindexReport
    from qa.builder import BuildReport

    assert {f.name for f in fields(BuildReport)} <= set(ReindexReport.model_fields)


def test_get_ask_refuses_unknown_parameters_like_post(client) -> None:
    misspelt = client.get("/ask", params={"q": "bees?", "top-k": "2"})
    assert misspelt.status_code == 422
    assert misspelt.json()["detail"] == [
        {
            "loc": ["query", "top-k"],
            "msg": "Unknown parameter: GET /ask takes q (the question), top_k, doc_id and where",
            "type": "extra_forbidden",
        }
    ]
    assert client.get("/ask", params={"q": "bees?", "top_k": "2", "doc_id": "bees"}).status_code == 200


def test_openapi_names_the_package_version_and_each_route(client) -> None:
    from importlib.metadata import version

    schema = client.get("/openapi.json").json()
    assert schema["info"]["version"] == version("qa")
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert all(op.get("summary") and " Get" not in op["summary"] for op in operations)


def test_a_batch_of_questions_is_answered_in_order_as_one_by_one(client) -> None:
    questions = ["How many eggs does the queen lay?", "Who painted the Mona Lisa?", "bees?"]
    batch = client.post("/ask/batch", json={"questions": [{"question": q, "top_k": 2} for q in questions]})
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert [r["question"] for r in results] == questions
    for question, result in zip(questions, results):
        single = client.post("/ask", json={"question": question, "top_k": 2}).json()
        assert {k: v for k, v in result.items() if k != "cached"} == {
            k: v for k, v in single.items() if k != "cached"
        }
    too_many = client.post("/ask/batch", json={"questions": [{"question": "bees?"}] * 33})
    assert too_many.status_code == 422
    assert client.post("/ask/batch", json={"questions": []}).status_code == 422


def test_each_question_of_a_batch_counts_against_the_rate_limit(built_settings: Settings) -> None:
    limited = built_settings.model_copy(update={"rate_limit_per_minute": 2})
    with TestClient(create_app(limited, encoder=HashingEncoder())) as client:
        three = client.post("/ask/batch", json={"questions": [{"question": "bees?"}] * 3})
    assert three.status_code == 429 and three.headers["retry-after"]


def test_documents_are_added_replaced_and_removed_through_the_api(built_settings: Settings) -> None:
    settings = built_settings.model_copy(update={"admin_token": "t"})
    admin = {"Authorization": "Bearer t"}
    body = {"text": "# Returns\n\nUnused items can be returned within 30 days.", "title": "Returns"}
    with TestClient(create_app(settings, encoder=HashingEncoder())) as client:
        assert client.put("/admin/documents/returns", json=body).status_code == 401  # no token
        added = client.put("/admin/documents/returns", json=body, headers=admin)
        assert added.status_code == 200 and added.json()["documents_added"] == ["returns"]
        assert client.get("/documents/returns").json()["title"] == "Returns"
        answer = client.post("/ask", json={"question": "How many days do I have to return items?"}).json()
        assert answer["index_fingerprint"] == added.json()["fingerprint"]
        changed = client.put(
            "/admin/documents/returns",
            json={**body, "text": "Returns are accepted for 60 days."},
            headers=admin,
        )
        assert changed.json()["documents_changed"] == ["returns"]
        assert "60 days" in client.get("/documents/returns").json()["text"]
        assert (
            (settings.corpus_dir / "returns.md").read_text(encoding="utf-8").startswith("---\nid: returns\n")
        )
        # A document of another format is replaced as a file; an id nothing has is a 404.
        other = client.put("/admin/documents/bees", json=body, headers=admin)
        assert other.status_code == 422 and "PUT /admin/documents/bees/file" in other.json()["detail"]
        assert client.delete("/admin/documents/nope", headers=admin).status_code == 404
        removed = client.delete("/admin/documents/returns", headers=admin)
        assert removed.status_code == 200 and removed.json()["documents_removed"] == ["returns"]
        assert client.get("/documents/returns").status_code == 404
        assert not (settings.corpus_dir / "returns.md").exists()


def test_a_document_is_uploaded_as_a_file_of_any_format_and_replaces_its_earlier_file(
    built_settings: Settings,
) -> None:
    settings = built_settings.model_copy(update={"admin_token": "t", "max_document_bytes": 40_000})
    admin = {"Authorization": "Bearer t"}
    page = b"<html><head><title>Wasps</title></head><body><main><h1>Wasps</h1><p>Paper wasps build their nests from chewed wood fibre.</p></main></body></html>"
    # over the 16 KiB other bodies are held to (QA_MAX_BODY_BYTES), under QA_MAX_DOCUMENT_BYTES
    page = page.replace(
        b"</main>", b"<p>" + b"Wasps hunt caterpillars in the garden. " * 500 + b"</p></main>"
    )
    assert settings.max_body_bytes < len(page) < settings.max_document_bytes
    corpus = settings.corpus_dir
    with TestClient(create_app(settings, encoder=HashingEncoder())) as client:
        url = "/admin/documents/wasps/file?format=html"
        assert client.put(url, content=page).status_code == 401  # no token
        added = client.put(url, content=page, headers=admin)
        assert added.status_code == 200 and added.json()["documents_added"] == ["wasps"]
        assert (corpus / "wasps.html").read_bytes() == page
        assert client.get("/documents/wasps").json()["format"] == "html"
        answer = client.post("/ask", json={"question": "What do paper wasps build their nests from?"}).json()
        assert answer["answered"] and answer["answer"]["doc_id"] == "wasps"
        # the bees, read from bees.txt, replaced by a Markdown file: the .txt goes with it
        bees = client.put(
            "/admin/documents/bees/file?format=md", content=b"# Bees\n\nBees dance.", headers=admin
        )
        assert bees.json()["documents_changed"] == ["bees"]
        assert (corpus / "bees.md").exists() and not (corpus / "bees.txt").exists()
        before = sorted(p.name for p in corpus.iterdir())
        # over QA_MAX_DOCUMENT_BYTES (the 16 KiB of other bodies does not apply), an unread format,
        # an id a file name cannot carry, a file with no words: refused, the folder as it was
        big = client.put(url, content=b"x" * 40_001, headers=admin)
        assert big.status_code == 413 and "40000" in big.json()["detail"]
        streamed = client.put(url, content=iter([b"x" * 30_000, b"x" * 30_000]), headers=admin)  # no length
        assert streamed.status_code == 413 and "QA_MAX_DOCUMENT_BYTES" in streamed.json()["detail"]
        assert (
            client.put("/admin/documents/wasps/file?format=exe", content=page, headers=admin).status_code
            == 422
        )
        assert (
            client.put("/admin/documents/.wasps/file?format=html", content=page, headers=admin).status_code
            == 422
        )
        empty = client.put("/admin/documents/blank/file?format=txt", content=b"...", headers=admin)
        assert empty.status_code == 422
        assert sorted(p.name for p in corpus.iterdir()) == before
        # the format by the name the documents list gives it ("text") as well as by its suffix
        named = client.put(
            "/admin/documents/notes/file?format=text", content=b"Bees sleep at night.", headers=admin
        )
        assert named.status_code == 200, named.text
        assert (corpus / "notes.txt").exists() and "notes" in named.json()["documents_added"]
    # every other route keeps the small body limit
    with TestClient(create_app(settings, encoder=HashingEncoder())) as client:
        assert (
            client.post(
                "/ask", content=b"{" + b" " * 20000 + b"}", headers={"content-type": "application/json"}
            ).status_code
            == 413
        )


def test_a_document_the_build_refuses_leaves_the_corpus_folder_as_it_was(built_settings: Settings) -> None:
    from qa import build, delete_document, put_document
    from qa.errors import CorpusError, NotFound

    before = sorted(p.name for p in built_settings.corpus_dir.iterdir())
    fingerprint = build(built_settings).fingerprint
    with pytest.raises(CorpusError, match="no words"):
        put_document(built_settings, "blank", "...", encoder=HashingEncoder())
    assert sorted(p.name for p in built_settings.corpus_dir.iterdir()) == before
    report = put_document(built_settings, "wasps", "Wasps build paper nests.", encoder=HashingEncoder())
    assert report.documents_added == ["wasps"] and report.fingerprint != fingerprint
    with pytest.raises(NotFound, match="no document with id 'hornets'"):
        delete_document(built_settings, "hornets", encoder=HashingEncoder())
    report = delete_document(built_settings, "wasps", encoder=HashingEncoder())
    assert report.documents_removed == ["wasps"]
    assert sorted(p.name for p in built_settings.corpus_dir.iterdir()) == before


def test_filters_on_any_front_matter_field_case_blind_any_of_and_ranges(small_settings: Settings) -> None:
    from qa.builder import build_index

    corpus = small_settings.corpus_dir
    for name, department, year in (("ops", "Ops", 2023), ("sales", "sales", 2024), ("legal", "Legal", 2025)):
        (corpus / f"{name}.md").write_text(
            f"---\ndepartment: {department}\nyear: {year}\npublished: {year}-03-01\n---\n\n"
            f"# Holidays in {name}\n\nThe {name} team takes its holidays in August.\n",
            encoding="utf-8",
        )
    build_index(small_settings, HashingEncoder())

    def in_scope(conditions: dict) -> set[str]:
        """The documents the filter keeps (explain lists them); none kept is the 404."""
        body = {
            "question": "When are the team holidays?",
            "explain": True,
            "filter": {"metadata": conditions},
        }
        response = client.post("/ask", json=body)
        if response.status_code == 404:
            return set()
        assert response.status_code == 200, response.text
        return set(response.json()["explain"]["scope"]["documents"])

    with TestClient(create_app(small_settings, encoder=HashingEncoder())) as client:
        assert client.get("/documents/ops").json()["metadata"] == {"department": "Ops", "year": "2023"}
        explain = {"question": "When are the team holidays?", "explain": True}
        scoped = client.post("/ask", json={**explain, "filter": {"metadata": {"department": "OPS"}}}).json()
        assert scoped["explain"]["scope"]["documents"] == ["ops"]  # case-blind
        assert in_scope({"department": {"in": ["ops", "LEGAL"]}}) == {"ops", "legal"}
        assert in_scope({"year": {"gte": "2024"}}) == {"sales", "legal"}
        assert in_scope({"year": {"gte": "2024", "lte": "2024"}}) == {"sales"}
        assert in_scope({"published": {"lte": "2023-12-31"}}) == {"ops"}
        assert in_scope({"department": "nobody"}) == set()
        assert client.get("/ask", params={"q": "holidays?", "where": "department:sales"}).status_code == 200
        wrong = client.post("/ask", json={**explain, "filter": {"metadata": {"year": {"over": "2020"}}}})
        assert wrong.status_code == 422 and "over" in json.dumps(wrong.json())
        empty = client.post("/ask", json={**explain, "filter": {"metadata": {"year": {}}}})
        assert empty.status_code == 422
