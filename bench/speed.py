"""Speed benchmark: the service against the floor of one encoder pass plus a FAISS search.

    qa bench speed [--questions FILE] [--soak SECONDS]     (make bench, make soak)

Everything is measured in one run and every figure is also given as a ratio to the floor's p50,
since absolute times drift on a shared machine. Load comes from `bench.loadgen` in its own process.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import loadgen
from bench.server import ServerProcess
from qa.builder import build_index
from qa.config import Settings
from qa.encoder import BatchingEncoder, encoder_from, load_encoder
from qa.engine import Engine
from qa.evaluation.evaluate import load_eval_set, run_eval
from qa.store import load_index

# One server process per core, as the README recommends for serving.
WORKERS = len(os.sched_getaffinity(0))


def floor(settings: Settings, questions: list[str]) -> dict[str, float]:
    """In-process: encode one question with sentence-transformers, then search FAISS."""
    encoder = load_encoder(settings.model, settings.encode_batch_size, backend="torch")
    index = load_index(settings.index_dir, encoder)
    assert index.dense is not None, "one index, not a sharded one"
    k = min(3, index.dense.ntotal)
    for q in questions[:5]:  # warm-up
        index.dense.search(encoder.encode([q]), k)
    times = []
    for q in questions:
        started = time.perf_counter()
        index.dense.search(encoder.encode([q]), k)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}


def quality(settings: Settings, questions_file: Path) -> dict[str, Any]:
    """qa eval with sentence-transformers, with ONNX Runtime, and with ONNX Runtime behind the
    request batcher (the answer cache is checked over HTTP, in http_matches)."""
    items = load_eval_set(questions_file)
    torch_encoder = load_encoder(settings.model, settings.encode_batch_size, backend="torch")
    fast = encoder_from(settings)
    results: dict[str, Any] = {}
    for name, encoder in (("torch", torch_encoder), ("onnx", fast), ("onnx+batching", BatchingEncoder(fast))):
        engine = Engine(settings, encoder)
        engine.load()
        metrics = run_eval(engine, items)
        results[name] = _without_latency(metrics)
    results["identical"] = results["torch"] == results["onnx"] == results["onnx+batching"]
    return results


def _without_latency(metrics: Any) -> Any:
    """The figures of a run_eval report but its timings, at every level (per kind included)."""
    if isinstance(metrics, dict):
        return {k: _without_latency(v) for k, v in metrics.items() if not k.startswith("latency")}
    return metrics


def http_matches(url: str, settings: Settings, questions: list[str]) -> int:
    """Answers over HTTP (cache on, asked twice) that differ from the in-process engine's."""
    engine = Engine(settings, encoder_from(settings))
    engine.load()
    mismatches = 0
    with httpx.Client(base_url=url, timeout=30) as http:
        for question in questions:
            local = engine.ask(question, 3, use_cache=False).to_json()
            for _ in range(2):
                remote = http.post("/ask", json={"question": question, "top_k": 3}).json()
                mismatches += remote != local
    return mismatches


def build_rate(settings: Settings) -> dict[str, float]:
    """A fresh build of the corpus with the encoder `qa index` uses."""
    with tempfile.TemporaryDirectory(prefix="qa-bench-build-") as tmp:
        fresh = settings.model_copy(update={"index_dir": Path(tmp), "onnx_dir": settings.onnx_export_dir})
        report = build_index(fresh, encoder_from(fresh))
    return {
        "passages": report.passages_added,
        "seconds": report.total_seconds,
        "passages_per_second": report.passages_added / report.total_seconds,
        "texts_per_second": report.texts_embedded / max(report.embed_seconds, 1e-9),
    }


def run(
    settings: Settings, questions_file: Path, soak_seconds: float = 0, json_path: Path | None = None
) -> str:
    """Build the index of ``settings`` if needed, then measure; the table (and the figures in
    ``json_path``)."""
    build_index(settings, encoder_from(settings))
    questions = [item.question for item in load_eval_set(questions_file)]
    random.Random(13).shuffle(questions)
    figures = (
        soak(settings, questions, soak_seconds)
        if soak_seconds
        else speed(settings, questions, questions_file)
    )
    table = figures.pop("table")
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2))
    return table


def _started(settings: Settings, env: dict[str, str], workers: int = WORKERS) -> tuple[ServerProcess, float]:
    """A server of ``workers`` processes (default: one per core), ready; and its seconds to ready."""
    server = ServerProcess(settings, env, workers=workers)
    return server, server.wait_ready(600)


