"""Sharded search against one index: SQuAD dev as one corpus, built once as a single index and
once as K shards (the vectors reused), every question asked of both."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.squad import load_squad, score, squad_corpus
from qa.builder import build_index
from qa.encoder import encoder_from
from qa.engine import Engine
from qa.pipeline.result import Result


def run_shards(path: Path, shards: int = 4, limit: int = 0, work_dir: Path | None = None) -> dict[str, Any]:
    articles = load_squad(path)
    with tempfile.TemporaryDirectory(prefix="qa-shards-") as tmp:
        questions, settings = squad_corpus(articles, work_dir or Path(tmp), limit)
        encoder = encoder_from(settings)
        systems: dict[str, dict[str, float]] = {}
        tops: dict[str, list[str | None]] = {}
        layouts = {"one index": 1, f"{shards} shards": shards}
        for name, count in layouts.items():
            build_index(settings.model_copy(update={"shards": count}), encoder, progress=True)
            engine = Engine(settings, encoder)
            engine.load()
            found: list[str | None] = []

            def top(result: Result, found: list[str | None] = found) -> None:
                found.append(result.ranking[0].passage_id if result.ranking else None)

            systems[name] = score(engine, questions, engine.weights, inspect=top)
            tops[name] = found
            passages = len(engine.index.passages)
    one, many = tops.values()
    differ = [
        {"question": q["question"], "one index": a, "shards": b}
        for q, a, b in zip(questions, one, many)
        if a != b
    ]
    summary: dict[str, Any] = {
        "file": str(path),
        "documents": len(articles),
        "passages": passages,
        "questions": len(questions),
        "shards": shards,
        "same_top_citation": round(1 - len(differ) / max(len(questions), 1), 5),
        "differ": differ,
        "systems": {name: {k: round(v, 4) for k, v in m.items()} for name, m in systems.items()},
    }
    lines = [
        f"{path}: {len(articles)} documents, {passages} passages, {len(questions)} questions",
        f"same top citation with {shards} shards as with one index: {summary['same_top_citation']:.4%} "
        f"({len(differ)} differ)",
        "",
        "| layout | hit@1 | ranked@1 | answer-sentence hit | answered | ms/question |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in summary["systems"].items():
        lines.append(
            f"| {name} | {m['hit@1']:.4f} | {m['ranked@1']:.4f} | {m['answer_sentence_hit']:.4f} "
            f"| {m['answered_rate']:.4f} | {m['ms_per_question']:.1f} |"
        )
    lines += [f"differs: {d['question']!r}: {d['one index']} / {d['shards']}" for d in differ[:20]]
    summary["table"] = "\n".join(lines)
    return summary
