"""With the real bundled model: the repository's corpus, a real uvicorn server, the evaluation set."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from qa.config import Settings
from qa.engine import Engine
from qa.evaluation.evaluate import load_eval_set, run_eval
from tests.conftest import EVAL_SET, MODELS, ROOT, Server

pytestmark = pytest.mark.slow

# Floors, one question under the measured values (see docs/benchmarks.md and docs/evaluation.md): a regression below them fails CI.
# hit@1 counts a refused answerable question as a miss. Both files are checked: our own questions,
# and the ones written by someone else in their own words (validation only: nothing is fitted on them).
FLOORS = {
    "questions.jsonl": {
        "hit@1": 0.84,
        "hit@3": 0.91,
        "mrr": 0.90,
        "answer_sentence_hit": 0.83,
        "answered_rate": 0.93,
        "abstention_rate": 0.92,
    },
    "paraphrase_questions.jsonl": {
        "hit@1": 0.69,
        "hit@3": 0.78,
        "answer_sentence_hit": 0.64,
        "answered_rate": 0.85,
        "abstention_rate": 0.90,
    },
}


def check_grounded(client: httpx.Client, body: dict) -> None:
    spans = list(body["citations"]) + ([body["answer"]] if body["answer"] else [])
    for span in spans:
        text = client.get(f"/documents/{span['doc_id']}").json()["text"]
        assert text[span["start"] : span["end"]] == span["text"]


def test_gigachat_over_http(article_server: Server) -> None:
    with httpx.Client(base_url=article_server.url, timeout=30) as client:
        body = client.post("/ask", json={"question": "Who developed GigaChat?"}).json()
        assert body["answered"] is True
        assert "Gigachat model developed by Sberbank" in body["answer"]["text"]
        assert body["citations"][0]["passage_id"] == body["answer"]["passage_id"]
        check_grounded(client, body)


def test_every_eval_answer_is_grounded_over_http(article_server: Server) -> None:
    items = load_eval_set(EVAL_SET)
    with httpx.Client(base_url=article_server.url, timeout=30) as client:
        for item in items[::3]:
            body = client.post("/ask", json={"question": item.question, "top_k": 5}).json()
            check_grounded(client, body)
            if not body["answered"]:
                assert body["answer"] is None and body["citations"] == [] and body["reason"]


def test_off_topic_is_refused_over_http(article_server: Server) -> None:
    with httpx.Client(base_url=article_server.url, timeout=30) as client:
        body = client.post("/ask", json={"question": "How do I bake sourdough bread at home?"}).json()
        assert body == {**body, "answered": False, "answer": None, "citations": []}
        assert body["reason"].startswith("The documents don't")


@pytest.mark.parametrize(
    "payload",
    [
        {"question": ""},
        {"question": "  "},
        {"question": "q" * 1001},
        {"question": "a", "top_k": 0},
        {"question": "a", "top_k": 21},
        {"question": 1},
        {"question": "a", "top_k": 2.5},
    ],
)
def test_bad_requests_are_4xx_over_http(article_server: Server, payload: dict) -> None:
    response = httpx.post(article_server.url + "/ask", json=payload, timeout=30)
    assert response.status_code == 422


def test_unknown_ids_and_readiness_over_http(article_server: Server) -> None:
    assert httpx.get(article_server.url + "/documents/unknown").status_code == 404
    assert httpx.get(article_server.url + "/passages/unknown").status_code == 404
    ready = httpx.get(article_server.url + "/readyz").json()
    assert ready["stale"] is False and ready["passages"] > 5


def test_server_without_index_answers_503(tmp_path) -> None:
    from tests.conftest import write_corpus

    settings = Settings(corpus_dir=write_corpus(tmp_path / "c"), index_dir=tmp_path / "none", model="hashing")
    (tmp_path / "none").mkdir()
    server = Server(settings)
    try:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(server.url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        response = httpx.post(server.url + "/ask", json={"question": "bees?"}, timeout=10)
        assert response.status_code == 503 and "qa index" in response.json()["detail"]
    finally:
        server.stop()


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_evaluation_floors(article_settings: Settings, real_encoder, name: str) -> None:
    engine = Engine(article_settings, real_encoder)
    engine.load()
    metrics = run_eval(engine, load_eval_set(EVAL_SET.parent / name))
    assert metrics["grounding_violations"] == 0
    assert metrics["abstention_by_kind"]["off_topic"] == 1.0
    below = {k: (metrics[k], floor) for k, floor in FLOORS[name].items() if metrics[k] < floor}
    assert not below, f"metrics below their floors: {below}"


@pytest.mark.parametrize(
    ("corpus", "hit_floor", "near_floor"),
    [("practical", 0.80, 0.50), ("items", 0.90, 0.47)],
)
def test_other_documents_are_answered_and_what_they_do_not_say_is_mostly_refused(
    tmp_path, real_encoder, corpus: str, hit_floor: float, near_floor: float
) -> None:
    """Corpora unlike the article, never trained on: bench/practical (a bike rental, a bakery, a
    tennis club, a cinema, a laundrette, a town hall's ceremonies) and bench/items (documents that
    give a fact for one item and not for its siblings). Floors one question under the shipped
    service's figures."""
    import shutil

    from qa.builder import build_index

    bench = ROOT / "bench" / corpus
    shutil.copytree(bench / "corpus", tmp_path / "corpus")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", onnx_dir=MODELS)
    build_index(settings, real_encoder)
    engine = Engine(settings, real_encoder)
    engine.load()
    metrics = run_eval(engine, load_eval_set(bench / "questions.jsonl"))
    assert metrics["grounding_violations"] == 0
    assert metrics["abstention_by_kind"]["off_topic"] == 1.0
    assert metrics["hit@1"] >= hit_floor, metrics
    assert metrics["abstention_by_kind"]["near_topic"] >= near_floor, metrics