def models(settings: Settings, questions: list[str]) -> dict[str, float]:
    """What the models a question runs cost, each timed alone in this process: per question, the
    encoder on it plus the reader on the sentences the service reads for it (fact questions the
    thresholds admit), p50 over the questions; and the models' batched capacity on every core —
    the questions encoded 32 at a time plus their reader pairs read 32 at a time, in questions a
    second: the ceiling of throughput."""
    engine = Engine(settings, encoder_from(settings))
    engine.load()
    reader = engine.reader
    # what the reader reads for each question, as the service calls it (captured on this object)
    read: list[tuple[list[tuple[str, str]], list[str] | None]] = []
    if reader is not None:
        inner = reader.readings

        def capture(pairs: list[tuple[str, str]], contexts: list[str] | None = None) -> Any:
            read[-1] = (pairs, contexts)
            return inner(pairs, contexts)

        reader.readings = capture  # type: ignore[method-assign]
    try:
        for question in questions:
            read.append(([], None))
            engine.ask(question, use_cache=False)
    finally:
        if reader is not None:
            del reader.readings  # the class's method again
    encoder = engine.encoder
    for question in questions[:5]:
        encoder.encode([question])
    per_question = []
    for question, (pairs, contexts) in zip(questions, read):
        started = time.perf_counter()
        encoder.encode([question])
        if pairs and reader is not None:
            reader.readings(pairs, contexts)
        per_question.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    for i in range(0, len(questions), 32):
        encoder.encode(questions[i : i + 32])
    every = [(pair, c) for pairs, contexts in read for pair, c in zip(pairs, contexts or [""] * len(pairs))]
    if reader is not None:
        for i in range(0, len(every), 32):
            chunk = every[i : i + 32]
            reader.readings([pair for pair, _ in chunk], [c for _, c in chunk])
    batched = time.perf_counter() - started
    return {
        "p50_ms": float(np.percentile(per_question, 50)),
        "read_share": sum(1 for pairs, _ in read if pairs) / len(read),
        "capacity_qps": len(questions) / batched,
    }


def targets(settings: Settings, questions: list[str]) -> dict[str, Any]:
    """The speed targets, on the default server (one worker): one client's uncached p50 against
    the models' own time, 32 clients against the models' batched capacity, repeated questions
    against the uncached p50."""
    own = models(settings, questions)
    uncached, _ = _started(settings, {"QA_CACHE_SIZE": "0"}, workers=1)
    try:
        loadgen.run(uncached.url, questions, 1, 2)  # warm-up
        one = loadgen.run(uncached.url, questions, 1, 10)
        c32 = loadgen.run(uncached.url, questions, 32, 10)
    finally:
        uncached.stop()
    cached, _ = _started(settings, {}, workers=1)
    try:
        loadgen.run(cached.url, questions, 1, 2)  # every question asked once: the cache holds them
        repeated = loadgen.run(cached.url, questions, 1, 5)
    finally:
        cached.stop()
    rows = [
        (
            "the models a question runs, alone (encoder + reader when it reads), p50",
            f"{own['p50_ms']:.2f} ms",
            "",
            "",
        ),
        ("the models' batched capacity (both cores)", f"{own['capacity_qps']:.0f} questions/s", "", ""),
        (
            "1 client, uncached, p50",
            f"{one['p50_ms']:.2f} ms",
            f"{one['p50_ms'] / own['p50_ms']:.2f}x the models' time",
            "≤ 2x",
        ),
        (
            "32 clients, answers/s (p99)",
            f"{c32['rps']:.1f} ({c32['p99_ms']:.0f} ms), {c32['errors']} errors",
            f"{c32['rps'] / own['capacity_qps']:.0%} of capacity",
            "≥ 60%, 0 errors",
        ),
        (
            "repeated questions (cached), p50",
            f"{repeated['p50_ms']:.2f} ms",
            f"{repeated['p50_ms'] / one['p50_ms']:.2f}x uncached",
            "≤ 0.1x",
        ),
    ]
    table = [
        f"Speed targets, `qa serve` as it starts by default (one worker); the reader read {own['read_share']:.0%} of the questions",
        "",
        "| measure | value | ratio | target |",
        "|---|---|---|---|",
    ]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return {"models": own, "one": one, "c32": c32, "repeated": repeated, "table": "\n".join(table)}


