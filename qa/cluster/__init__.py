"""The service on a Ray cluster (``pip install -e '.[ray]'``): builds as a Ray Data pipeline
(data.py) and search on Ray Serve, one deployment per shard (serve.py). Ray is imported only here."""

from __future__ import annotations

import logging
import socket

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
    _probe(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise QAError(f"no Ray cluster at {address}: {error}; start one with `ray start --head`") from error


def _probe(address: str) -> None:
    """Fail at once when nothing listens at the cluster's address: Ray retries a dead one for
    minutes. "auto" is resolved as Ray resolves it (RAY_ADDRESS, then the last `ray start`)."""
    if "://" in address:
        return  # ray:// (Ray Client) and other schemes: left to Ray
    try:  # Ray's own resolution (a private function: without it, leave the address to Ray)
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:
        return
    try:
        resolved = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as error:
        raise QAError(f"no Ray cluster found for {address!r}: {error}") from None
    if resolved is None:
        return
    host, _, port = resolved.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as error:
        shown = address if address == resolved else f"{address} ({resolved})"
        raise QAError(f"no Ray cluster at {shown}: {error}; start one with `ray start --head`") from None
