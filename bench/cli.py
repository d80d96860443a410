"""``qa bench NAME``: each benchmark's command (mounted by qa/cli.py from a source checkout). A
command's imports are inside it: ``qa --help`` loads none of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from qa.config import Settings
from qa.errors import QAError


def fail(message: str, code: int = 1) -> typer.Exit:
    """A one-line error on stderr and a non-zero exit (as every ``qa`` command fails)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Benchmarks: speed, profile, large, squad, removed, formats, shards, compact, build, ray-serve.",
)


def _print_report(run: Callable[[], dict], as_json: bool) -> None:
    """A benchmark's table, or its whole report as JSON; a one-line error on bad input."""
    try:
        report = run()
    except QAError as error:
        raise fail(str(error)) from None
    typer.echo(json.dumps(report, indent=2) if as_json else report["table"])


@app.command("squad")
def bench_squad(
    file: Annotated[Path, typer.Argument(help="SQuAD dev JSON (v1.1 or v2.0), optionally .gz.")],
    work_dir: Annotated[
        Path | None, typer.Option(help="Where to build the benchmark index (default: a temp dir).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Ask at most this many questions (0 = all).")] = 0,
    held_out: Annotated[
        bool,
        typer.Option(
            "--held-out",
            help="Ask only the questions of the v1.1 articles not in v2.0 dev (the reader never trained "
            "on them); the corpus is still every article.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """SQuAD dev as one corpus: this service against BM25-only and dense-only baselines."""
    from bench.removed import held_out_titles
    from bench.squad import run_squad

    def run() -> dict:
        only = held_out_titles(file) if held_out else None
        return run_squad(file, work_dir=work_dir, limit=limit, articles=only)

    _print_report(run, as_json)


@app.command("removed")
def bench_removed(
    file: Annotated[Path, typer.Argument(help="SQuAD v1.1 dev JSON, optionally .gz.")],
    squad_v2: Annotated[
        Path | None,
        typer.Option(
            help="SQuAD v2.0 dev JSON: its articles are the reader's training side "
            "(default: squad-v2.0-dev/dev-v2.0.json.gz beside the v1.1 folder)."
        ),
    ] = None,
    articles: Annotated[str, typer.Option(help="held-out, train or all.")] = "held-out",
    every: Annotated[int, typer.Option(min=1, help="Ask every Nth question of an article.")] = 10,
    group: Annotated[int, typer.Option(min=1, help="Questions whose answers are removed together.")] = 8,
    work_dir: Annotated[
        Path | None, typer.Option(help="Where to build the benchmark index (default: a temp dir).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """SQuAD articles as one-document corpora, asked whole and with the answer sentences removed."""
    from bench.removed import run_removed, squad_v2_beside, table

    v2 = squad_v2 or squad_v2_beside(file)

    def run() -> dict:
        report = run_removed(file, v2, articles=articles, every=every, group=group, work_dir=work_dir)
        report.pop("rows")
        report["table"] = table(report)
        return report

    _print_report(run, as_json)


@app.command("shards")
def bench_shards(
    file: Annotated[Path, typer.Argument(help="SQuAD dev JSON (v1.1 or v2.0), optionally .gz.")],
    shards: Annotated[int, typer.Option(min=2, max=256, help="Shards to compare with one index.")] = 4,
    limit: Annotated[int, typer.Option(help="Ask at most this many questions (0 = all).")] = 0,
    work_dir: Annotated[Path | None, typer.Option(help="Where to build (default: a temp dir).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Sharded search against one index over the same corpus: same top citation, same hit@1."""
    from bench.shards import run_shards

    _print_report(lambda: run_shards(file, shards=shards, limit=limit, work_dir=work_dir), as_json)


@app.command("build")
def bench_build(
    scifact: Annotated[Path, typer.Argument(help="BEIR SciFact folder (corpus.jsonl.gz).")],
    ray: Annotated[
        str | None,
        typer.Option("--ray", metavar="ADDRESS", help="Also build on this Ray cluster ('local': start one)."),
    ] = None,
    actors: Annotated[
        list[int] | None, typer.Option(help="Embedding actors on Ray (repeat: 1 and 2).")
    ] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Where to build (default: a temp dir).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Build throughput by stage and bytes per passage, in this process and on Ray."""
    from bench.build import run_build

    _print_report(lambda: run_build(scifact, ray, actors or [1, 2], work=work_dir), as_json)


@app.command("ray-serve")
def bench_ray_serve(
    scifact: Annotated[Path, typer.Argument(help="BEIR SciFact folder (corpus.jsonl.gz, queries.jsonl).")],
    shards: Annotated[
        int, typer.Option(min=1, max=256, help="Shards (one Ray actor each per router replica).")
    ] = 2,
    replicas: Annotated[
        list[int] | None, typer.Option(help="Router replicas, each with its shards (repeat).")
    ] = None,
    seconds: Annotated[float, typer.Option(help="Seconds of load per measurement.")] = 15,
    work_dir: Annotated[Path | None, typer.Option(help="Where to build (default: a temp dir).")] = None,
    http: Annotated[
        list[str] | None,
        typer.Option(metavar="proxy|replicas", help="How Ray Serve takes HTTP (repeat; default both)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Query p50 and throughput through Ray Serve against qa serve on this machine."""
    from bench.ray_serve import run_ray_serve

    _print_report(
        lambda: run_ray_serve(scifact, shards, replicas or [1, 2], seconds, work=work_dir, http=http), as_json
    )


@app.command("compact")
def bench_compact(
    file: Annotated[Path, typer.Argument(help="SQuAD dev JSON (v1.1 or v2.0), optionally .gz.")],
    cap: Annotated[list[int] | None, typer.Option(help="Word-vector caps to measure (repeat).")] = None,
    limit: Annotated[int, typer.Option(help="Ask at most this many questions (0 = all).")] = 0,
    work_dir: Annotated[Path | None, typer.Option(help="Where to build (default: a temp dir).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What compact sentence vectors and capped word vectors cost in answers, and save in bytes."""
    from bench.compact import run_compact

    _print_report(lambda: run_compact(file, cap or [5000], limit=limit, work_dir=work_dir), as_json)


@app.command("formats")
def bench_formats(
    file: Annotated[Path, typer.Argument(help="SQuAD dev JSON (v1.1 or v2.0), optionally .gz.")],
    share: Annotated[int, typer.Option(min=1, help="Take every Nth article.")] = 10,
    work_dir: Annotated[
        Path | None, typer.Option(help="Where to write the corpora and indexes (default: a temp dir).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Format parity: the same articles as Markdown, HTML, Word and PDF, asked the same questions."""
    from bench.formats import run_formats

    _print_report(lambda: run_formats(file, share=share, work_dir=work_dir), as_json)


@app.command("speed")
def bench_speed(
    questions: Annotated[
        Path | None,
        typer.Option(help="Question file asked (default: questions.jsonl in tests/eval/ (env QA_EVAL_DIR))."),
    ] = None,
    soak: Annotated[float, typer.Option(help="Run only the soak test, for this many seconds.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Also write the figures to this file (JSON).")
    ] = None,
) -> None:
    """Speed over HTTP against an in-process floor measured in the same run; or a soak test."""
    from bench.speed import run

    settings = Settings()
    try:
        typer.echo(run(settings, questions or settings.eval_dir / "questions.jsonl", soak, out))
    except QAError as error:
        raise fail(str(error)) from None


@app.command("profile")
def bench_profile(
    questions: Annotated[
        Path | None,
        typer.Option(help="Question file asked (default: questions.jsonl in tests/eval/ (env QA_EVAL_DIR))."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Where an uncached question's time goes, stage by stage (cProfile over the engine), and the
    models' own times."""
    from bench.profile import questions_from, run_profile, table

    settings = Settings()

    def run() -> dict:
        report = run_profile(
            _engine(settings), questions_from(questions or settings.eval_dir / "questions.jsonl")
        )
        report["table"] = table(report)
        return report

    _print_report(run, as_json)


@app.command("large")
def bench_large(
    scifact: Annotated[Path, typer.Argument(help="BEIR SciFact folder (corpus.jsonl.gz, queries.jsonl).")],
    copies: Annotated[
        int, typer.Option(help="Copies of SciFact in the corpus (14: over 100,000 passages).")
    ] = 14,
    work_dir: Annotated[
        Path | None, typer.Option(help="Keep the corpus and index here (default: a temp dir).")
    ] = None,
) -> None:
    """Build time, size on disk, server memory and latency at 100,000+ passages."""
    from bench.large import run

    try:
        typer.echo(run(scifact, copies, work_dir))
    except QAError as error:
        raise fail(str(error)) from None


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    """The engine ``qa ask`` would answer with (imported here: qa/cli.py mounts this module)."""
    from qa.cli import load_engine

    return load_engine(settings)
