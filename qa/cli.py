"""Command line: qa index | ask | serve | eval | calibrate | bench."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from qa.config import Settings
from qa.errors import CorpusError, QAError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Cited, extractive answers from a folder of documents.",
)

CorpusOpt = Annotated[Path | None, typer.Option("--corpus", help="Corpus folder (env QA_CORPUS_DIR).")]
IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index folder (env QA_INDEX_DIR).")]


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import version

        typer.echo(f"qa {version('qa')}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Cited, extractive answers from a folder of documents."""


def settings_from(corpus: Path | None, index: Path | None, **extra: object) -> Settings:
    overrides: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if corpus is not None:
        overrides["corpus_dir"] = corpus
    if index is not None:
        overrides["index_dir"] = index
    return Settings(**overrides)  # type: ignore[arg-type]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_engine(settings: Settings):
    """The engine a command asks with: the index looked for first (a mistyped --index is said at
    once, before the model is loaded), then the model and the index."""
    from qa.encoder import encoder_from
    from qa.engine import Engine, one_blas_thread
    from qa.store import IndexFolder

    one_blas_thread()  # this process answers questions
    IndexFolder(settings.index_dir).read_manifest()
    engine = Engine(settings, encoder_from(settings))
    engine.load()
    return engine


@app.command()
def index(
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only check: exit 1 with a reason when stale or missing.")
    ] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another build's lock.")] = 0.0,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Index the other files when one cannot be read; list it and why."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the build report as JSON.")] = False,
    shards: Annotated[
        int | None,
        typer.Option(
            min=1, max=256, help="Split the index into this many shards (env QA_SHARDS; default: as now)."
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray", metavar="ADDRESS", help="Split and embed on this Ray cluster ('auto': the local one)."
        ),
    ] = None,
    actors: Annotated[int, typer.Option(min=1, help="Embedding actors on the Ray cluster.")] = 1,
) -> None:
    """Build or update the index (only changed documents are re-embedded)."""
    settings = settings_from(corpus, index_dir, shards=shards)
    try:
        if check:
            from qa.store import check as check_index

            reason = check_index(settings)
            if reason:
                raise fail(f"index is not current: {reason}")
            typer.echo("index is current")
            return
        from qa.builder import build_index
        from qa.encoder import encoder_from

        encoder = encoder_from(settings)
        stages = None
        if ray is not None:
            from qa.cluster import connect
            from qa.cluster.data import RayStages

            connect(ray)
            stages = RayStages(settings, encoder.dim, actors=actors)
        report = build_index(
            settings,
            encoder,
            progress=sys.stderr.isatty(),
            lock_timeout=wait,
            skip_invalid=skip_invalid,
            stages=stages,
        )
    except QAError as error:
        one_file = isinstance(error, CorpusError) and Path(error.path) != settings.corpus_dir
        hint = "; `qa index --skip-invalid` indexes the other files" if one_file else ""
        raise fail(f"{error}{hint}") from None
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(report), indent=2, ensure_ascii=False))
        return
    for line in report.lines():
        typer.echo(line)


@app.command()
def ask(
    question: str,
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=20, help="Citations to return.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the /ask response body.")] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show scores, thresholds and the decision.")
    ] = False,
    doc: Annotated[
        list[str] | None,
        typer.Option("--doc", metavar="DOC_ID", help="Ask within this document (repeat)."),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            metavar="FIELD=VALUE",
            help="Ask within documents whose FIELD (title, source, published, format, path or any "
            "front-matter field) equals VALUE (case-blind); FIELD=A|B: any of them; FIELD>=VALUE, "
            "FIELD<=VALUE: a range (repeat).",
        ),
    ] = None,
) -> None:
    """Answer one question from the index (or from part of it: --doc, --where)."""
    from pydantic import ValidationError

    from qa.api.schemas import AskFilter, AskRequest
    from qa.readers.base import FIELD_NAME

    settings = settings_from(corpus, index_dir)
    conditions: dict[str, dict[str, object]] = {}
    for condition in where or []:
        match = re.fullmatch(r"\s*([^=<>\s]+)\s*(>=|<=|=)(.*)", condition)
        if match is None:
            raise fail(
                "--where takes FIELD=VALUE, FIELD=A|B (any of), FIELD>=VALUE or FIELD<=VALUE, as in "
                f"--where format=pdf: got {condition!r}",
                2,
            )
        name, sign, value = match.groups()
        if not FIELD_NAME.match(name):
            raise fail(f"--where: {name!r} is not a field name (letters, digits, '_', '.' and '-')", 2)
        wanted = conditions.setdefault(name, {})
        if sign == "=":
            wanted["in"] = value.split("|")
        else:
            wanted["gte" if sign == ">=" else "lte"] = value
    try:  # the same checks as POST /ask
        scope = AskFilter.model_validate({"doc_ids": doc, "metadata": conditions})
        AskRequest(question=question, top_k=top_k, explain=explain, filter=scope)
    except ValidationError as error:
        problem = error.errors()[0]
        where_ = {"question": "the question", "top_k": "--top-k", "filter": "--doc or --where"}
        option = where_.get(str(problem["loc"][0]), "--doc") if problem["loc"] else "the question"
        raise fail(f"{option}: {problem['msg'].removeprefix('Value error, ')}", 2) from None
    try:
        result = load_engine(settings).ask(question, top_k, explain=explain, scope=scope.scope())
    except QAError as error:
        raise fail(str(error)) from None
    if as_json:
        typer.echo(json.dumps(result.to_json(explain=explain), ensure_ascii=False, indent=2))
        return
    if result.answered and result.answer:
        typer.echo(result.answer.text)
        typer.echo("")
        for c in result.citations:
            typer.echo(f"[{c.rank}] {c.title} ({c.passage_id}, {c.start}-{c.end}, score {c.score:.3f})")
    else:
        typer.echo(f"No answer: {result.reason}")
    if explain and result.explain:
        _print_explanation(result.explain)


