import json
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from qa.cli import app
from qa.config import Settings

runner = CliRunner()


def run(settings: Settings, *args: str):
    env = {"QA_MODEL": "hashing", "QA_ABSTAIN_SIMILARITY": "0.2", "QA_ABSTAIN_COVERAGE": "0.5"}
    return runner.invoke(
        app, [*args, "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)], env=env
    )


def test_index_then_check_then_ask(small_settings: Settings) -> None:
    missing = run(small_settings, "index", "--check")
    assert missing.exit_code == 1 and "no index" in missing.output
    built = run(small_settings, "index")
    assert built.exit_code == 0 and "3 added" in built.output
    assert run(small_settings, "index", "--check").exit_code == 0
    again = run(small_settings, "index")
    assert "up to date" in again.output
    answer = run(small_settings, "ask", "How many eggs does the queen lay?", "--json", "--top-k", "2")
    body = json.loads(answer.output)
    assert body["answered"] and 1 <= len(body["citations"]) <= 2
    # past the answer's own passage, only passages relevant enough are cited (the shipped floor)
    assert all(c["relevance"] >= 0.1 for c in body["citations"][1:])
    (small_settings.corpus_dir / "bees.txt").write_text("Bees dance.", encoding="utf-8")
    stale = run(small_settings, "index", "--check")
    assert stale.exit_code == 1 and "corpus changed" in stale.output


def test_ask_text_output_and_explain(built_settings: Settings) -> None:
    result = run(built_settings, "ask", "When did the Shinkansen open?", "--explain")
    assert result.exit_code == 0
    assert "The Shinkansen opened in Japan in 1964." in result.output
    assert "decision: answered" in result.output and "thresholds" in result.output


def test_bad_input_exits_non_zero_with_a_message(built_settings: Settings, tmp_path: Path) -> None:
    empty = run(built_settings, "ask", "   ")
    assert empty.exit_code == 2 and "empty" in empty.output
    assert run(built_settings, "ask", "x" * 1001).exit_code == 2
    assert run(built_settings, "ask", "bees?", "--top-k", "0").exit_code == 2
    (built_settings.corpus_dir / "bad.md").write_text("---\ntitle: [oops\n---\nText.", encoding="utf-8")
    broken = run(built_settings, "index")
    assert broken.exit_code == 1 and "bad.md: broken front matter" in broken.output
    nothing = runner.invoke(
        app, ["ask", "bees?", "--index", str(tmp_path / "none")], env={"QA_MODEL": "hashing"}
    )
    assert nothing.exit_code == 1 and "qa index" in nothing.output


def test_eval_prints_metrics(built_settings: Settings, tmp_path: Path) -> None:
    eval_set = tmp_path / "set.jsonl"
    rows = [
        {
            "id": "1",
            "question": "How many eggs does the queen lay?",
            "answerable": True,
            "evidence": ["2,000 eggs a day"],
        },
        {
            "id": "2",
            "question": "When did the Shinkansen open?",
            "answerable": True,
            "evidence": ["opened in Japan in 1964"],
        },
        {"id": "3", "question": "Who painted the Mona Lisa?", "answerable": False, "kind": "off_topic"},
    ]
    eval_set.write_text("\n".join(json.dumps(r) for r in rows))
    result = run(built_settings, "eval", "--set", str(eval_set), "--json")
    metrics = json.loads(result.output)
    assert metrics["hit@1"] == 1.0 and metrics["answered_rate"] == 1.0
    assert metrics["abstention_by_kind"] == {"off_topic": 1.0}
    assert metrics["grounding_violations"] == 0
    assert metrics["used"]["corpus"] == str(built_settings.corpus_dir) and metrics["used"]["documents"] == 3
    # Several files: one row per file and per kind, failures on request, JSON by file name.
    other = tmp_path / "other.jsonl"
    other.write_text(
        json.dumps(
            {"id": "x", "question": "Who painted the Mona Lisa?", "answerable": True, "evidence": ["bees"]}
        )
        + "\n"
        + json.dumps(
            {"id": "y", "question": "What do worker bees gather?", "answerable": False, "kind": "near_topic"}
        )
    )
    text = run(built_settings, "eval", "--set", str(eval_set), "--set", str(other), "--failures").output
    assert "set.jsonl" in text and "other.jsonl" in text and "  near_topic" in text and "  off_topic" in text
    assert f"of the corpus in {built_settings.corpus_dir}/: 3 documents" in text  # which index and corpus
    assert "hit@1     answered, and the first cited passage" in text  # the metric names explained
    assert "failures in other.jsonl (2):" in text and "answered an unanswerable question" in text
    assert "refused" in text.split("failures in other.jsonl")[1]
    both = json.loads(
        run(built_settings, "eval", "--set", str(eval_set), "--set", str(other), "--json").output
    )
    assert set(both["sets"]) == {"set.jsonl", "other.jsonl"}
    assert both["sets"]["other.jsonl"]["hit@1"] == 0.0  # the refused answerable question is a miss
    eval_set.write_text(
        '{"id": "1", "question": "q", "answerable": true, "evidence": ["not in any document"]}'
    )
    bad = run(built_settings, "eval", "--set", str(eval_set))
    assert bad.exit_code == 1 and "evidence not found" in bad.output


def test_console_script_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qa.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("index", "ask", "serve", "eval", "calibrate", "bench"):
        assert command in result.stdout


def test_index_names_the_documents_and_reports_in_json(small_settings: Settings) -> None:
    first = run(small_settings, "index", "--json")
    report = json.loads(first.output)
    assert sorted(report["documents_added"]) == ["bees", "solar", "trains"] and not report["up_to_date"]
    (small_settings.corpus_dir / "bees.txt").write_text(
        "Bees dance to show where flowers are.", encoding="utf-8"
    )
    (small_settings.corpus_dir / "trains.md").unlink()
    (small_settings.corpus_dir / "wax.txt").write_text("Wax moths eat old combs.", encoding="utf-8")
    second = run(small_settings, "index")
    assert second.exit_code == 0
    assert "  added: wax\n" in second.output and "  changed: bees\n" in second.output
    assert "  removed: trains\n" in second.output


def test_skip_invalid_indexes_the_rest_and_lists_each_file(small_settings: Settings) -> None:
    (small_settings.corpus_dir / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (small_settings.corpus_dir / "faq.csv").write_text("q,a\nWhy?,Because.\n", encoding="utf-8")
    strict = run(small_settings, "index")
    assert strict.exit_code == 1 and "binary.txt" in strict.output and "--skip-invalid" in strict.output
    assert not (small_settings.index_dir / "current").exists()  # the default stays strict
    lenient = run(small_settings, "index", "--skip-invalid")
    assert lenient.exit_code == 0, lenient.output
    assert (
        "skipped faq.csv: an FAQ file needs a header row with question and answer columns" in lenient.output
    )
    assert "skipped binary.txt: not text in any encoding" in lenient.output
    manifest = json.loads((small_settings.index_dir / "current" / "manifest.json").read_text())
    assert len(manifest["skipped"]) == 2 and sorted(manifest["documents"]) == ["bees", "solar", "trains"]
    assert run(small_settings, "index", "--check").exit_code == 0  # current until a file changes
    from fastapi.testclient import TestClient

    from qa.api import create_app
    from qa.encoder import HashingEncoder

    with TestClient(create_app(small_settings, encoder=HashingEncoder())) as client:
        ready = client.get("/readyz").json()
    assert ready["stale"] is False and [s.split(":")[0] for s in ready["skipped"]] == [
        "binary.txt",
        "faq.csv",
    ]


def test_version_and_help_render() -> None:
    assert runner.invoke(app, ["--version"]).output.startswith("qa ")
    text = runner.invoke(app, ["serve", "--help"]).output
    assert "Port (env QA_PORT)." in text and "<bool>" not in text


def test_a_busy_port_is_explained_with_the_fix(built_settings: Settings) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(built_settings, "serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    # the first free port after it (the next one may be taken on a shared machine), in each form
    suggested = re.search(r"--port (\d+)", result.output)
    assert suggested is not None and port < int(suggested.group(1)) < port + 100
    other = suggested.group(1)
    assert f"QA_PORT={other}" in result.output and f"make serve PORT={other}" in result.output


def _questions(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_calibrate_fits_only_on_questions_about_these_documents(
    built_settings: Settings, tmp_path: Path
) -> None:
    """Questions about other documents (the bundled article's, say) are left out; with none left,
    calibration refuses, saying what to write, and stores nothing."""
    other = _questions(
        tmp_path / "article.jsonl",
        [
            {"id": "1", "question": "Who developed GigaChat?", "answerable": True, "evidence": ["Sberbank"]},
            {"id": "2", "question": "Does Russia make chips?", "answerable": False, "kind": "near_topic"},
        ],
    )
    before = json.loads((built_settings.index_dir / "current" / "manifest.json").read_text())["calibration"]
    result = run(built_settings, "calibrate", "--set", str(other))
    assert result.exit_code == 1
    assert "no question file is about these documents" in result.output and "--set FILE" in result.output
    after = json.loads((built_settings.index_dir / "current" / "manifest.json").read_text())["calibration"]
    assert after == before


def test_eval_and_calibrate_without_a_question_file_say_how_to_write_one(
    built_settings: Settings, tmp_path: Path
) -> None:
    """Outside the repository's checkout the default folder (tests/eval/) holds no question file:
    each command says so and what to do, instead of an empty report or a missing-file error."""
    empty = tmp_path / "no-questions"
    empty.mkdir()
    settings = {"QA_MODEL": "hashing", "QA_EVAL_DIR": str(empty)}
    where = ["--corpus", str(built_settings.corpus_dir), "--index", str(built_settings.index_dir)]
    before = (built_settings.index_dir / "current" / "manifest.json").read_text()
    for command in (["eval"], ["eval", "--ablation"], ["calibrate"]):
        result = runner.invoke(app, [*command, *where], env=settings)
        assert result.exit_code == 1, command
        assert "no question file" in result.output and "qa eval --starter FILE" in result.output
    assert (built_settings.index_dir / "current" / "manifest.json").read_text() == before


def test_a_broken_question_file_is_refused_naming_the_line_and_what_is_wrong(
    built_settings: Settings, tmp_path: Path
) -> None:
    good = (
        '{"id": "1", "question": "When did the Shinkansen open?", "answerable": true, "evidence": ["1964"]}'
    )
    for line, said in (
        ('{"id": "2", "question": "Why?"}', "2: no 'answerable' field"),
        ("[1, 2]", "2: not a JSON object"),
        ('{"id": "2", "question": "Why?", "answerable": true, "evidence": "1964"}', "2: evidence is a list"),
        ("{broken", "2: not a valid evaluation item"),
    ):
        path = tmp_path / "questions.jsonl"
        path.write_text(f"{good}\n{line}\n", encoding="utf-8")
        result = run(built_settings, "eval", "--set", str(path))
        assert result.exit_code == 1 and f"questions.jsonl:{said}" in result.output, line


def test_calibrate_does_not_store_a_fit_that_cannot_tell_answerable_from_not(
    built_settings: Settings, tmp_path: Path
) -> None:
    same = [
        ("How many eggs does the queen lay?", "2,000 eggs a day"),
        ("When did the Shinkansen open?", "opened in Japan in 1964"),
    ]
    rows = []
    for n, (question, evidence) in enumerate(same):  # each question asked as answerable and as not
        rows.append({"id": f"a{n}", "question": question, "answerable": True, "evidence": [evidence]})
        rows.append({"id": f"u{n}", "question": question, "answerable": False, "kind": "near_topic"})
    before = json.loads((built_settings.index_dir / "current" / "manifest.json").read_text())["calibration"]
    result = run(built_settings, "calibrate", "--set", str(_questions(tmp_path / "muddled.jsonl", rows)))
    assert result.exit_code == 1
    assert re.search(
        r"not stored: balanced accuracy 0\.[0-5]\d* held out within the file \(5 folds\)", result.output
    )
    assert "the thresholds already in the index stay" in result.output
    after = json.loads((built_settings.index_dir / "current" / "manifest.json").read_text())["calibration"]
    assert after == before


def test_calibrate_does_not_store_a_fit_of_a_handful_of_questions_and_shows_the_rule_in_use(
    built_settings: Settings, tmp_path: Path
) -> None:
    """Four questions that separate perfectly still cannot set the thresholds every question is
    decided by: the fit is shown beside the rule in use, and not stored."""
    rows = [
        {
            "id": "a1",
            "question": "How many eggs does the queen lay a day?",
            "answerable": True,
            "evidence": ["2,000"],
        },
        {"id": "a2", "question": "When did the Shinkansen open?", "answerable": True, "evidence": ["1964"]},
        {"id": "u1", "question": "What is the capital of Peru?", "answerable": False, "kind": "off_topic"},
        {"id": "u2", "question": "Who won the 1998 World Cup?", "answerable": False, "kind": "off_topic"},
    ]
    manifest = built_settings.index_dir / "current" / "manifest.json"
    before = json.loads(manifest.read_text())["calibration"]
    path = _questions(tmp_path / "few.jsonl", rows)
    result = run(built_settings, "calibrate", "--set", str(path))
    assert result.exit_code == 1
    assert "not stored: 2 answerable and 2 unanswerable question(s)" in result.output
    assert "the rule already in the index stays" in result.output
    assert re.search(r"in use until now \((default|calibrated)\): similarity >= ", result.output)
    assert json.loads(manifest.read_text())["calibration"] == before
    shown = run(built_settings, "calibrate", "--set", str(path), "--dry-run")
    assert shown.exit_code == 0 and "in use until now" in shown.output


def test_a_starter_question_file_is_written_from_the_corpus_and_refused_until_completed(
    built_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "mine.jsonl"
    written = run(built_settings, "eval", "--starter", str(path))
    assert written.exit_code == 0 and "placeholders" in written.output
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    corpus = " ".join(p.read_text(encoding="utf-8") for p in built_settings.corpus_dir.iterdir())
    answerable = [r for r in rows if r["answerable"]]
    assert answerable and all(e in corpus for r in answerable for e in r["evidence"])
    assert sum(r["kind"] == "near_topic" for r in rows) == 6  # two per document
    refused = run(built_settings, "eval", "--set", str(path))
    assert refused.exit_code == 1 and "placeholder: write the question" in refused.output
    again = run(built_settings, "eval", "--starter", str(path))
    assert again.exit_code == 2 and "exists already" in again.output


def test_filter_mistakes_are_explained_in_the_options_terms(built_settings: Settings) -> None:
    no_value = run(built_settings, "ask", "bees?", "--where", "pdf")
    assert no_value.exit_code == 2 and "--where takes FIELD=VALUE, FIELD=A|B (any of)" in no_value.output
    bad_name = run(built_settings, "ask", "bees?", "--where", "col/our=red")
    assert bad_name.exit_code == 2 and "is not a field name" in bad_name.output
    unknown = run(built_settings, "ask", "bees?", "--where", "colour=red")  # a field no document has
    assert unknown.exit_code == 1 and "no document matches the filter: colour = 'red'" in unknown.output
    nothing = run(built_settings, "ask", "bees?", "--where", "format=nope")
    assert nothing.exit_code == 1 and "no document matches the filter: format = 'nope'" in nothing.output
    assert "{" not in nothing.output  # no Python dict
    empty = run(built_settings, "ask", "")
    assert empty.exit_code == 2 and "the question: String should have at least 1 character" in empty.output
    help_text = runner.invoke(app, ["ask", "--help"]).output
    assert "--doc DOC_ID" in help_text and "--where FIELD=VALUE" in help_text and "list[str]" not in help_text


def test_a_mistyped_index_folder_is_said_at_once_and_nothing_is_written(tmp_path: Path) -> None:
    """With the real model configured: the index is looked for before the model is loaded, and the
    model's ONNX export goes to a cache folder shared by every index, never into the index folder."""
    typo = tmp_path / "indx"
    result = runner.invoke(app, ["ask", "Who?", "--index", str(typo)])
    assert result.exit_code == 1 and f"no index in {typo}" in result.output
    assert not typo.exists()
    settings = Settings(index_dir=typo)
    assert settings.onnx_export_dir.name == "models" and not settings.onnx_export_dir.is_relative_to(typo)


def test_serve_http_modes_are_checked_before_anything_starts(built_settings: Settings) -> None:
    alone = run(built_settings, "serve", "--http", "replicas")
    assert alone.exit_code == 2 and "--http applies to Ray Serve: add --ray ADDRESS" in alone.output
    unknown = run(built_settings, "serve", "--ray", "auto", "--http", "sideways")
    assert unknown.exit_code == 2 and "--http is auto, proxy or replicas, not 'sideways'" in unknown.output
