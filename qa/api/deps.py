"""What routes depend on: the engine, the served index, the settings and metrics, the admin token
and the question rate limit."""

from __future__ import annotations

import hmac
import math
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from qa.api.state import state_of
from qa.config import Settings
from qa.engine import Engine
from qa.middleware import Metrics
from qa.store import LoadedIndex


def get_settings(request: Request) -> Settings:
    return state_of(request.app).settings


def get_metrics(request: Request) -> Metrics:
    return state_of(request.app).metrics


def get_engine(request: Request) -> Engine:
    return state_of(request.app).running.engine


def get_index(request: Request) -> LoadedIndex:
    return state_of(request.app).running.engine.index  # raises IndexMissing -> 503 until an index is loaded


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
EngineDep = Annotated[Engine, Depends(get_engine)]
IndexDep = Annotated[LoadedIndex, Depends(get_index)]


def require_admin(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """Admin routes: off (404) without a configured token, 401 without the right bearer token."""
    if not settings.admin_token:
        raise HTTPException(404, "Not Found")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def rate_limited(request: Request) -> None:
    """Questions per client and minute (``QA_RATE_LIMIT_PER_MINUTE``): 429 with Retry-After beyond."""
    limiter = state_of(request.app).limiter
    wait = limiter.retry_after(request.client.host if request.client else "-")
    if wait > 0:
        raise HTTPException(
            429, "too many questions; slow down", headers={"Retry-After": str(max(1, math.ceil(wait)))}
        )
