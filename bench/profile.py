"""Where an uncached question's time goes, stage by stage, in the engine (no HTTP).

The pipeline times its own stages (qa/pipeline/: ``Engine.ask(..., timings=...)``), so the table
follows the stages as they are, with no profiler's cost: each question is asked once; inside the
query stage the encoder's time, and inside answerability the reader's, are timed on the models'
own objects. The models are also timed alone, in the same run.

    qa bench profile [--questions FILE] [--json]     (part of make bench)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from qa.engine import Engine

# The models inside two stages: (stage, the model's share of it, the object and method that run it)
MODELS = (
    ("query", "of which embedding (ONNX Runtime)"),
    ("answerability", "of which the reader (ONNX Runtime)"),
)


@contextmanager
def _timed(target: object, method: str, totals: dict[str, float], key: str) -> Iterator[None]:
    """Sum the seconds ``target.method`` takes into ``totals[key]`` (on this object only)."""
    if target is None:
        yield
        return
    inner: Callable[..., Any] = getattr(target, method)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - started

    setattr(target, method, timed)
    try:
        yield
    finally:
        delattr(target, method)  # the class's method again


def profile_stages(engine: Engine, questions: list[str]) -> dict[str, Any]:
    """Per stage, milliseconds per question and the share of the whole question, from one pass
    over ``questions`` (the first five are asked before, to warm the libraries' caches; the
    engine's answer cache is bypassed)."""
    for question in questions[:5]:
        engine.ask(question, use_cache=False)
    stages: dict[str, float] = {}
    models: dict[str, float] = {}
    started = time.perf_counter()
    with (
        _timed(engine.encoder, "encode", models, "query"),
        _timed(engine.reader, "readings", models, "answerability"),
    ):
        for question in questions:
            engine.ask(question, use_cache=False, timings=stages)
    whole = time.perf_counter() - started
    n = len(questions)

    def row(stage: str, seconds: float) -> dict[str, Any]:
        return {
            "stage": stage,
            "ms_per_question": round(seconds * 1000 / n, 3),
            "share": round(seconds / whole, 4),
        }

    rows = []
    for name, seconds in stages.items():
        rows.append(row(name, seconds))
        for stage, label in MODELS:
            if stage == name and stage in models:
                rows.append(row(label, models[stage]))
    rows.append(row("the rest of Engine.ask", whole - sum(stages.values())))
    return {"questions": n, "ms_per_question": round(whole * 1000 / n, 3), "stages": rows}


def models_alone(engine: Engine, questions: list[str], repeat: int = 1) -> dict[str, float]:
    """p50 milliseconds of the models one question runs, each timed alone (no profiler): the
    encoder on the question, and the reader on the sentence the service reads."""
    encode, read = [], []
    for question in questions * repeat:
        started = time.perf_counter()
        engine.encoder.encode([question])
        encode.append((time.perf_counter() - started) * 1000)
        if engine.reader is not None:
            result = engine.ask(question, use_cache=False, explain=True)
            sentences = [
                s for s in (result.explain or {}).get("sentences", []) if s.get("reader") is not None
            ]
            if sentences:
                text = engine.index.documents[result.ranking[0].doc_id].text
                pairs = [(question, text[s["start"] : s["end"]]) for s in sentences]
                started = time.perf_counter()
                engine.reader.readings(pairs)
                read.append((time.perf_counter() - started) * 1000)
    figures = {"encoder_p50_ms": float(np.percentile(encode, 50))}
    if read:
        figures["reader_p50_ms"] = float(np.percentile(read, 50))
    return figures


def table(report: dict[str, Any]) -> str:
    lines = [
        f"where an uncached question's time goes (engine, no HTTP; {report['questions']} questions, "
        f"{report['ms_per_question']:.2f} ms each)",
        "",
        "| stage | ms a question | share |",
        "|---|---|---|",
    ]
    lines += [f"| {r['stage']} | {r['ms_per_question']:.2f} | {r['share']:.1%} |" for r in report["stages"]]
    alone = report.get("models_alone", {})
    if alone:
        lines += [
            "",
            "the models alone (p50): "
            + ", ".join(f"{k.removesuffix('_p50_ms')} {v:.2f} ms" for k, v in alone.items()),
        ]
    return "\n".join(lines)


def run_profile(engine: Engine, questions: list[str]) -> dict[str, Any]:
    report = profile_stages(engine, questions)
    report["models_alone"] = models_alone(engine, questions)
    return report


def questions_from(path: Path) -> list[str]:
    from qa.evaluation.evaluate import load_eval_set

    return [item.question for item in load_eval_set(path)]
