"""Where an uncached question's time goes, stage by stage, in the engine (no HTTP).

Each question is asked once under cProfile; a stage's time is the cumulative time of the function
that does it, less the stages nested inside it (the reader runs inside the answer step, sentence
scoring inside the reranking). cProfile adds its own cost to every Python call, so the shares are
what counts, and the models' times are also measured alone, without it, in the same run.

    qa bench profile [--questions FILE] [--json]     (part of make bench)
"""

from __future__ import annotations

import cProfile
import pstats
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.engine import Engine


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # the file, as a path suffix
    function: str
    inside: tuple[str, ...] = ()  # stages nested in this one, subtracted from it


STAGES = (
    Stage("question preparation (typo matching)", "qa/question.py", "prepare"),
    Stage("embedding (ONNX Runtime)", "qa/encoder.py", "encode"),
    Stage(
        "word weights",
        "qa/engine.py",
        "queries",
        ("question preparation (typo matching)", "embedding (ONNX Runtime)"),
    ),
    Stage("dense search (FAISS)", "qa/retrieve.py", "_nearest"),
    Stage("keyword search (BM25) and the pool", "qa/retrieve.py", "retrieve", ("dense search (FAISS)",)),
    Stage("sentence scoring", "qa/ranking.py", "score_sentences"),
    Stage("fusion and reranking", "qa/ranking.py", "rank_pool", ("sentence scoring",)),
    Stage("reader (ONNX Runtime)", "qa/reader.py", "readings"),
    # (sentence scoring happens in the reranking: the answer step reads the scores it left)
    Stage("answer: rule, span, citations, reason", "qa/answer.py", "answer", ("reader (ONNX Runtime)",)),
)


def _cumulative(stats: pstats.Stats, stage: Stage) -> float:
    """Seconds spent in the stage's function, its callees included. Of several functions of that
    name in the file (an encoder wrapping another), the outermost: the one with the most time."""
    return max(
        (
            cumulative
            for (filename, _, function), (_, _, _, cumulative, _) in stats.stats.items()  # type: ignore[attr-defined]
            if function == stage.function and filename.endswith(stage.module)
        ),
        default=0.0,
    )


def profile_stages(engine: Engine, questions: list[str]) -> dict[str, Any]:
    """Per stage, milliseconds per question and the share of the whole question, from one profiled
    pass over ``questions`` (the first five are asked before, unprofiled, to warm the caches of the
    libraries; the engine's answer cache is bypassed)."""
    for question in questions[:5]:
        engine.ask(question, use_cache=False)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for question in questions:
        engine.ask(question, use_cache=False)
    profiler.disable()
    whole = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    cumulative = {s.name: _cumulative(stats, s) for s in STAGES}
    own = {s.name: cumulative[s.name] - sum(cumulative[n] for n in s.inside) for s in STAGES}
    n = len(questions)
    rows = [
        {"stage": name, "ms_per_question": round(seconds * 1000 / n, 3), "share": round(seconds / whole, 4)}
        for name, seconds in own.items()
    ]
    rest = whole - sum(own.values())
    rows.append(
        {
            "stage": "the rest of Engine.ask",
            "ms_per_question": round(rest * 1000 / n, 3),
            "share": round(rest / whole, 4),
        }
    )
    return {"questions": n, "ms_per_question_profiled": round(whole * 1000 / n, 3), "stages": rows}


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
        f"{report['ms_per_question_profiled']:.2f} ms each under the profiler)",
        "",
        "| stage | ms a question (profiled) | share |",
        "|---|---|---|",
    ]
    lines += [f"| {r['stage']} | {r['ms_per_question']:.2f} | {r['share']:.1%} |" for r in report["stages"]]
    alone = report.get("models_alone", {})
    if alone:
        lines += [
            "",
            "the models alone, without the profiler (p50): "
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