def speed(settings: Settings, questions: list[str], questions_file: Path) -> dict[str, Any]:
    base = floor(settings, questions)
    f50 = base["p50_ms"]
    rows: list[tuple[str, str, float | None]] = [
        ("server", f"qa serve --workers {WORKERS}", None),
        ("floor: encode + FAISS search, p50", f"{f50:.2f} ms", 1.0),
        ("floor: encode + FAISS search, p95", f"{base['p95_ms']:.2f} ms", base["p95_ms"] / f50),
    ]
    uncached, _ = _started(settings, {"QA_CACHE_SIZE": "0"})
    try:
        loadgen.run(uncached.url, questions, 1, 2)  # warm-up
        one = loadgen.run(uncached.url, questions, 1, 15)
        c8 = loadgen.run(uncached.url, questions, 8, 10)
        c32 = loadgen.run(uncached.url, questions, 32, 10)
        uncached_peak = uncached.rss_mib("VmHWM")
    finally:
        uncached.stop()
    for name, key in (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms")):
        rows.append((f"HTTP, 1 client, uncached, {name}", f"{one[key]:.2f} ms", one[key] / f50))
    rows.append(("HTTP, 1 client, requests/s", f"{one['rps']:.1f}", None))
    for label, run in (("8", c8), ("32", c32)):
        rows.append(
            (
                f"HTTP, {label} clients, requests/s",
                f"{run['rps']:.1f} ({run['rps'] / one['rps']:.2f}x one client)",
                None,
            )
        )
        rows.append((f"HTTP, {label} clients, p50", f"{run['p50_ms']:.2f} ms", run["p50_ms"] / f50))
        rows.append((f"HTTP, {label} clients, p99", f"{run['p99_ms']:.2f} ms", run["p99_ms"] / f50))
        rows.append((f"HTTP, {label} clients, errors", f"{run['errors']} of {run['requests']}", None))
    cached, ready = _started(settings, {})
    try:
        faq = loadgen.run(cached.url, questions, 1, 10, faq=True)
        mismatches = http_matches(cached.url, settings, questions)
        peak = max(cached.rss_mib("VmHWM"), uncached_peak)
    finally:
        cached.stop()
    rows += [
        ("HTTP, FAQ workload (80% among 20 questions), p50", f"{faq['p50_ms']:.2f} ms", faq["p50_ms"] / f50),
        ("HTTP, FAQ workload, p99", f"{faq['p99_ms']:.2f} ms", faq["p99_ms"] / f50),
        ("start to /readyz with the index present", f"{ready:.2f} s", None),
        ("peak resident memory of the server (all processes)", f"{peak:.0f} MiB", None),
    ]
    rate = build_rate(settings)
    rows.append(
        (
            "index build",
            f"{rate['passages']} passages in {rate['seconds']:.2f} s = {rate['passages_per_second']:.1f} passages/s ({rate['texts_per_second']:.0f} texts embedded/s)",
            None,
        )
    )
    q = quality(settings, questions_file)
    rows.append(
        (
            "qa eval identical: sentence-transformers, ONNX Runtime, ONNX + request batching",
            str(q["identical"]),
            None,
        )
    )
    rows.append(
        ("answers over HTTP (cache on, each asked twice) differing from in-process", str(mismatches), None)
    )
    table = ["| measure | value | ratio to floor p50 |", "|---|---|---|"]
    table += [
        f"| {name} | {value} | {'' if ratio is None else f'{ratio:.2f}'} |" for name, value, ratio in rows
    ]
    table.append("")
    table.append(
        "Load generator: wrk (bench.loadgen writes its Lua script) in its own process, loopback only."
    )
    goals = targets(settings, questions)
    table += ["", goals.pop("table")]
    return {
        "targets": goals,
        "floor": base,
        "one": one,
        "c8": c8,
        "c32": c32,
        "faq": faq,
        "ready_seconds": ready,
        "peak_mib": peak,
        "build": rate,
        "quality": q,
        "http_mismatches": mismatches,
        "table": "\n".join(table),
    }


def soak(settings: Settings, questions: list[str], seconds: float) -> dict[str, Any]:
    """32 clients for ``seconds``: errors, and resident memory against memory after warm-up."""
    server, _ = _started(settings, {"QA_CACHE_SIZE": "0"})
    try:
        loadgen.run(server.url, questions, 32, 10)  # warm-up
        warm = server.rss_mib()
        run = loadgen.run(server.url, questions, 32, seconds)
        after = server.rss_mib()
    finally:
        server.stop()
    growth = (after - warm) / warm
    table = "\n".join(
        [
            "| soak | value |",
            "|---|---|",
            f"| duration | {run['seconds']:.0f} s, 32 clients |",
            f"| requests | {run['requests']} ({run['rps']:.1f}/s) |",
            f"| errors | {run['errors']} |",
            f"| p50 / p99 | {run['p50_ms']:.1f} ms / {run['p99_ms']:.1f} ms |",
            f"| resident memory after warm-up | {warm:.0f} MiB |",
            f"| resident memory after the run | {after:.0f} MiB ({growth:+.1%}) |",
        ]
    )
    return {"run": run, "warm_mib": warm, "after_mib": after, "growth": growth, "table": table}
