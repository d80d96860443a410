"""The answer's confidence: a calibrated probability that the answer is right, from the evidence
the answer rule decided on (``Logistic``, fitted by `qa calibrate`; docs/evaluation.md has its
reliability tables). The citations' relevance is the same kind of model (qa/pipeline/citations.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.pipeline.stage import Plain
from qa.store import LoadedIndex, calibration_for

if TYPE_CHECKING:
    from qa.pipeline.stage import Work
    from qa.reader import Reader

# What the confidence reads: the evidence the answer rule decides on, and the answer sentence's score.
CONFIDENCE_INPUTS = ("similarity", "coverage", "answer_score", "factoid", "reader_logit")
# What a citation's relevance reads, all already computed for the ranking: its passage's closeness
# to the question, its BM25 score over the question's best, and its ranking score. (The key-word
# coverage of each cited passage instead of BM25 cost 1.1 ms a question: qa bench profile.)
RELEVANCE_INPUTS = ("similarity", "keyword", "score")


def confidence_inputs(
    similarity: Any, coverage: Any, answer_score: Any, factoid: Any, reader: Any
) -> np.ndarray:
    """The confidence's inputs (``CONFIDENCE_INPUTS``) for one answer, or (numpy arrays) for many,
    as `qa calibrate` fits them: the reader counts as its log-odds, for fact questions only (the
    service reads the others only when asked to explain)."""
    read = np.clip(np.asarray(reader, dtype=float), 1e-3, 1 - 1e-3)
    factoid = np.asarray(factoid, dtype=float)
    logit = np.log(read / (1 - read)) * factoid
    columns = [similarity, coverage, answer_score, factoid, logit]
    return np.stack([np.asarray(c, dtype=float) for c in columns], axis=-1)


@dataclass(frozen=True)
class Logistic:
    """A probability from named inputs, fitted by `qa calibrate` (logistic regression) on questions
    whose answers are known: the answers' confidence (that an answer is right) and the citations'
    relevance (that a passage holds the answer). docs/evaluation.md has their reliability tables."""

    inputs: tuple[str, ...]
    weights: tuple[float, ...]  # one per input
    intercept: float

    def of(self, values: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(values) @ np.asarray(self.weights) + self.intercept)))

    def to_json(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "weights": list(self.weights), "intercept": self.intercept}

    @classmethod
    def from_json(cls, stored: dict[str, Any] | None, inputs: tuple[str, ...]) -> Logistic | None:
        """None for a model of other inputs (or none)."""
        if not stored or stored.get("inputs") != list(inputs):
            return None
        return cls(inputs, tuple(float(w) for w in stored["weights"]), float(stored["intercept"]))


@dataclass(frozen=True)
class Calibrated:
    """What `qa calibrate` fits beside the answer rule (None: not fitted)."""

    confidence: Logistic | None = None
    relevance: Logistic | None = None
    relevance_floor: float = 0.0  # citations less relevant than this are left out (never the answer's)


def calibrated_for(index: LoadedIndex, reader: Reader | None = None) -> Calibrated:
    """The answers' confidence and the citations' relevance: each as `qa calibrate` fitted it for
    this model (the confidence, for this reader too), else as shipped with the reader; none without
    either."""
    calibration = calibration_for(index.manifest, index.model) or {}
    shipped = reader.default_calibrated if reader is not None else Calibrated()
    confidence = shipped.confidence
    stored = calibration.get("confidence")
    if stored and stored.get("reader") == (reader.name if reader else None):
        confidence = Logistic.from_json(stored, CONFIDENCE_INPUTS)
    relevance, floor = shipped.relevance, shipped.relevance_floor
    if calibration.get("relevance"):
        relevance = Logistic.from_json(calibration["relevance"], RELEVANCE_INPUTS)
        floor = float(calibration["relevance"].get("floor", 0.0))
    return Calibrated(confidence, relevance, floor)


class Confidence(Plain):
    """The probability that the answer is right, when a confidence is fitted (its inputs are
    computed only then: no work on the request path without one)."""

    name = "confidence"

    def describe(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "about": "P(the answer is right), calibrated",
            "inputs": list(CONFIDENCE_INPUTS),
        }

    def run(self, work: Work) -> None:
        decision = work.decision
        model = None if decision is None else decision.calibrated.confidence
        if model is None or decision is None:
            return
        evidence = decision.evidence
        sentences = (work.top.sentences or []) if work.top else []
        inputs = confidence_inputs(
            evidence.similarity,
            evidence.coverage,
            max((s.score for s in sentences), default=0.0),
            evidence.factoid,
            evidence.reader if evidence.reader is not None else 0.5,  # unread: neutral
        )
        work.confidence, work.confidence_inputs = model, inputs
        if work.span is not None:
            work.span.confidence = round(float(model.of(inputs)), 4)
