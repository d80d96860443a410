"""Evaluation set -> metrics, through the same engine as /ask."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.answer import Result
from qa.engine import Engine
from qa.errors import QAError
from qa.index import LoadedIndex


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answerable: bool
    evidence: tuple[str, ...]
    kind: str  # "answerable", "near_topic" or "off_topic"


def load_eval_set(path: Path) -> list[EvalItem]:
    """Read a JSONL evaluation set; every line is checked, errors name the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise QAError(f"cannot read evaluation set {path}: {error}") from error
    items: list[EvalItem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = EvalItem(
                id=str(row["id"]),
                question=str(row["question"]),
                answerable=bool(row["answerable"]),
                evidence=tuple(str(e) for e in row.get("evidence", [])),
                kind=str(row.get("kind") or ("answerable" if row["answerable"] else "unanswerable")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise QAError(f"{path}:{number}: not a valid evaluation item ({error})") from error
        if item.id in seen:
            raise QAError(f"{path}:{number}: duplicate id {item.id!r}")
        if item.answerable and not item.evidence:
            raise QAError(f"{path}:{number}: an answerable question needs evidence")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise QAError(f"evaluation set {path} is empty")
    return items


def evidence_in(text: str, evidence: tuple[str, ...]) -> bool:
    return any(e in text for e in evidence)


def answer_hit(answer_text: str, evidence: tuple[str, ...]) -> bool:
    """The answer holds an evidence string, or is itself part of one (a sentence of longer evidence)."""
    return any(e in answer_text or answer_text in e for e in evidence)


def sentence_hit(result: Result, evidence: tuple[str, ...]) -> bool:
    return result.answer is not None and answer_hit(result.answer.text, evidence)


def rank_metrics(ranks: list[int | None]) -> dict[str, float]:
    """hit@1, hit@3 and MRR from the rank of the first cited passage holding the evidence."""
    n = max(len(ranks), 1)
    return {
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@3": sum(r is not None and r <= 3 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
    }


def grounding_violations(index: LoadedIndex, result: Result) -> int:
    """Spans whose text is not the document's text at their offsets."""
    spans = [*result.citations, *result.ranking]
    if result.answer is not None:
        spans.append(result.answer)  # type: ignore[arg-type]
    bad = 0
    for span in spans:
        document = index.documents.get(span.doc_id)
        if document is None or document.text[span.start : span.end] != span.text:
            bad += 1
    return bad


def run_eval(engine: Engine, items: list[EvalItem], depth: int = 10) -> dict[str, Any]:
    """Ask every question (uncached) and compute retrieval, answer and abstention metrics."""
    index = engine.index
    missing = [
        i.id
        for i in items
        if i.answerable and not any(evidence_in(d.text, i.evidence) for d in index.documents.values())
    ]
    if missing:
        raise QAError(f"evidence not found verbatim in the corpus for: {', '.join(missing)}")
    latencies: list[float] = []
    rows = []
    violations = 0
    for item in items:
        started = time.perf_counter()
        result = engine.ask(item.question, depth, use_cache=False)
        latencies.append(time.perf_counter() - started)
        violations += grounding_violations(index, result)
        rows.append((item, result))
    return metrics_from(rows, latencies, violations)


def metrics_from(
    rows: list[tuple[EvalItem, Result]], latencies: list[float], violations: int
) -> dict[str, Any]:
    answerable = [(i, r) for i, r in rows if i.answerable]
    unanswerable = [(i, r) for i, r in rows if not i.answerable]

    def first_hit(item: EvalItem, result: Result) -> int | None:
        for rank, citation in enumerate(result.ranking, start=1):
            if evidence_in(citation.text, item.evidence):
                return rank
        return None

    ranks = [first_hit(i, r) for i, r in answerable]
    n = max(len(answerable), 1)
    by_kind: dict[str, list[bool]] = {}
    for item, result in unanswerable:
        by_kind.setdefault(item.kind, []).append(not result.answered)
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        **{name: round(value, 4) for name, value in rank_metrics(ranks).items()},
        "answer_sentence_hit": round(sum(sentence_hit(r, i.evidence) for i, r in answerable) / n, 4),
        "answered_rate": round(sum(r.answered for _, r in answerable) / n, 4),
        "correct_answered": round(
            sum(r.answered and evidence_in(r.citations[0].text, i.evidence) for i, r in answerable) / n, 4
        ),
        "abstention_rate": round(sum(not r.answered for _, r in unanswerable) / max(len(unanswerable), 1), 4),
        "abstention_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
        "grounding_violations": violations,
        "latency_ms_p50": round(float(np.percentile(ms, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(ms, 95)), 2),
    }


def format_metrics(m: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v:.2f}" for k, v in m["abstention_by_kind"].items())
    return "\n".join(
        [
            f"questions            {m['questions']} ({m['answerable']} answerable, {m['unanswerable']} unanswerable)",
            f"hit@1                {m['hit@1']:.3f}",
            f"hit@3                {m['hit@3']:.3f}",
            f"MRR                  {m['mrr']:.3f}",
            f"answer-sentence hit  {m['answer_sentence_hit']:.3f}",
            f"answered (answerable) {m['answered_rate']:.3f}",
            f"answered and right   {m['correct_answered']:.3f}",
            f"abstained (unansw.)  {m['abstention_rate']:.3f} ({kinds})",
            f"grounding violations {m['grounding_violations']}",
            f"latency p50 / p95    {m['latency_ms_p50']:.1f} ms / {m['latency_ms_p95']:.1f} ms",
        ]
    )
