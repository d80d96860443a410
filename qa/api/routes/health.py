"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from qa.api.deps import EngineDep, MetricsDep, SettingsDep
from qa.api.schemas import Health, Problem, Ready
from qa.api.state import state_of
from qa.config import Settings
from qa.engine import Engine
from qa.pipeline.answerability import ReaderRule, rule_warnings
from qa.store import LoadedIndex, staleness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Alive")
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Ready, responses={503: {"model": Problem}}, summary="Ready, and what is served"
)
def readyz(request: Request, engine: EngineDep, settings: SettingsDep) -> Ready:
    """An index is loaded: its size, model, fingerprint, age and whether the corpus changed since."""
    return ready_report(request, engine, settings)


@router.get("/metrics", include_in_schema=False)
def metrics_route(engine: EngineDep, metrics: MetricsDep) -> Response:
    if engine.ready:
        index = engine.index
        metrics.index_info.clear()
        metrics.index_info.labels(index.fingerprint, index.model).set(1)
        metrics.index_age.set(index.age_seconds())
        metrics.index_passages.set(len(index.passages))
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def ready_report(request: Request, engine: Engine, settings: Settings) -> Ready:
    """What /readyz says (also the answer of /admin/reload)."""
    index = engine.index
    reason = _cached_staleness(request, settings, index)
    rule = engine.pipeline.answerability.rule_for(index)
    return Ready(
        status="ready",
        passages=len(index.passages),
        documents=len(index.documents),
        shards=index.shard_count,
        model=index.model,
        fingerprint=index.fingerprint,
        built_at=index.manifest.built_at,
        age_seconds=round(index.age_seconds(), 1),
        stale=reason is not None,
        stale_reason=reason,
        stale_fix=None if reason is None else _fix(settings),
        skipped=index.manifest.skipped,
        calibration=rule.source,
        reader=engine.reader.name if engine.reader else None,
        answer_rule="reader" if isinstance(rule, ReaderRule) else "thresholds",
        reader_threshold=rule.reader if isinstance(rule, ReaderRule) else None,
        reader_judges=rule.judges if isinstance(rule, ReaderRule) else None,
        reader_overrule=rule.overrule if isinstance(rule, ReaderRule) else None,
        warnings=rule_warnings(rule, engine.reader),
        last_reload_error=state_of(request.app).running.reloader.last_error,
        pipeline=engine.pipeline.describe(),
    )


def _fix(settings: Settings) -> str:
    """What brings the index up to date: this server follows the index folder, so a build beside it
    is picked up within a second. The folders are named by their settings, not their paths: the
    server's file system is not an anonymous client's business."""
    admin = " or POST /admin/reindex" if settings.admin_token else ""
    return (
        "run `qa index` on this server's corpus and index folders (QA_CORPUS_DIR, QA_INDEX_DIR)"
        f"{admin}; this server loads the new build by itself"
    )


def _cached_staleness(request: Request, settings: Settings, index: LoadedIndex) -> str | None:
    """Hashing the corpus on every probe would be wasteful: reuse the answer for two seconds."""
    serving = state_of(request.app).running
    checked_at, key, reason = serving.stale_cache
    now = time.monotonic()
    if key == index.fingerprint and now - checked_at < 2.0:
        return reason
    reason = staleness(settings, index.manifest, serving.corpus_memo)
    serving.stale_cache = (now, index.fingerprint, reason)
    return reason
