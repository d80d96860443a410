"""What the app holds, typed: made with the app (settings, metrics, the rate limiter) and, once the
lifespan has started, what serves (the engine and its reloader, the staleness probe's memory)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI

from qa.config import Settings
from qa.engine import Engine, Reloader
from qa.middleware import Metrics, RateLimiter


@dataclass
class Serving:
    engine: Engine
    reloader: Reloader
    # /readyz's staleness check, at most once a second: (checked at, index fingerprint, reason)
    stale_cache: tuple[float, str | None, str | None] = (0.0, None, None)
    corpus_memo: dict[str, object] = field(
        default_factory=dict
    )  # per-file digests: re-read only edited files


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    limiter: RateLimiter
    serving: Serving | None = None  # set by the lifespan

    @property
    def running(self) -> Serving:
        if self.serving is None:
            raise RuntimeError("the app has not started (its lifespan sets the engine)")
        return self.serving


def state_of(app: FastAPI) -> AppState:
    return app.state.qa  # type: ignore[no-any-return]
