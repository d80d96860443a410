"""What a cheaper index costs in answers: SQuAD dev as one corpus (bench/squad.py) with sentence
vectors stored as float32, float16 (the default) and int8, and with the word vectors capped.

One work folder, built in that order so that each build reuses the previous one's vectors: only the
first (float32) embeds; float16 and int8 store the same vectors rounded. Each row: the answers and
the bytes per passage on disk.

    qa bench compact ../shared/benchmarks/squad-v1.1-dev/dev-v1.1.json.gz [--cap 5000 --cap 2000]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.build import bytes_per_passage
from bench.squad import load_squad, score, squad_corpus
from qa.builder import build_index
from qa.encoder import encoder_from
from qa.engine import Engine


def run_compact(path: Path, caps: list[int], limit: int = 0, work_dir: Path | None = None) -> dict[str, Any]:
    articles = load_squad(path)
    with tempfile.TemporaryDirectory(prefix="qa-compact-") as tmp:
        questions, settings = squad_corpus(articles, work_dir or Path(tmp), limit)
        encoder = encoder_from(settings)
        variants: list[tuple[str, dict[str, Any]]] = [
            ("sentence vectors float32", {"sentence_vectors": "float32"}),
            ("float16 (default)", {"sentence_vectors": "float16"}),
            *((f"float16, word vectors capped at {cap:,}", {"max_word_vectors": cap}) for cap in caps),
            ("sentence vectors int8", {"sentence_vectors": "int8"}),
        ]
        rows: list[dict[str, Any]] = []
        for label, update in variants:
            variant = settings.model_copy(update=update)
            report = build_index(variant, encoder, progress=True)
            engine = Engine(variant, encoder)
            index = engine.load()
            metrics = score(engine, questions, engine.weights)
            rows.append(
                {
                    "variant": label,
                    "words_with_vectors": len(index.lexicon.words),
                    "texts_embedded": report.texts_embedded,
                    **{k: round(v, 4) for k, v in metrics.items()},
                    "bytes_per_passage": bytes_per_passage(variant.index_dir),
                }
            )
    lines = [
        f"{path}: {len(articles)} documents, {len(questions)} questions (hit@1 counts a refusal as a miss)",
        "",
        "| variant | words with vectors | hit@1 | ranked@1 | answer-sentence hit | answered | bytes/passage "
        "(sentences.npy / words.npy / total) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        size = row["bytes_per_passage"]
        sentences = sum(size.get(f, 0) for f in ("sentences.npy", "sentence_scales.npy", "sentence_map.npy"))
        lines.append(
            f"| {row['variant']} | {row['words_with_vectors']:,} | {row['hit@1']:.4f} | {row['ranked@1']:.4f} "
            f"| {row['answer_sentence_hit']:.4f} | {row['answered_rate']:.4f} "
            f"| {sentences:.0f} / {size.get('words.npy', 0):.0f} / {size['total']:.0f} |"
        )
    return {"file": str(path), "rows": rows, "table": "\n".join(lines)}
