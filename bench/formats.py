"""Format parity: one corpus written in every format, the same questions asked of each.

Every ``share``-th article of a SQuAD dev file is written as Markdown, HTML, Word (python-docx) and
PDF (the HTML printed by headless Chromium, with the running header and footer Chromium prints:
date, title, file address and page numbers). Each format is built into its own index and asked the
same questions; a hit is a gold answer in the first cited passage of the question's own article
(refusals are misses), an answer-sentence hit a gold answer in the answer span. An answer that is a
document title, a running header or footer or a page number is counted apart: there should be none.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.squad import load_squad, score, write_corpus
from qa.builder import build_index
from qa.config import Settings
from qa.encoder import encoder_from
from qa.engine import Engine
from qa.errors import QAError
from qa.pipeline.result import Result

FORMATS = ("md", "html", "docx", "pdf")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
_NOT_CONTENT = re.compile(
    r"^\s*(\d+\s*/\s*\d+|page \d+|file://\S+|\d+/\d+/\d+, \d+:\d+ [AP]M.*)\s*$", re.IGNORECASE
)


def _articles(markdown: Path) -> list[tuple[str, str, list[str]]]:
    """(doc id, title, paragraphs) of each Markdown document write_corpus wrote."""
    found = []
    for path in sorted(markdown.glob("*.md")):
        front, body = path.read_text(encoding="utf-8").split("\n---\n", 1)
        title = re.search(r'^title: "(.*)"$', front, re.MULTILINE)
        found.append((path.stem, title.group(1) if title else path.stem, body.strip().split("\n\n")))
    return found


def _write_html(folder: Path, doc_id: str, title: str, paragraphs: list[str]) -> Path:
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    path = folder / f"{doc_id}.html"
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><article><h1>{html.escape(title)}</h1>\n{body}</article></body></html>",
        encoding="utf-8",
    )
    return path


def _write_docx(folder: Path, doc_id: str, title: str, paragraphs: list[str]) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph(title, style="Title")
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    document.save(str(folder / f"{doc_id}.docx"))


def _print_pdf(chromium: str, source: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="qa-chromium-") as profile:
        done = subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--print-to-pdf={target}",
                source.as_uri(),
            ],
            capture_output=True,
            timeout=120,
        )
    if done.returncode != 0 or not target.exists():
        raise QAError(
            f"Chromium could not print {source.name}: {done.stderr.decode(errors='replace')[-300:]}"
        )


def write_formats(
    articles: list[dict[str, Any]], root: Path, chromium: str | None
) -> tuple[list[dict], list[str]]:
    """The corpus in each format under ``root/<format>``; the questions; the formats written."""
    folders = {fmt: root / fmt for fmt in FORMATS}
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    questions = write_corpus(articles, folders["md"])
    pages = root / "pages"
    pages.mkdir(exist_ok=True)
    written = ["md", "html", "docx"]
    for doc_id, title, paragraphs in _articles(folders["md"]):
        source = _write_html(folders["html"], doc_id, title, paragraphs)
        _write_docx(folders["docx"], doc_id, title, paragraphs)
        if chromium:
            _print_pdf(chromium, source, folders["pdf"] / f"{doc_id}.pdf")
    if chromium:
        written.append("pdf")
    return questions, written


def _not_content(result: Result, titles: set[str]) -> bool:
    """The answer is a document's title, a heading, a running header or footer or a page number."""
    text = result.answer.text.strip() if result.answer is not None else ""
    return bool(text) and (text in titles or text.startswith("#") or bool(_NOT_CONTENT.match(text)))


def run_formats(
    path: Path, share: int = 10, work_dir: Path | None = None, chromium: str | None = None
) -> dict[str, Any]:
    articles = load_squad(path)[::share]
    chromium = chromium or shutil.which("chromium")
    with tempfile.TemporaryDirectory(prefix="qa-formats-") as tmp:
        root = work_dir or Path(tmp)
        questions, written = write_formats(articles, root / "corpus", chromium)
        base = Settings()
        rows: dict[str, dict[str, float]] = {}
        for fmt in written:
            settings = base.model_copy(
                update={
                    "corpus_dir": root / "corpus" / fmt,
                    "index_dir": root / "index" / fmt,
                    "onnx_dir": base.onnx_export_dir,
                }
            )
            encoder = encoder_from(settings)
            build_index(settings, encoder)
            engine = Engine(settings, encoder)
            engine.load()
            titles = {d.title for d in engine.index.documents.values()}
            found: list[bool] = []  # one entry per question, filled while score() asks it

            def note(result: Result, found: list[bool] = found, titles: set[str] = titles) -> None:
                found.append(_not_content(result, titles))

            metrics = score(engine, questions, engine.weights, note)
            metrics["not_content"] = sum(found)
            metrics["passages"] = len(engine.index.passages)
            rows[fmt] = metrics
    summary = {
        "file": str(path),
        "articles": len(articles),
        "questions": len(questions),
        "formats": rows,
        "missing": [f for f in FORMATS if f not in written],
        "share": share,
    }
    summary["table"] = _table(summary)
    return summary


def _table(summary: dict[str, Any]) -> str:
    md = summary["formats"]["md"]
    lines = [
        f"{summary['file']}: {summary['articles']} articles (every {summary['share']}th), "
        f"{summary['questions']} questions, asked of the same corpus in each format",
        "",
        "| format | passages | hit@1 | answer-sentence hit | answered | against Markdown (hit@1 / sentence) "
        "| answers that are a title, heading, running header or page number |",
        "|---|---|---|---|---|---|---|",
    ]
    for fmt, m in summary["formats"].items():
        lines.append(
            f"| {fmt} | {m['passages']} | {m['hit@1']:.3f} | {m['answer_sentence_hit']:.3f} | "
            f"{m['answered_rate']:.3f} | {100 * (m['hit@1'] - md['hit@1']):+.1f} / "
            f"{100 * (m['answer_sentence_hit'] - md['answer_sentence_hit']):+.1f} points | {m['not_content']} |"
        )
    if summary["missing"]:
        lines.append(f"\nnot measured: {', '.join(summary['missing'])} (no Chromium to print the PDFs)")
    return "\n".join(lines)
