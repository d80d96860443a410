"""What each answerability signal of the question stage adds, on every question file.

Each variant turns one signal off (as the service was before it), refits the thresholds by
cross-validation across the fitting files, and reports the held-out figures of each fitting file
and the figures of the validation files at the thresholds fitted on all fitting files.

    python -m qa.tools.signal_ablation [--set FILE ...] [--validate FILE ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import qa.answer
import qa.engine
from qa.cli import load_engine
from qa.config import Settings
from qa.evaluation.calibrate import FIT_SETS, VALIDATION_SETS, fit
from qa.evaluation.evaluate import load_eval_set
from qa.question import Prepared
from qa.terms import Lexicon


@contextmanager
def _patched(target: object, name: str, value: object) -> Iterator[None]:
    before = vars(target)[name]  # as stored: a staticmethod stays one
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, before)


def _corpus_idf(self: Lexicon, word: str, word_vector: np.ndarray, question_vector: np.ndarray) -> float:
    """The weight before general English frequencies: IDF over the corpus' passages."""
    stem = qa.terms.stems([word])[0]
    idf = float(np.log(1.0 + (self.n_docs + 1) / (self.doc_freq.get(stem, 0) + 0.5)))
    return idf * max(0.05, float(word_vector @ question_vector))


VARIANTS: dict[str, Callable[[], object]] = {
    "the service": lambda: _patched(qa.answer, "TYPED_SHARE", qa.answer.TYPED_SHARE),
    "- question preparation (document phrases, misspellings)": lambda: _patched(
        qa.engine, "prepare", lambda question, vocabulary, known: Prepared(question, question, {})
    ),
    "- general-English word weights (corpus IDF instead)": lambda: _patched(Lexicon, "weigh", _corpus_idf),
    "- value sentence about the question (any sentence)": lambda: _patched(qa.answer, "TYPED_SHARE", 0.0),
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
    for name, patch in VARIANTS.items():
        with patch():  # type: ignore[attr-defined]
            calibration = fit(engine, sources, validation)
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
