"""Retrieval-grounded, extractive question answering over a folder of documents.

The library API (the CLI and the HTTP service are built on it)::

    from qa import Settings, build, open_index

    settings = Settings(corpus_dir="corpus", index_dir="index")
    report = build(settings)  # BuildReport: documents added, changed, removed
    engine = open_index(settings)  # Engine over the current build
    result = engine.ask("Who launched the task force?")  # Result: answer, citations or reason

Importing ``qa`` loads nothing heavy: each name is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa.builder import BuildReport
    from qa.config import Settings
    from qa.engine import Engine
    from qa.pipeline.result import Citation, Result, Span
    from qa.pipeline.scope import Scope

__version__ = "0.1.0"
__all__ = [
    "BuildReport",
    "Citation",
    "Engine",
    "Result",
    "Scope",
    "Settings",
    "Span",
    "build",
    "delete_document",
    "open_index",
    "put_document",
]

_HOMES = {
    "BuildReport": "qa.builder",
    "Citation": "qa.pipeline.result",
    "Engine": "qa.engine",
    "Result": "qa.pipeline.result",
    "Scope": "qa.pipeline.scope",
    "Settings": "qa.config",
    "Span": "qa.pipeline.result",
    "put_document": "qa.builder",  # add or replace a document, then build (PUT /admin/documents/{id})
    "delete_document": "qa.builder",  # remove a document, then build (DELETE /admin/documents/{id})
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")


def build(settings: Settings | None = None, *, skip_invalid: bool = False) -> BuildReport:
    """Build or update the index of ``settings.corpus_dir`` in ``settings.index_dir`` (as `qa index`)."""
    from qa.builder import build_index
    from qa.config import Settings
    from qa.encoder import encoder_from

    settings = settings or Settings()
    return build_index(settings, encoder_from(settings), skip_invalid=skip_invalid)


def open_index(settings: Settings | None = None) -> Engine:
    """An engine over the current build of ``settings.index_dir``, ready to ``ask`` (thread-safe)."""
    from qa.config import Settings
    from qa.encoder import encoder_from
    from qa.engine import Engine

    settings = settings or Settings()
    engine = Engine(settings, encoder_from(settings))
    engine.load()
    return engine
