"""What each input of the answer decision adds: the reader rule refitted with one input left out,
beside the thresholds rule without the reader, reported on what it was not fitted on.

Fitted on SQuAD's training side (``qa bench removed --articles train``) and our two question files;
reported on SQuAD's held-out articles (answer present: answered and right; answer removed: refused),
on each of our files by cross-validation (fitted on the other sources), and on the validation file
(never fitted on). Questions are asked once, with the reader; each variant only refits the rule.

    python -m qa.tools.reader_ablation SQUAD_V1 [--every N] [--cache FILE]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from qa.bench.removed import run_removed, squad_v2_beside
from qa.cli import load_engine
from qa.config import Settings
from qa.evaluation.calibrate import (
    FIT_SETS,
    VALIDATION_SETS,
    Observation,
    observe,
    rates,
    removed_observations,
    search,
    search_reader_rule,
)
from qa.evaluation.evaluate import load_eval_set

VARIANTS = {
    "reader + similarity + coverage": (),
    "- reader (similarity + coverage, logistic)": ("reader",),
    "- similarity": ("similarity",),
    "- coverage": ("coverage",),
    "reader alone": ("similarity", "coverage"),
}


def collect(squad_v1: Path, every: int, settings: Settings) -> dict[str, list[Observation]]:
    engine = load_engine(settings)
    if engine.reader is None:
        raise SystemExit("the reader is not loaded (QA_READER): nothing to ablate")
    sources: dict[str, list[Observation]] = {}
    for side in ("train", "held-out"):
        report = run_removed(
            squad_v1, squad_v2_beside(squad_v1), articles=side, every=every, settings=settings
        )
        sources[f"squad-{side}"] = removed_observations(report["rows"], f"squad-{side}")
    for name in (*FIT_SETS, *VALIDATION_SETS):
        sources[name] = observe(engine, load_eval_set(settings.eval_dir / name), name)
    return sources


def _row(name: str, label: str, r: dict[str, float]) -> str:
    refused = r.get("refused_removed", r.get("refused_near_topic", float("nan")))
    return (
        f"| {name} | {label} | {r['right']:.3f} | {r['answered_answerable']:.3f} | {refused:.3f} | "
        f"{r.get('refused_off_topic', float('nan')):.3f} | {r['balanced_accuracy']:.3f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad_v1", type=Path)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--cache", type=Path, help="observations are kept here and reused")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.cache and args.cache.is_file():
        raw = json.loads(args.cache.read_text())
        sources = {k: [Observation(**o) for o in v] for k, v in raw.items()}
    else:
        sources = collect(args.squad_v1, args.every, settings)
        if args.cache:
            args.cache.write_text(json.dumps({k: [asdict(o) for o in v] for k, v in sources.items()}))
    fitting = ["squad-train", *FIT_SETS]
    print(
        "| variant | reported on | hit@1 | answered | refused removed / near-topic | refused off-topic | balanced |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, left_out in VARIANTS.items():
        for held in ["squad-held-out", *FIT_SETS, *VALIDATION_SETS]:
            training = [o for s in fitting if s != held for o in sources[s]]
            rule, _ = search_reader_rule(training, drop=left_out)
            label = held + (" (cross-validated)" if held in FIT_SETS else "")
            print(_row(name, label, rates(sources[held], rule)))
    for held in ["squad-held-out", *FIT_SETS, *VALIDATION_SETS]:
        training = [o for s in FIT_SETS if s != held for o in sources[s]]
        thresholds, _ = search(training)
        label = held + (" (cross-validated)" if held in FIT_SETS else "")
        print(_row("thresholds rule, no reader (today's service)", label, rates(sources[held], thresholds)))


if __name__ == "__main__":
    main()
