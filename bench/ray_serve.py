"""Query latency and throughput through Ray Serve against ``qa serve`` on the same machine and the
same corpus (BEIR SciFact's abstracts, its queries), answer cache off:

- ``qa serve``, one index: the floor;
- ``qa serve``, the same corpus as K shards searched in one process (the cost of the merge);
- Ray Serve, the router with 1 and 2 replicas, each with its K shard actors (a local one-node
  cluster, started for the run).

    qa bench ray-serve ../shared/benchmarks/beir-scifact [--shards 2] [--replicas 1 --replicas 2]
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.large import write_scifact
from bench.server import ServerProcess
from qa.builder import build_index
from qa.config import Settings
from qa.encoder import encoder_from

NO_CACHE = {"QA_CACHE_SIZE": "0"}
CLIENTS = 8


def _measure(label: str, server: ServerProcess, queries: list[str], seconds: float) -> dict[str, Any]:
    try:
        ready = server.wait_ready(600)
        loadgen.run(server.url, queries, 1, 2)  # warm-up
        one = loadgen.run(server.url, queries, 1, seconds)
        many = loadgen.run(server.url, queries, CLIENTS, seconds)
    finally:
        server.stop(timeout=60)
    return {
        "server": label,
        "ready_s": round(ready, 1),
        "p50_ms": one["p50_ms"],
        "p95_ms": one["p95_ms"],
        "rps_1_client": one["rps"],
        f"rps_{CLIENTS}_clients": many["rps"],
        f"p50_ms_{CLIENTS}_clients": many["p50_ms"],
        "errors": one["errors"] + many["errors"],
    }


def run_ray_serve(
    scifact: Path,
    shards: int = 2,
    replicas: list[int] | None = None,
    seconds: float = 15,
    work: Path | None = None,
    http: list[str] | None = None,
) -> dict[str, Any]:
    from bench.cluster import LocalCluster

    queries = [json.loads(line)["text"] for line in (scifact / "queries.jsonl").open(encoding="utf-8")][:300]
    cores = len(os.sched_getaffinity(0))
    rows = []
    with tempfile.TemporaryDirectory(prefix="qa-ray-serve-") as tmp:
        folder = work or Path(tmp)
        corpus = folder / "scifact"
        if not corpus.exists():
            write_scifact(scifact, corpus, 1)
        base = Settings()
        settings = base.model_copy(
            update={"corpus_dir": corpus, "index_dir": folder / "index", "onnx_dir": base.onnx_export_dir}
        )
        encoder = encoder_from(settings)
        build_index(settings.model_copy(update={"shards": 1}), encoder, progress=True)
        rows.append(_measure("qa serve, one index", ServerProcess(settings, NO_CACHE), queries, seconds))
        build_index(settings.model_copy(update={"shards": shards}), encoder)  # vectors reused
        rows.append(
            _measure(
                f"qa serve, {shards} shards in one process",
                ServerProcess(settings, NO_CACHE),
                queries,
                seconds,
            )
        )
        with LocalCluster(nodes=1, cpus=cores) as cluster:
            for count in replicas or [1, 2]:
                # The router and the shards share the cores (rounded down: 3 x 0.667 would not fit in 2).
                cpus = math.floor(1000 * cores / (count * (shards + 1))) / 1000
                for mode in http or ["proxy", "replicas"]:
                    args = ["--ray", cluster.address, "--replicas", str(count), "--replica-cpus", str(cpus)]
                    server = ServerProcess(settings, NO_CACHE, [*args, "--http", mode])
                    label = f"Ray Serve, {shards} shards, {count} replica(s) each, HTTP by the {mode}"
                    rows.append(_measure(label, server, queries, seconds))
    floor = rows[0]["p50_ms"]
    for row in rows:
        row["p50_vs_qa_serve"] = round(row["p50_ms"] / floor, 2)
    keys = list(rows[0])
    lines = [
        f"{scifact}: {len(queries)} queries, answer cache off, {cores} cores; one client for p50, {CLIENTS} for "
        "the second throughput",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
    ]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return {"rows": rows, "table": "\n".join(lines)}
