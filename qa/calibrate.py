"""Fit the abstention thresholds on a labelled set and report the risk–coverage trade-off.

The service answers when the best passage's similarity and its coverage of the question's words
both reach their thresholds (and, for "how many" or "when" questions, a sentence holds such a
value); a passage holding nearly all the question's key words needs half the similarity. Fitting
searches both thresholds for the best balanced accuracy: the mean of the share of answerable
questions answered and the share of unanswerable ones refused. Many threshold pairs
tie on a small set; the centre of the tying region is taken, which moves least on new questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from qa.answer import Thresholds
from qa.engine import Engine
from qa.errors import QAError
from qa.evaluate import EvalItem, evidence_in

GRID = np.round(np.arange(0.0, 0.91, 0.01), 2)


@dataclass(frozen=True)
class Observation:
    answerable: bool
    kind: str
    similarity: float
    coverage: float
    typed: bool
    correct: bool  # the top passage holds the evidence (answerable questions)


def observe(engine: Engine, items: list[EvalItem]) -> list[Observation]:
    observations = []
    for item in items:
        result = engine.ask(item.question, 1, use_cache=False)
        s = result.signals
        correct = bool(result.ranking) and evidence_in(result.ranking[0].text, item.evidence)
        observations.append(
            Observation(item.answerable, item.kind, s["similarity"], s["coverage"], s["typed"] > 0, correct)
        )
    return observations


def _rates(obs: list[Observation], t_sim: float, t_cov: float) -> dict[str, float]:
    thresholds = Thresholds(t_sim, t_cov)
    answered = np.array([thresholds.admit(o.similarity, o.coverage, o.typed) for o in obs])
    answerable = np.array([o.answerable for o in obs])
    correct = np.array([o.correct for o in obs])
    n_answered = int(answered.sum())
    wrong = answered & (~answerable | ~correct)  # refused nothing it should have, or cited the wrong passage
    return {
        "answered_answerable": float(answered[answerable].mean()) if answerable.any() else 0.0,
        "refused_unanswerable": float((~answered[~answerable]).mean()) if (~answerable).any() else 0.0,
        "coverage": n_answered / len(obs),
        "risk": float(wrong.sum() / n_answered) if n_answered else 0.0,
    }


def fit(engine: Engine, items: list[EvalItem]) -> dict:
    """Thresholds for the engine's model, as stored in the manifest, with the trade-off table."""
    obs = observe(engine, items)
    if not any(o.answerable for o in obs) or all(o.answerable for o in obs):
        raise QAError("calibration needs both answerable and unanswerable questions")
    scores = np.zeros((len(GRID), len(GRID)))
    for i, t_sim in enumerate(GRID):
        for j, t_cov in enumerate(GRID):
            r = _rates(obs, t_sim, t_cov)
            scores[i, j] = (r["answered_answerable"] + r["refused_unanswerable"]) / 2
    best = scores.max()
    ties = np.argwhere(scores >= best - 1e-9)
    # The tying cell nearest the centroid of all ties.
    centre = ties.mean(axis=0)
    i, j = ties[np.argmin(((ties - centre) ** 2).sum(axis=1))]
    t_sim, t_cov = float(GRID[i]), float(GRID[j])
    chosen = _rates(obs, t_sim, t_cov)
    trade_off = []
    for q in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5):  # scale both thresholds around the chosen ones
        r = _rates(obs, t_sim * q, t_cov * q)
        row = {
            "scale": q,
            "similarity_threshold": round(t_sim * q, 3),
            "coverage_threshold": round(t_cov * q, 3),
        }
        trade_off.append({**row, **{k: round(v, 4) for k, v in r.items()}})
    return {
        "model": engine.index.model,
        "thresholds": {"similarity": t_sim, "coverage": t_cov},
        "balanced_accuracy": round(float(best), 4),
        "chosen": {k: round(v, 4) for k, v in chosen.items()},
        "trade_off": trade_off,
        "questions": len(obs),
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def format_report(calibration: dict) -> str:
    t = calibration["thresholds"]
    c = calibration["chosen"]
    lines = [
        f"fitted on {calibration['questions']} questions for model {calibration['model']}",
        f"thresholds: similarity >= {t['similarity']:.2f}, coverage >= {t['coverage']:.2f} "
        f"(balanced accuracy {calibration['balanced_accuracy']:.3f})",
        f"at these thresholds: answers {c['answered_answerable']:.1%} of answerable questions, refuses "
        f"{c['refused_unanswerable']:.1%} of unanswerable ones; coverage {c['coverage']:.1%}, risk {c['risk']:.1%}",
        "",
        "risk-coverage trade-off (both thresholds scaled):",
        "  scale  similarity  coverage  answered(ans)  refused(unans)  coverage  risk",
    ]
    for row in calibration["trade_off"]:
        lines.append(
            f"  {row['scale']:>5.2f}  {row['similarity_threshold']:>10.3f}  {row['coverage_threshold']:>8.3f}  "
            f"{row['answered_answerable']:>13.1%}  {row['refused_unanswerable']:>14.1%}  {row['coverage']:>8.1%}  {row['risk']:>5.1%}"
        )
    return "\n".join(lines)
