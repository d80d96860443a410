"""What each answerability signal of the question stage adds, on every question file.

Each variant turns one signal off (as the service was before it), refits the thresholds by
cross-validation across the fitting files, and reports the held-out figures of each fitting file
and the figures of the validation files at the thresholds fitted on all fitting files.

    python -m tools.signal_ablation [--set FILE ...] [--validate FILE ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from qa.cli import load_engine
from qa.config import Settings
from qa.engine import Engine
from qa.evaluation.calibrate import FIT_SETS, VALIDATION_SETS, fit
from qa.evaluation.evaluate import load_eval_set
from qa.pipeline import Pipeline
from qa.pipeline.answerability import Answerability
from qa.pipeline.query import QueryStage

# Each variant is the service's pipeline with one stage configured otherwise (the same reader).
VARIANTS: dict[str, Callable[[Engine], Pipeline]] = {
    "the service": lambda engine: engine.pipeline,
    "- question preparation (document phrases, misspellings)": lambda engine: engine.pipeline.replaced(
        QueryStage(engine.encoder, prepare_questions=False)
    ),
    "- general-English word weights (corpus IDF instead)": lambda engine: engine.pipeline.replaced(
        QueryStage(engine.encoder, word_weights="corpus")
    ),
    "- value sentence about the question (any sentence)": lambda engine: engine.pipeline.replaced(
        Answerability(engine.settings, engine.reader, typed_share=0.0)
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, action="append", help="file to fit on (default: ours)")
    parser.add_argument("--validate", type=Path, action="append", help="file to report only")
    args = parser.parse_args(argv)
    settings = Settings()
    sources = {p.name: load_eval_set(p) for p in (args.set or [settings.eval_dir / n for n in FIT_SETS])}
    validation = {
        p.name: load_eval_set(p) for p in (args.validate or [settings.eval_dir / n for n in VALIDATION_SETS])
    }
    engine = load_engine(settings)
    print(
        "| variant | file | hit@1 | answered | refused near-topic | refused off-topic | balanced accuracy |"
    )
    print("|---|---|---|---|---|---|---|")
    service = engine.pipeline
    for name, variant in VARIANTS.items():
        engine.pipeline = variant(engine)
        try:
            calibration = fit(engine, sources, validation)
        finally:
            engine.pipeline = service
        rows = [(r["source"] + " (held out)", r) for r in calibration["cross_validation"]]
        rows += [(r["source"] + " (validation)", r) for r in calibration["validation"]]
        for label, r in rows:
            print(
                f"| {name} | {label} | {r['right']:.3f} | {r['answered_answerable']:.3f} | "
                f"{r.get('refused_near_topic', float('nan')):.3f} | {r.get('refused_off_topic', float('nan')):.3f} | "
                f"{r['balanced_accuracy']:.3f} |"
            )


if __name__ == "__main__":
    main()
