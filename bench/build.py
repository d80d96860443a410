"""Build throughput and size per passage: BEIR SciFact's abstracts (distinct texts) built from
scratch in this process, and on a Ray cluster with 1 and 2 embedding actors; seconds by stage and
bytes on disk per passage by file.

    qa bench build ../shared/benchmarks/beir-scifact [--ray local|ADDRESS] [--actors 1 --actors 2]

``--ray local`` starts a one-node Ray cluster on this machine for the run (bench/cluster.py).
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.large import write_scifact
from qa.builder import BuildReport, build_index
from qa.config import Settings
from qa.encoder import encoder_from
from qa.store import IndexFolder

STAGES = ("read", "split", "embed", "write")


def bytes_per_passage(index_dir: Path) -> dict[str, float]:
    """Bytes on disk per passage of the current build, by file (a shard's files summed)."""
    build = (index_dir / "current").resolve()
    passages = max(IndexFolder(index_dir).read_manifest().passages, 1)
    sizes: dict[str, int] = defaultdict(int)
    for file in build.rglob("*"):
        if file.is_file():
            relative = file.relative_to(build).parts
            inside = relative[2:] if relative[0] == "shards" else relative  # shards/NN/<file>
            sizes[inside[0] if inside[0] != "bm25" else "bm25/"] += file.stat().st_size
    sizes["total"] = sum(sizes.values())
    return {name: round(size / passages, 1) for name, size in sorted(sizes.items())}


def _row(label: str, report: BuildReport, documents: int, index_dir: Path) -> dict[str, Any]:
    manifest = IndexFolder(index_dir).read_manifest()
    passages = manifest.passages
    return {
        "build": label,
        "documents": documents,
        "passages": passages,
        "sentences": manifest.sentences,
        "texts_embedded": report.texts_embedded,
        **{f"{stage}_s": round(getattr(report, f"{stage}_seconds"), 2) for stage in STAGES},
        "total_s": round(report.total_seconds, 2),
        "documents_per_s": round(documents / report.total_seconds, 1),
        "passages_per_s": round(passages / report.total_seconds, 1),
        "split_documents_per_s": round(documents / max(report.split_seconds, 1e-9), 0),
        "embedded_texts_per_s": round(report.texts_embedded / max(report.embed_seconds, 1e-9), 1),
        "bytes_per_passage": bytes_per_passage(index_dir),
    }


def run_build(scifact: Path, ray: str | None, actors: list[int], work: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qa-build-") as tmp:
        folder = work or Path(tmp)
        corpus = folder / "scifact"
        documents = write_scifact(scifact, corpus, 1)
        base = Settings()
        settings = base.model_copy(update={"corpus_dir": corpus, "onnx_dir": base.onnx_export_dir})
        encoder = encoder_from(settings)
        rows = []
        local = settings.model_copy(update={"index_dir": folder / "local"})
        rows.append(_row("local", build_index(local, encoder, progress=True), documents, local.index_dir))
        if ray:
            rows += _on_ray(settings, encoder.dim, ray, actors, documents, folder)
    table = _table(rows)
    return {"file": str(scifact), "rows": rows, "table": table}


def _on_ray(
    settings: Settings, dim: int, address: str, actors: list[int], documents: int, folder: Path
) -> list[dict[str, Any]]:
    import ray

    from bench.cluster import LocalCluster
    from qa.cluster import connect
    from qa.cluster.data import RayStages

    cluster = LocalCluster(nodes=1, cpus=len(os.sched_getaffinity(0))) if address == "local" else None
    rows = []
    try:
        connect(cluster.address if cluster else address)
        cores = int(ray.cluster_resources().get("CPU", 1))
        for count in actors:
            on_ray = settings.model_copy(update={"index_dir": folder / f"ray-{count}"})
            stages = RayStages(on_ray, dim, actors=count, threads=max(1, cores // count))
            report = build_index(on_ray, encoder_from(settings), stages=stages)
            rows.append(_row(f"Ray, {count} embedding actor(s)", report, documents, on_ray.index_dir))
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.stop()
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| build | documents | passages | texts embedded | read s | split s | embed s | write s | total s "
        "| documents/s | split documents/s | embedded texts/s | bytes/passage |",
        "|---" * 13 + "|",
    ]
    for row in rows:
        lines.append(
            f"| {row['build']} | {row['documents']} | {row['passages']} | {row['texts_embedded']} "
            + " ".join(f"| {row[f'{stage}_s']}" for stage in STAGES)
            + f" | {row['total_s']} | {row['documents_per_s']} | {row['split_documents_per_s']:.0f} "
            f"| {row['embedded_texts_per_s']} | {row['bytes_per_passage']['total']:.0f} |"
        )
    sizes = rows[0]["bytes_per_passage"]
    lines.append(
        "\nbytes per passage by file (local build): " + ", ".join(f"{k} {v:.0f}" for k, v in sizes.items())
    )
    return "\n".join(lines)
