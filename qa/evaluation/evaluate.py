"""Evaluation set -> metrics, through the same engine as /ask."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.engine import Engine
from qa.errors import QAError
from qa.pipeline.result import Result
from qa.store import LoadedIndex


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
            if not isinstance(row, dict):
                raise QAError(f"{path}:{number}: not a JSON object")
            if not isinstance(row.get("evidence", []), list):
                raise QAError(f"{path}:{number}: evidence is a list of strings")
            item = EvalItem(
                id=str(row["id"]),
                question=str(row["question"]),
                answerable=bool(row["answerable"]),
                evidence=tuple(str(e) for e in row.get("evidence", [])),
                kind=str(row.get("kind") or ("answerable" if row["answerable"] else "unanswerable")),
            )
        except KeyError as error:
            raise QAError(
                f"{path}:{number}: no {error} field (each line needs id, question, answerable)"
            ) from error
        except (ValueError, TypeError) as error:
            raise QAError(f"{path}:{number}: not a valid evaluation item ({error})") from error
        if item.id in seen:
            raise QAError(f"{path}:{number}: duplicate id {item.id!r}")
        if item.answerable and not item.evidence:
            raise QAError(f"{path}:{number}: an answerable question needs evidence")
        if item.question.startswith(PLACEHOLDER[:12]):
            raise QAError(f"{path}:{number}: still the starter's placeholder: write the question")
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


KINDS = ("answerable", "near_topic", "off_topic")


@dataclass(frozen=True)
class Outcome:
    """One question asked: what came back, where the evidence ranked and how long it took."""

    item: EvalItem
    result: Result
    rank: int | None  # 1-based rank of the first cited passage holding the evidence (None: not in the ten)
    seconds: float

    @property
    def right(self) -> bool:
        """Answered, and the first citation holds the evidence (a refusal is a miss)."""
        return self.result.answered and self.rank == 1

    @property
    def failure(self) -> str | None:
        """What went wrong, in words, or None when the service did what it should."""
        result = self.result
        if not self.item.answerable:
            return (
                f"answered an unanswerable question: {result.answer.text[:100]!r}" if result.answer else None
            )
        if not result.answered:
            where = (
                f"the evidence ranked {self.rank}" if self.rank else "the evidence was not in the first ten"
            )
            return f"refused ({where}): {result.reason}"
        if self.rank != 1:
            where = f"ranked {self.rank}" if self.rank else "not in the first ten"
            return f"cited the wrong passage first (the evidence {where}): {result.answer.text[:100]!r}"  # type: ignore[union-attr]
        if not sentence_hit(result, self.item.evidence):
            return f"right passage, wrong sentence: {result.answer.text[:100]!r}"  # type: ignore[union-attr]
        return None


PLACEHOLDER = "<write here a question {}>"


def starter_questions(index: LoadedIndex) -> list[dict[str, Any]]:
    """A question file to complete, from the corpus: for each section of each document an answerable
    question whose evidence is the section's first sentence (the question is the heading when it is
    one, as in an FAQ, else a placeholder), and per document two near-topic placeholders: questions
    on its subject that it does not answer. ``qa eval`` refuses the file until every placeholder is
    written."""
    rows: list[dict[str, Any]] = []
    for doc_id in sorted(index.by_document):
        document = index.documents[doc_id]
        seen: set[str] = set()
        for passage_id in index.by_document[doc_id]:
            passage = index.passages[index.positions[passage_id]]
            heading = passage.heading.split(" › ")[-1] if passage.heading else document.title
            if heading in seen or not passage.sentences:
                continue
            seen.add(heading)
            first = passage.sentences[0]
            question = heading if heading.endswith("?") else PLACEHOLDER.format(f"that “{heading}” answers")
            evidence = document.text[first.start : first.end]
            rows.append(
                {"question": question, "answerable": True, "kind": "answerable", "evidence": [evidence]}
            )
        for _ in range(2):
            about = PLACEHOLDER.format(f"about “{document.title}” that it does not answer")
            rows.append({"question": about, "answerable": False, "kind": "near_topic"})
    return [{"id": f"q{n:03d}", **row} for n, row in enumerate(rows, start=1)]


def missing_evidence(index: LoadedIndex, items: list[EvalItem]) -> list[str]:
    """Ids of the answerable questions whose evidence no document of ``index`` holds verbatim: a
    question file about other documents than these has some."""
    texts = [d.text for d in index.documents.values()]
    return [i.id for i in items if i.answerable and not any(evidence_in(t, i.evidence) for t in texts)]


def ask_all(engine: Engine, items: list[EvalItem], depth: int = 10) -> list[Outcome]:
    """Ask every question uncached, through the same path as /ask, after checking that each
    answerable question's evidence is in the corpus verbatim."""
    missing = missing_evidence(engine.index, items)
    if missing:
        raise QAError(f"evidence not found verbatim in the corpus for: {', '.join(missing)}")
    outcomes = []
    for item in items:
        started = time.perf_counter()
        result = engine.ask(item.question, depth, use_cache=False)
        seconds = time.perf_counter() - started
        rank = next((r for r, c in enumerate(result.ranking, 1) if evidence_in(c.text, item.evidence)), None)
        outcomes.append(Outcome(item, result, rank, seconds))
    return outcomes


