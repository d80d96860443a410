"""External benchmark: SQuAD dev (v1.1 or v2.0) asked against all its articles as one corpus.

Each article becomes one document (its paragraphs separated by blank lines); every question is
asked of the whole corpus. A hit is a gold answer string inside a cited passage of the question's
own article. The service runs beside BM25-only and dense-only baselines over the same passages.
"""

from __future__ import annotations

import gzip
import json
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.builder import build_index
from qa.config import Settings
from qa.encoder import encoder_from
from qa.engine import Engine
from qa.errors import QAError
from qa.pipeline.fusion import Weights
from qa.pipeline.result import Result

BATCH = 64


def normalise_answer(text: str) -> list[str]:
    """SQuAD's answer normalisation (its official evaluation script): lower case, no punctuation,
    no articles, words split on white space."""
    text = "".join(c for c in text.lower() if c.isalnum() or c.isspace())
    return [w for w in text.split() if w not in ("a", "an", "the")]


def answer_scores(prediction: str, golds: list[str]) -> tuple[float, float]:
    """Exact match and token F1 of a short answer against the best of the gold answers, as SQuAD
    scores them."""
    guess = normalise_answer(prediction)
    best_em = best_f1 = 0.0
    for gold in golds:
        truth = normalise_answer(gold)
        best_em = max(best_em, float(guess == truth))
        common = sum((Counter(guess) & Counter(truth)).values())
        if common:
            precision, recall = common / len(guess), common / len(truth)
            best_f1 = max(best_f1, 2 * precision * recall / (precision + recall))
    return best_em, best_f1


def load_squad(path: Path) -> list[dict[str, Any]]:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
            data = json.load(handle)
        return list(data["data"])
    except (OSError, ValueError, KeyError) as error:
        raise QAError(f"{path} is not a SQuAD JSON file: {error}") from error