def _print_explanation(explain: dict) -> None:
    from qa.pipeline.fusion import SIGNALS

    names = [s.name for s in SIGNALS]
    typer.echo(
        f"\ncandidates (rank, passage, {', '.join(names)}, fused, score, coverage; [retriever ranks]):"
    )
    for c in explain["candidates"]:
        values = " ".join("-" if c[n] is None else f"{c[n]:.3f}" for n in names)
        typer.echo(
            f"  {c['rank']:>2} {c['passage_id']:<40} {values} {c['fused']:.3f} {c['score']:.3f} "
            f"{c['coverage']:.2f} [dense {c['dense_rank']}, bm25 {c['bm25_rank']}]"
        )
    typer.echo("sentences of the best passage (start-end, similarity, coverage, score):")
    for s in explain["sentences"]:
        typer.echo(f"  {s['start']}-{s['end']} {s['similarity']:.3f} {s['coverage']:.2f} {s['score']:.3f}")
    t = explain["thresholds"]
    typer.echo(
        f"thresholds ({t['source']}): similarity >= {t['similarity']:.3f}, coverage >= {t['coverage']:.2f}"
    )
    typer.echo(
        f"question terms: {', '.join(explain['question_terms'])}; unknown: {', '.join(explain['unknown_terms']) or '-'}"
    )
    typer.echo(f"decision: {explain['decision']}")


@app.command()
def serve(
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (env QA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env QA_PORT).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Server processes; one per core serves the most (env QA_WORKERS)."),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Reindex and reload when the corpus changes.")
    ] = False,
    access_log: Annotated[bool, typer.Option(help="One JSON line per request on stderr.")] = True,
    ray: Annotated[
        str | None,
        typer.Option("--ray", metavar="ADDRESS", help="Serve on this Ray cluster with Ray Serve ('auto')."),
    ] = None,
    shards: Annotated[
        int | None, typer.Option(min=1, max=256, help="With --ray: shards (default: the index's).")
    ] = None,
    replicas: Annotated[
        int, typer.Option(min=1, help="With --ray: router replicas, each with its own shards.")
    ] = 1,
    replica_cpus: Annotated[
        float, typer.Option(min=0, help="With --ray: CPUs reserved for each router replica and shard.")
    ] = 0.5,
    http: Annotated[
        str,
        typer.Option(
            "--http",
            metavar="auto|proxy|replicas",
            help="With --ray: HTTP through Serve's proxy on the head node, or answered by each replica "
            "itself on the port of its node (faster: one node, or nodes behind a load balancer); auto: "
            "the replicas on a one-node cluster.",
        ),
    ] = "auto",
) -> None:
    """Serve the HTTP API and the web page."""
    from qa.api import serve as serving

    settings = settings_from(corpus, index_dir, host=host, port=port, workers=workers, access_log=access_log)
    if http not in ("auto", "proxy", "replicas"):
        raise fail(f"--http is auto, proxy or replicas, not {http!r}", 2)
    if ray is None and http != "auto":
        raise fail("--http applies to Ray Serve: add --ray ADDRESS", 2)
    if ray is not None and (watch or settings.workers > 1):
        raise fail("--ray serves with Ray Serve replicas (--replicas): --watch and --workers do not apply", 2)
    if settings.workers > 1 and watch:
        raise fail("--watch needs a single worker: run `qa serve --watch --workers 1`", 2)
    try:
        if ray is not None:
            serving.serve_on_ray(settings, ray, shards, replicas, replica_cpus, http)
        elif settings.workers > 1:
            serving.serve_workers(settings)
        else:
            serving.serve_one(settings, watch)
    except QAError as error:
        raise fail(str(error)) from None


