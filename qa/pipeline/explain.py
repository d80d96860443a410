"""Explain: what ``"explain": true`` (``qa ask --explain``) adds to an answer — every number the
stages decided on, and the stages themselves."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.pipeline.answerability import ReaderRule, passage_coverage
from qa.pipeline.confidence import CONFIDENCE_INPUTS
from qa.pipeline.fusion import SIGNALS

if TYPE_CHECKING:
    from qa.pipeline.stage import Work


def explanation(work: Work, stages: list[dict[str, Any]]) -> dict[str, Any]:
    """The question's way in numbers: each candidate's signals, the best passage's sentences with
    the reader's readings, the evidence and the rule, the confidence, the scope and the stages."""
    index, query, decision = work.index, work.query, work.decision
    assert decision is not None
    ranked = work.candidates[: max(work.top_k, 5)]
    sentences = (work.top.sentences or []) if work.top else []
    rule, evidence, readings = decision.rule, decision.evidence, decision.readings
    signal_names = [s.name for s in SIGNALS]
    thresholds = rule.thresholds if isinstance(rule, ReaderRule) else rule
    limits = {
        **asdict(thresholds),
        "rule": "reader" if isinstance(rule, ReaderRule) else "thresholds",
        "similarity_needed": thresholds.similarity_needed(evidence.coverage),
        "reader": rule.reader if isinstance(rule, ReaderRule) else None,
        "reader_judges": rule.judges if isinstance(rule, ReaderRule) else None,
        "reader_overrules_coverage": rule.overrule if isinstance(rule, ReaderRule) else None,
    }
    return {
        "question_terms": query.terms,
        "unknown_terms": index.lexicon.unknown(query.terms),
        "candidates": [
            {
                "rank": c.rank,
                "passage_id": index.passages[c.position].passage_id,
                **{name: (round(c.signals[name], 4) if name in c.signals else None) for name in signal_names},
                "bm25": round(c.bm25, 4),
                **{f"{name}_rank": c.retriever_ranks.get(name) for name in ("dense", "bm25")},
                "fused": round(c.fused, 4),
                "score": round(c.score, 4),
                "coverage": round(passage_coverage(index, query, c.position), 4),
            }
            for c in ranked
        ],
        "sentences": [
            {
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(s).items()},
                "reader": None if (r := readings.get((s.start, s.end))) is None else round(r.probability, 4),
            }
            for s in sentences
        ],
        "signals": {
            "similarity": round(evidence.similarity, 4),
            "coverage": round(evidence.coverage, 4),
            "typed": evidence.typed,
            "numbers_missing": list(evidence.numbers_missing),
            "asks_for_a_fact": evidence.factoid,
            "judged_by_reader": isinstance(rule, ReaderRule) and rule.judges_question(evidence.factoid),
            "reader": None if evidence.reader is None else round(evidence.reader, 4),
        },
        "thresholds": limits,
        "decision": decision.numbers,
        "answered": decision.answered,
        "confidence": _confidence(work),
        "scope": None
        if work.scope is None
        else {**work.scope.to_json(), "documents": work.scope.documents(index)},
        "stages": stages,
    }


def _confidence(work: Work) -> dict[str, Any] | None:
    model, inputs = work.confidence, work.confidence_inputs
    if model is None or inputs is None:
        return None
    return {
        "inputs": dict(zip(CONFIDENCE_INPUTS, np.round(inputs, 4).tolist())),
        "weights": dict(zip(CONFIDENCE_INPUTS, model.weights)),
        "intercept": model.intercept,
        "value": round(float(model.of(inputs)), 4),
    }
