"""HTTP API: ``create_app(settings)`` loads the encoder and the index once, then serves the routers
of ``qa/api/routes/`` (ask, documents, health, admin, web) with the dependencies of ``deps.py``."""

from qa.api.app import create_app, worker_app

__all__ = ["create_app", "worker_app"]