GIGACHAT = (
    "Despite these challenges, Russia has made strides with indigenous technologies, such as the "
    "Gigachat model developed by Sberbank and Yandex GPT, both of which were highlighted and upgraded "
    "during the conference demonstrations."
)


def test_the_bundled_reader_tells_a_stated_answer_from_a_sentence_on_the_subject() -> None:
    """Over our own fact questions about the article: the sentence holding each one's evidence
    against three sentences that hold other questions' evidence (the same subject, another fact)."""
    from sklearn.metrics import roc_auc_score

    from qa.answer_type import asks_for_a_fact
    from qa.passages import sentence_spans
    from qa.reader import load_reader

    reader = load_reader("bundled")
    assert reader is not None, "the reader's weights ship in qa/models/reader"
    assert reader.default_threshold > 0  # and the threshold fitted for it, rule.json
    text = (ROOT / "corpus" / "russia-ai-task-force.md").read_text(encoding="utf-8")
    sentences = [" ".join(text[a:b].split()) for a, b in sentence_spans(text, 0, len(text))]
    asked = [
        (item.question, next(s for s in sentences if any(e in s for e in item.evidence)))
        for item in load_eval_set(EVAL_SET)
        if item.answerable
        and asks_for_a_fact(item.question)
        and any(e in s for e in item.evidence for s in sentences)
    ]
    pairs, labels = [], []
    for n, (question, stated) in enumerate(asked):
        others = [s for _, s in asked[n + 1 :] + asked[:n] if s != stated][:3]
        pairs += [(question, stated)] + [(question, s) for s in others]
        labels += [1] + [0] * len(others)
    probabilities = [reader.readings([pair])[0].probability for pair in pairs]  # one at a time, as served
    assert len(asked) >= 30 and roc_auc_score(labels, probabilities) >= 0.85
    (elsewhere,) = reader.read(
        "Who developed Gigachat?", ["Honey bees live in colonies of up to 60,000 workers."]
    )
    (stated,) = reader.read("Who developed Gigachat?", [GIGACHAT])
    (how_much,) = reader.read("How much did Sberbank spend developing Gigachat?", [GIGACHAT])
    assert (
        stated > reader.default_threshold > how_much > elsewhere
    )  # the same sentence does not state the sum


