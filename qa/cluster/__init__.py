"""The service on a Ray cluster (``pip install -e '.[ray]'``): builds as a Ray Data pipeline
(data.py) and search on Ray Serve, one deployment per shard (serve.py). Ray is imported only here."""

from __future__ import annotations

from qa.errors import QAError


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` ("auto": the one this machine belongs to); a clear error
    when Ray is not installed or no cluster answers."""
    try:
        import ray
    except ImportError as error:
        raise QAError("Ray is not installed: `pip install -e '.[ray]'` adds it") from error
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise QAError(f"no Ray cluster at {address}: {error}; start one with `ray start --head`") from error