def write_corpus(articles: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """One Markdown document per article; returns the questions with their article's id."""
    questions = []
    for number, article in enumerate(articles):
        doc_id = f"{number:03d}-" + re.sub(r"[^A-Za-z0-9]+", "-", article["title"]).strip("-")[:60]
        paragraphs = [p["context"].strip() for p in article["paragraphs"]]
        title = article["title"].replace("_", " ")
        front = f"id: {json.dumps(doc_id)}\ntitle: {json.dumps(title)}"  # JSON strings are valid YAML
        body = "\n\n".join(" ".join(p.split()) for p in paragraphs)
        (folder / f"{doc_id}.md").write_text(f"---\n{front}\n---\n\n{body}\n", encoding="utf-8")
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [" ".join(a["text"].split()) for a in qa.get("answers", [])]
                questions.append(
                    {
                        "question": qa["question"],
                        "article": article["title"],
                        "doc_id": doc_id,
                        "answers": [a for a in answers if a],
                        "impossible": bool(qa.get("is_impossible", False)),
                    }
                )
    return questions


def squad_corpus(
    articles: list[dict[str, Any]],
    root: Path,
    limit: int = 0,
    settings: Settings | None = None,
    asked: set[str] | None = None,
) -> tuple[list[dict[str, Any]], Settings]:
    """The articles as a corpus in ``root``/corpus, the questions to ask (``limit``: a spread
    sample, not the first articles only; ``asked``: only these articles' questions, by title) and
    settings to build it into ``root``/index."""
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    questions = write_corpus(articles, corpus)
    if asked is not None:
        questions = [q for q in questions if q["article"] in asked]
    if limit:
        questions = questions[:: max(1, len(questions) // limit)][:limit]
    base = settings or Settings()
    # The model's ONNX export is reused, not redone.
    update = {"corpus_dir": corpus, "index_dir": root / "index", "onnx_dir": base.onnx_export_dir}
    return questions, base.model_copy(update=update)


def score(
    engine: Engine,
    questions: list[dict[str, Any]],
    weights: Weights,
    inspect: Callable[[Result], None] | None = None,
) -> dict[str, float]:
    """hit@1, hit@3, ranked@1, answer-sentence hit, answered (and abstained) over ``questions``;
    ``inspect`` sees every result too."""
    index = engine.index
    hit1 = hit3 = ranked1 = sentence = answered_ok = refused_impossible = 0
    answerable = [q for q in questions if not q["impossible"]]
    impossible = [q for q in questions if q["impossible"]]
    started = time.perf_counter()
    for offset in range(0, len(questions), BATCH):
        batch = questions[offset : offset + BATCH]
        for item, query in zip(batch, engine.queries([q["question"] for q in batch], index)):
            result = engine.respond(index, query, 3, weights=weights)
            if inspect is not None:
                inspect(result)
            if item["impossible"]:
                refused_impossible += not result.answered
                continue
            answered_ok += result.answered

            def holds(text: str, doc_id: str, item: dict[str, Any] = item) -> bool:
                return doc_id == item["doc_id"] and any(a in text for a in item["answers"])

            ranking = result.ranking  # kept when refusing: a refusal is a miss, but the ranking is seen
            ranked1 += bool(ranking) and holds(ranking[0].text, ranking[0].doc_id)
            hit1 += result.answered and bool(ranking) and holds(ranking[0].text, ranking[0].doc_id)
            hit3 += result.answered and any(holds(c.text, c.doc_id) for c in ranking[:3])
            if result.answer is not None:
                sentence += holds(result.answer.text, result.answer.doc_id)
    n = max(len(answerable), 1)
    metrics = {
        "hit@1": hit1 / n,
        "hit@3": hit3 / n,
        "ranked@1": ranked1 / n,
        "answer_sentence_hit": sentence / n,
        "answered_rate": answered_ok / n,
        "ms_per_question": 1000 * (time.perf_counter() - started) / max(len(questions), 1),
    }
    if impossible:
        metrics["abstention_rate"] = refused_impossible / len(impossible)
    return metrics


def run_squad(
    path: Path,
    work_dir: Path | None = None,
    limit: int = 0,
    settings: Settings | None = None,
    articles: set[str] | None = None,
) -> dict[str, Any]:
    """Build the SQuAD corpus, ask every question (only those of ``articles`` when given, by title),
    and compare with the baselines."""
    every_article = load_squad(path)
    with tempfile.TemporaryDirectory(prefix="qa-squad-") as tmp:
        questions, bench_settings = squad_corpus(
            every_article, work_dir or Path(tmp), limit, settings, asked=articles
        )
        encoder = encoder_from(bench_settings)
        report = build_index(bench_settings, encoder, progress=True)
        engine = Engine(bench_settings, encoder)
        engine.load()
        systems = {
            "this service": score(engine, questions, engine.weights),
            "BM25 only": score(engine, questions, engine.weights.only("keyword")),
            "dense only": score(engine, questions, engine.weights.only("dense")),
        }
    n_impossible = sum(q["impossible"] for q in questions)
    summary = {
        "file": str(path),
        "documents": len(every_article),
        "passages": len(engine.index.passages),
        "questions": len(questions),
        "articles_asked": len({q["article"] for q in questions}),
        "unanswerable": n_impossible,
        "build_seconds": round(report.total_seconds, 1),
        "systems": {name: {k: round(v, 4) for k, v in m.items()} for name, m in systems.items()},
    }
    summary["table"] = _table(summary)
    return summary


def _table(summary: dict[str, Any]) -> str:
    has_v2 = summary["unanswerable"] > 0
    header = "| system | hit@1 | hit@3 | ranked@1 | answer-sentence hit | answered (answerable) |"
    header += " abstained (unanswerable) |" if has_v2 else ""
    header += " ms/question |"
    lines = [
        f"{summary['file']}: {summary['documents']} documents, {summary['passages']} passages, "
        f"{summary['questions']} questions ({summary['unanswerable']} unanswerable) from {summary['articles_asked']} articles"
        f"; index built in {summary['build_seconds']} s",
        "hit@1 / hit@3: answered, and the first / one of the first three cited passages holds a gold answer "
        "(a refusal is a miss); ranked@1: the first passage of the ranking does, answered or not",
        "",
        header,
        "|---" * (header.count("|") - 1) + "|",
    ]
    for name, m in summary["systems"].items():
        row = f"| {name} | {m['hit@1']:.3f} | {m['hit@3']:.3f} | {m['ranked@1']:.3f} | {m['answer_sentence_hit']:.3f} | {m['answered_rate']:.3f} |"
        row += f" {m['abstention_rate']:.3f} |" if has_v2 else ""
        row += f" {m['ms_per_question']:.1f} |"
        lines.append(row)
    return "\n".join(lines)