def test_the_bundled_reader_points_at_the_short_answer_and_ships_its_confidence_and_relevance() -> None:
    from qa.reader import load_reader

    reader = load_reader("bundled")
    assert reader is not None and reader.points
    (read,) = reader.readings([("Who developed Gigachat?", GIGACHAT)])
    # it points at the developer, a few words at most; this reader reads on over "and Yandex GPT"
    # (the sentence's next model), a miss by exact match that docs/reader.md reports
    assert read.short is not None and read.short[0] == GIGACHAT.index("Sberbank")
    assert len(GIGACHAT[read.short[0] : read.short[1]].split()) <= 4
    shipped = reader.default_calibrated
    assert shipped.confidence is not None and shipped.relevance is not None and shipped.relevance_floor > 0


def test_readiness_names_the_reader_and_its_rule(article_server: Server) -> None:
    ready = httpx.get(article_server.url + "/readyz").json()
    assert ready["reader"] and ready["answer_rule"] == "reader" and ready["calibration"] == "default"


def test_onnx_runtime_gives_the_sentence_transformers_vectors(real_encoder) -> None:
    from qa.encoder import OnnxEncoder, load_encoder

    if not isinstance(real_encoder, OnnxEncoder):
        pytest.skip("the ONNX backend is not in use")
    texts = ["Who developed GigaChat?", "short", "A longer sentence about data centres " * 12, ""]
    torch_encoder = load_encoder(Settings().model, backend="torch")
    assert np.abs(real_encoder.encode(texts) - torch_encoder.encode(texts)).max() < 1e-5
    assert real_encoder.name == torch_encoder.name  # indexes built by either serve with the other


def test_a_question_its_section_s_heading_asks_is_answered_by_the_section(tmp_path, real_encoder) -> None:
    """An FAQ's entry (or a "## Question?" section) is its author's answer to that question: asked
    in the same key words, the reader's doubt does not refuse it; a question adding a key word is
    another question, which the reader still judges."""
    from qa.builder import build_index
    from qa.store import load_index
    from tests.conftest import MODELS, write_corpus

    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "faq.csv": 'question,answer\nHow long does shipping take?,"Orders ship within two working days '
            'and arrive in three to five days."\nWhat payment methods do you accept?,"We accept Visa, '
            'Mastercard, PayPal and bank transfer."\n',
        },
    )
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", onnx_dir=MODELS)
    build_index(settings, real_encoder)
    engine = Engine(settings, real_encoder, load_index(settings.index_dir, real_encoder))
    assert engine.reader is not None

    def evidence(question: str):
        result = engine.ask(question, explain=True, use_cache=False)
        return result, result.explain["decision"]

    for asked in (
        "How long does shipping take?",
        "how long does shipping take",
        "Which payment methods are accepted?",
    ):
        result, decision = evidence(asked)
        assert result.answered and result.signals["heading"] == 1.0, (asked, decision)
        assert "heading asks this question" in decision
    result, decision = evidence("How long does shipping to Canada take?")  # a key word the heading lacks
    assert result.signals["heading"] == 0.0 and "the reader gives" in decision

    # and the other way: a heading with a key word the question lacks asks another question
    narrower = write_corpus(
        tmp_path / "narrower",
        {
            "faq.csv": 'question,answer\nHow long does shipping to Canada take?,"Parcels to Canada take ten days."\n'
        },
    )
    other = settings.model_copy(update={"corpus_dir": narrower, "index_dir": tmp_path / "narrower-index"})
    build_index(other, real_encoder)
    engine = Engine(other, real_encoder, load_index(other.index_dir, real_encoder))
    result, decision = evidence("How long does shipping take?")
    assert result.signals["heading"] == 0.0 and "the reader gives" in decision