def run_eval(engine: Engine, items: list[EvalItem], depth: int = 10) -> dict[str, Any]:
    """Ask every question (uncached): retrieval, answer and abstention metrics, the same per kind of
    question (``by_kind``), and each question that failed, with how (``failures``)."""
    outcomes = ask_all(engine, items, depth)
    metrics = metrics_from(outcomes, sum(grounding_violations(engine.index, o.result) for o in outcomes))
    metrics["by_kind"] = {
        kind: metrics_from([o for o in outcomes if o.item.kind == kind])
        for kind in KINDS
        if any(o.item.kind == kind for o in outcomes)
    }
    metrics["failures"] = [
        {"id": o.item.id, "kind": o.item.kind, "question": o.item.question, "failure": o.failure}
        for o in outcomes
        if o.failure
    ]
    return metrics


def metrics_from(outcomes: list[Outcome], violations: int = 0) -> dict[str, Any]:
    """The figures of a set of questions. Every answer figure counts a refusal as a miss: ``hit@1``
    is "answered, and the first citation holds the evidence". ``retrieval_hit@1`` and MRR look at the
    ranking alone, answered or not."""
    answerable = [o for o in outcomes if o.item.answerable]
    unanswerable = [o for o in outcomes if not o.item.answerable]
    n = max(len(answerable), 1)
    by_kind: dict[str, list[bool]] = {}
    for o in unanswerable:
        by_kind.setdefault(o.item.kind, []).append(not o.result.answered)
    ms = np.array([o.seconds for o in outcomes]) * 1000 if outcomes else np.zeros(1)
    retrieval = rank_metrics([o.rank for o in answerable])
    right = sum(o.right for o in answerable) / n
    return {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "hit@1": round(right, 4),
        "hit@3": round(
            sum(o.result.answered and o.rank is not None and o.rank <= 3 for o in answerable) / n, 4
        ),
        "answer_sentence_hit": round(sum(sentence_hit(o.result, o.item.evidence) for o in answerable) / n, 4),
        "answered_rate": round(sum(o.result.answered for o in answerable) / n, 4),
        "correct_answered": round(right, 4),  # the same as hit@1, under its earlier name
        "retrieval_hit@1": round(retrieval["hit@1"], 4),
        "retrieval_hit@3": round(retrieval["hit@3"], 4),
        "mrr": round(retrieval["mrr"], 4),
        "abstention_rate": round(
            sum(not o.result.answered for o in unanswerable) / max(len(unanswerable), 1), 4
        ),
        "abstention_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
        "grounding_violations": violations,
        "latency_ms_p50": round(float(np.percentile(ms, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(ms, 95)), 2),
    }


def evaluate_files(engine: Engine, paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Each question file by itself, by file name."""
    return {path.name: run_eval(engine, load_eval_set(path)) for path in paths}


LEGEND = """\
hit@1     answered, and the first cited passage holds the evidence (a refusal counts as a miss)
hit@3     answered, and one of the first three cited passages holds it
answered  share of answerable questions answered
sentence  answered, and the answer span holds the evidence (or is part of it)
ranked@1  the first passage of the ranking holds the evidence, answered or not (retrieval alone)
refused   share of unanswerable questions refused (near_topic: about the subject, not answered by
          the documents; off_topic: about something else)"""


def format_report(report: dict[str, dict[str, Any]], failures: bool = False) -> str:
    """One row per file and one per kind of question; the failures of each file on request."""
    header = f"{'set / kind':<34}{'n':>5}{'hit@1':>8}{'hit@3':>8}{'answered':>10}{'sentence':>10}{'ranked@1':>10}{'refused':>9}"
    lines = [header]
    for name, m in report.items():
        lines.append(_row(name, m))
        for kind, km in m["by_kind"].items():
            lines.append(_row("  " + kind, km))
        lines.append(
            f"{'':<34}grounding violations {m['grounding_violations']}, "
            f"latency p50 {m['latency_ms_p50']:.1f} ms, p95 {m['latency_ms_p95']:.1f} ms"
        )
    lines += ["", LEGEND]
    if failures:
        for name, m in report.items():
            lines += ["", f"failures in {name} ({len(m['failures'])}):"]
            lines += [
                f"  {f['id']} [{f['kind']}] {f['question']}\n      {f['failure']}" for f in m["failures"]
            ]
    return "\n".join(lines)


def _row(label: str, m: dict[str, Any]) -> str:
    def cell(value: float | None, width: int) -> str:
        return f"{value:>{width}.3f}" if value is not None else f"{'–':>{width}}"

    asked = m["answerable"] > 0
    return (
        f"{label:<34}{m['questions']:>5}"
        + cell(m["hit@1"] if asked else None, 8)
        + cell(m["hit@3"] if asked else None, 8)
        + cell(m["answered_rate"] if asked else None, 10)
        + cell(m["answer_sentence_hit"] if asked else None, 10)
        + cell(m["retrieval_hit@1"] if asked else None, 10)
        + cell(m["abstention_rate"] if m["unanswerable"] else None, 9)
    )
