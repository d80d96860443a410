"""Larger corpora: build time, size on disk, server memory and query latency at 100,000+ passages.

    qa bench large ../shared/benchmarks/beir-scifact [--copies 14]   (make bench-large)

The corpus is BEIR SciFact's abstracts, repeated under new ids until it passes 100,000 passages (14 copies);
the same figures are measured on the repository's corpus for comparison. Repeated texts are
embedded once (the build deduplicates identical texts), so the build time is also reported as
embedding throughput, from which the time for 100,000 distinct passages follows.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen
from bench.server import ServerProcess
from qa.builder import build_index
from qa.config import Settings
from qa.encoder import encoder_from
from qa.store import IndexFolder


def write_scifact(source: Path, corpus: Path, copies: int) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in gzip.open(source / "corpus.jsonl.gz", "rt", encoding="utf-8")]
    for copy in range(copies):
        folder = corpus / f"copy{copy:02d}"
        folder.mkdir(exist_ok=True)
        for row in rows:
            title = json.dumps(row.get("title") or row["_id"])
            (folder / f"{row['_id']}.md").write_text(
                f"---\nid: c{copy:02d}-{row['_id']}\ntitle: {title}\n---\n\n{row['text']}\n", encoding="utf-8"
            )
    return len(rows) * copies


def measure(settings: Settings, queries: list[str], label: str) -> dict[str, object]:
    encoder = encoder_from(settings)
    started = time.perf_counter()
    report = build_index(settings, encoder, progress=True)
    build_seconds = time.perf_counter() - started
    manifest = IndexFolder(settings.index_dir).read_manifest()  # the counts, without loading the index here
    build_dir = (settings.index_dir / "current").resolve()
    size = sum(f.stat().st_size for f in build_dir.rglob("*") if f.is_file())
    server = ServerProcess(settings, {"QA_CACHE_SIZE": "0"})
    ready_seconds = server.wait_ready(600)
    try:
        rss_ready = server.rss_mib()
        loadgen.run(server.url, queries, 1, 2)
        run = loadgen.run(server.url, queries, 1, 15)
        peak = server.rss_mib("VmHWM")
        ready = httpx.get(server.url + "/readyz").json()
    finally:
        server.stop()
    return {
        "corpus": label,
        "documents": len(manifest.documents),
        "passages": manifest.passages,
        "sentences": manifest.sentences,
        "faiss": manifest.faiss["type"],
        # An index already current is not rebuilt (pass a fresh --work to time a full build).
        "build_seconds": "(already built)" if report.up_to_date else round(build_seconds, 1),
        "texts_embedded": report.texts_embedded,
        "embed_seconds": round(report.embed_seconds, 1),
        "index_mib_on_disk": round(size / 2**20, 1),
        "server_ready_seconds": round(ready_seconds, 2),
        "server_rss_mib_ready": round(rss_ready, 0),
        "server_peak_rss_mib": round(peak, 0),
        "query_p50_ms": run["p50_ms"],
        "query_p95_ms": run["p95_ms"],
        "errors": run["errors"],
        "passages_in_readyz": ready["passages"],
    }


def run(scifact: Path, copies: int = 14, work: Path | None = None) -> str:
    """The article's corpus and SciFact repeated ``copies`` times: the table, and the throughput."""
    queries = [json.loads(line)["text"] for line in (scifact / "queries.jsonl").open(encoding="utf-8")][:400]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="qa-large-") as tmp:
        folder = work or Path(tmp)
        models = Settings().onnx_export_dir  # the ONNX export is shared, not redone per index
        small = Settings(index_dir=folder / "small-index", onnx_dir=models)
        rows.append(measure(small, queries, "corpus/ (the article)"))
        corpus = folder / "scifact"
        if not corpus.exists():
            write_scifact(scifact, corpus, copies)
        large = Settings(corpus_dir=corpus, index_dir=folder / "large-index", onnx_dir=models)
        rows.append(measure(large, queries, f"SciFact x{copies}"))
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    large_row = rows[1]
    rate = large_row["texts_embedded"] / max(large_row["embed_seconds"], 1e-9)
    lines.append(f"\nembedding throughput on the large build: {rate:.0f} texts/s")
    (Path(tempfile.gettempdir()) / "qa-bench-large.json").write_text(json.dumps(rows, indent=2))
    return "\n".join(lines)