@app.command("eval")
def evaluate(
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    eval_sets: Annotated[
        list[Path] | None,
        typer.Option(
            "--set",
            help="Question file (JSONL); repeat for several. Default: every file in tests/eval/ (env QA_EVAL_DIR).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
    failures: Annotated[
        bool, typer.Option("--failures", help="List each question that failed, and how.")
    ] = False,
    ablation: Annotated[
        bool, typer.Option("--ablation", help="Also rebuild variants and show what each part adds.")
    ] = False,
    starter: Annotated[
        Path | None,
        typer.Option(
            "--starter",
            metavar="FILE",
            help="Write a question file to complete for the indexed documents, and ask nothing.",
        ),
    ] = None,
) -> None:
    """Ask every question of each file through the same path as /ask; print one row per file and
    per kind of question (answerable, near-topic, off-topic)."""
    from qa.evaluation.evaluate import evaluate_files, format_report, load_eval_set

    settings = settings_from(corpus, index_dir)
    if starter is not None:
        _write_starter(settings, starter)
        return
    paths = eval_sets or sorted(settings.eval_dir.glob("*.jsonl"))
    if not paths:
        raise fail(_no_question_file(settings))
    try:
        engine = load_engine(settings)
        report = evaluate_files(engine, paths)
        if ablation:
            from qa.evaluation.ablation import format_table, run_ablation

            table = run_ablation(settings, engine.encoder, load_eval_set(paths[0]))
            report[paths[0].name]["ablation"] = {name: row for name, row in table}
            if not as_json:
                typer.echo(format_table(table) + "\n")
    except QAError as error:
        raise fail(str(error)) from None
    index = engine.index
    used = {
        "index": str(settings.index_dir),
        "fingerprint": index.fingerprint,
        "built_at": index.manifest.built_at,
        "corpus": str(settings.corpus_dir),
        "documents": len(index.documents),
        "passages": len(index.passages),
    }
    if as_json:  # one file: its metrics at the top level; several: by file name
        body = next(iter(report.values())) if len(report) == 1 else {"sets": report}
        typer.echo(json.dumps({**body, "used": used}, indent=2, ensure_ascii=False))
    else:
        documents = f"{used['documents']} document{'s' if used['documents'] != 1 else ''}"
        typer.echo(
            f"the index in {used['index']}/ ({index.fingerprint[:12]}, built {used['built_at']}) of the "
            f"corpus in {used['corpus']}/: {documents}, {used['passages']} passages\n"
        )
        typer.echo(format_report(report, failures=failures))


def _no_question_file(settings: Settings) -> str:
    """What to do when no question file is given and the default folder holds none (``qa`` run
    outside the repository's checkout, whose tests/eval/ holds the article's)."""
    return (
        f"no question file: none given with --set, and {settings.eval_dir}/ (env QA_EVAL_DIR) holds none; "
        "`qa eval --starter FILE` writes one to complete for your documents (docs/evaluation.md, "
        '"A question file for your documents")'
    )


def _write_starter(settings: Settings, path: Path) -> None:
    from qa.evaluation.evaluate import starter_questions
    from qa.store import load_index

    if path.exists():
        raise fail(f"{path} exists already: name a new file", 2)
    try:
        rows = starter_questions(load_index(settings.index_dir))
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    except OSError as error:
        raise fail(f"cannot write {path}: {error.strerror}") from None
    except QAError as error:
        raise fail(str(error)) from None
    placeholders = sum(r["question"].startswith("<") for r in rows)
    typer.echo(
        f"wrote {len(rows)} questions to {path}: replace the {placeholders} placeholders with questions in "
        f"your own words (and check each evidence), then `qa calibrate --set {path}`"
    )


@app.command()
def calibrate(
    corpus: CorpusOpt = None,
    index_dir: IndexOpt = None,
    eval_sets: Annotated[
        list[Path] | None,
        typer.Option("--set", help="Labelled file to fit on (JSONL), one source each; repeat for several."),
    ] = None,
    validate: Annotated[
        list[Path] | None,
        typer.Option("--validate", help="Labelled file reported at the fitted thresholds, never fitted on."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report only; do not store the thresholds.")
    ] = False,
    squad_v1: Annotated[
        Path | None,
        typer.Option(
            help="SQuAD v1.1 dev: the reader rule is fitted on its training-side articles too, asked "
            "whole and with the answer sentences removed (qa bench removed --articles train)."
        ),
    ] = None,
    squad_v2: Annotated[
        Path | None,
        typer.Option(
            help="SQuAD v2.0 dev (default: squad-v2.0-dev/dev-v2.0.json.gz beside the v1.1 folder)."
        ),
    ] = None,
    default_out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the reader rule here (qa/models/reader/rule.json ships it as the default)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print the fit as JSON (its report under "table").')
    ] = False,
) -> None:
    """Fit the answer rule, cross-validated across the files (each reported with the rule fitted on
    the others), and store the fit on all of them in the index manifest. With the reader loaded, the
    reader rule is fitted as well (on SQuAD's training side too with --squad-v1)."""
    from qa.evaluation.calibrate import (
        FIT_SETS,
        VALIDATION_SETS,
        fit,
        format_report,
        not_storable,
    )
    from qa.evaluation.evaluate import load_eval_set
    from qa.store import IndexFolder

    settings = settings_from(corpus, index_dir)
    sources = eval_sets or [p for p in (settings.eval_dir / name for name in FIT_SETS) if p.exists()]
    if not sources:
        raise fail(_no_question_file(settings))
    if validate is None:
        validate = [p for p in (settings.eval_dir / name for name in VALIDATION_SETS) if p.exists()]
    try:
        engine = load_engine(settings)
        observed = {}
        if squad_v1 is not None:
            if checkout() is None:
                raise fail("--squad-v1 runs from a source checkout of the repository (its bench/ folder)")
            from bench.removed import run_removed, squad_v2_beside
            from qa.evaluation.calibrate import removed_observations

            typer.echo(
                "asking SQuAD's training-side articles, whole and with the answers removed ...", err=as_json
            )
            report = run_removed(
                squad_v1, squad_v2 or squad_v2_beside(squad_v1), articles="train", settings=settings
            )
            observed["squad-train"] = removed_observations(report["rows"])
        calibration = fit(
            engine,
            {path.name: load_eval_set(path) for path in sources},
            {path.name: load_eval_set(path) for path in validate},
            observed,
        )
        text = format_report(calibration)
        typer.echo(json.dumps({**calibration, "table": text}, indent=2) if as_json else text)
        why_not = not_storable(calibration)
        if why_not is not None and not dry_run:
            raise fail(
                f"not stored: {why_not}. Add questions of both kinds (docs/evaluation.md, "
                '"A question file for your documents"), or see the fit with --dry-run'
            )
        if default_out is not None and "reader_rule" in calibration:
            read = calibration["reader_rule"]
            shipped = {"reader": read["threshold"], "judges": read["judges"], "overrule": read["overrule"]}
            for name, keys in (("confidence", ()), ("relevance", ("floor",))):
                if name in calibration:
                    stored = calibration[name]
                    shipped[name] = {k: stored[k] for k in ("inputs", "weights", "intercept", *keys)}
            default_out.write_text(json.dumps(shipped, indent=2) + "\n", encoding="utf-8")
            typer.echo(f"reader rule written to {default_out}", err=as_json)
        if not dry_run:
            IndexFolder(settings.index_dir).save_calibration(calibration)
            typer.echo(f"stored in {settings.index_dir / 'current' / 'manifest.json'}", err=as_json)
    except QAError as error:
        raise fail(str(error)) from None


def _bench_app() -> typer.Typer:
    """``qa bench``: the benchmarks live beside the package, in the source checkout's
    ``bench/`` (the service never imports them); an installation without it says so."""
    if checkout() is not None:
        from bench.cli import app as benchmarks

        return benchmarks
    missing = typer.Typer(rich_markup_mode=None, help="Benchmarks (in a source checkout of the repository).")

    @missing.callback(invoke_without_command=True)
    def _missing() -> None:
        raise fail("`qa bench` runs from a source checkout of the repository (its bench/ folder)")

    return missing


def checkout() -> Path | None:
    """The source checkout this package was installed from (editable), with its ``bench/``
    and ``tools/`` made importable; None for an installation without them."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "__init__.py").is_file():
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


app.add_typer(_bench_app(), name="bench")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
