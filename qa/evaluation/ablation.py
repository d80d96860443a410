"""What each ranking signal adds: the evaluation set run against variants of the ranking.

The variants are read from the signal table (qa/pipeline/fusion.py). The corpus is built twice into
temporary indexes (passages with and without their title and headings) with the same model, and the
answerable questions are asked through the same engine as /ask.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from qa.builder import build_index
from qa.config import Settings
from qa.encoder import Encoder
from qa.engine import Engine
from qa.evaluation.evaluate import EvalItem, evidence_in, rank_metrics, sentence_hit
from qa.pipeline.fusion import SIGNALS
from qa.store import retrieval_text


@dataclass(frozen=True)
class Variant:
    name: str
    signals: tuple[str, ...]  # the signals kept, at their weights; every other at 0
    context: bool = True  # passages indexed with their title and headings


def variants() -> list[Variant]:
    """Read from the ranking's signal table: each fusion signal alone, then the signals added one at a
    time in the table's order (the last is the service), then the service without titles and headings."""
    names = [s.name for s in SIGNALS]
    rows = [Variant(f"{s.name} only", (s.name,)) for s in SIGNALS if s.stage == "fusion"]
    for n in range(2, len(names) + 1):
        rows.append(
            Variant(" + ".join(names[:n]) + (" (the service)" if n == len(names) else ""), tuple(names[:n]))
        )
    rows.append(Variant("the service, passages without title and headings", tuple(names), context=False))
    return rows


def _metrics(engine: Engine, items: list[EvalItem], variant: Variant) -> dict[str, float]:
    weights = engine.weights.only(*variant.signals)
    ranks, sentence_hits = [], 0
    for item in items:
        result = engine.ask(item.question, 10, weights=weights, use_cache=False)
        rank = next((r for r, c in enumerate(result.ranking, 1) if evidence_in(c.text, item.evidence)), None)
        ranks.append(rank)
        sentence_hits += sentence_hit(result, item.evidence)
    return {**rank_metrics(ranks), "answer_sentence_hit": sentence_hits / len(items)}


def _plain_bm25(engine: Engine, items: list[EvalItem]) -> dict[str, float]:
    """BM25 over the same passages with bm25s' default analysis (no stemming), to show what the
    service's stems and stop words add."""
    index = engine.index
    texts = [retrieval_text(p, index.documents[p.doc_id].title, True) for p in index.passages]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    ranks = []
    for item in items:
        tokens = bm25s.tokenize([item.question], stopwords="en", return_ids=False, show_progress=False)[0]
        scores = retriever.get_scores(tokens) if tokens else np.zeros(len(texts))
        order = np.argsort(-scores, kind="stable")[:10]
        rank = next(
            (r for r, i in enumerate(order, 1) if evidence_in(texts[i], item.evidence) and scores[i] > 0),
            None,
        )
        ranks.append(rank)
    return {**rank_metrics(ranks), "answer_sentence_hit": float("nan")}


def run_ablation(
    settings: Settings, encoder: Encoder, items: list[EvalItem]
) -> list[tuple[str, dict[str, float]]]:
    answerable = [i for i in items if i.answerable]
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="qa-ablation-") as work:
        engines: dict[bool, Engine] = {}
        for context in (False, True):
            variant_settings = settings.model_copy(
                update={"index_dir": Path(work) / f"context-{context}", "passage_context": context}
            )
            build_index(variant_settings, encoder)
            engines[context] = Engine(variant_settings, encoder)
            engines[context].load()
        rows.append(
            (
                "BM25 only, no stemming (bm25s defaults)",
                _plain_bm25(engines[True], answerable),
            )
        )
        for variant in variants():
            rows.append((variant.name, _metrics(engines[variant.context], answerable, variant)))
    return rows


def format_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = ["| variant | hit@1 | hit@3 | MRR | answer-sentence hit |", "|---|---|---|---|---|"]
    for name, m in rows:
        sentence = "–" if np.isnan(m["answer_sentence_hit"]) else f"{m['answer_sentence_hit']:.3f}"
        lines.append(f"| {name} | {m['hit@1']:.3f} | {m['hit@3']:.3f} | {m['mrr']:.3f} | {sentence} |")
    return "\n".join(lines)
