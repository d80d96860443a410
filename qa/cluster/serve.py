"""Search on Ray Serve: one deployment per shard of the index, and the service's FastAPI app as the
ingress, whose engine fans each question out to the shards and merges their pools (qa/shards.py).

Versions: every question carries the build its router serves (path and fingerprint), and a shard
answers from that build, loading it on first use and keeping the two latest. A new build is rolled
out by the router's reload (``follow``, or ``/admin/reindex``): each shard in turn loads it while
still serving the old one, then the router swaps to it, so no request fails and every answer is
from one build of every shard.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray import serve

from qa.config import Settings
from qa.errors import IndexCorrupt, IndexMismatch, QAError
from qa.pipeline.query import Query
from qa.pipeline.scope import Scope
from qa.shards import ShardPool, search_shard
from qa.store import LoadedIndex, load_shard

log = logging.getLogger("qa")
VERSIONS_KEPT = 2  # the build being served and the one rolling in (or out)
# Requests a router replica takes at once. Serve's default (5) counts a request whose body is still
# arriving, so five slow clients would hold every slot; the router only waits on the network and on
# the shards, and the app cuts a slow body at its deadline (Settings.body_timeout_seconds).
ROUTER_ONGOING_REQUESTS = 1000


class Shard:
    """One shard of the index, searched by the router."""

    def __init__(self, shard: int, index_dir: str) -> None:
        self.shard = shard
        self.index_dir = Path(index_dir)
        self.versions: OrderedDict[str, LoadedIndex] = OrderedDict()
        self._lock = threading.Lock()  # requests may run in threads

    def _version(self, build: str, fingerprint: str) -> LoadedIndex:
        """The shard of that build: loaded on first use (outside the lock, so requests for the
        build being served never wait for a new one to load), the two latest kept."""
        with self._lock:
            index = self.versions.get(fingerprint)
            if index is not None:
                self.versions.move_to_end(fingerprint)
                return index
        index = load_shard(self.index_dir, Path(build), self.shard)
        if index.fingerprint != fingerprint:
            raise IndexCorrupt(Path(build).name, f"shard {self.shard} is of build {index.fingerprint[:12]}")
        with self._lock:
            self.versions[fingerprint] = index
            while len(self.versions) > VERSIONS_KEPT:
                self.versions.popitem(last=False)
        log.info("shard %d: loaded build %s (%d passages)", self.shard, fingerprint[:12], len(index.passages))
        return index

    def prepare(self, build: str, fingerprint: str) -> int:
        return len(self._version(build, fingerprint).passages)

    def search(
        self,
        build: str,
        fingerprint: str,
        query: Query,
        candidates: int,
        retrievers: set[str],
        scope: Scope | None,
    ) -> ShardPool:
        return search_shard(self._version(build, fingerprint), query, candidates, retrievers, scope)


class RayShards:
    """The engine's fan-out to the shard deployments (qa/shards.py's ``Fanout``)."""

    loads_shards = False  # the router holds the catalog; the vectors stay in the shards

    def __init__(self, handles: list[Any]) -> None:
        self.handles = handles

    def prepare(self, index: LoadedIndex) -> None:
        if len(self.handles) != index.shard_count:
            raise IndexMismatch(
                f"the index has {index.shard_count} shard(s) and this service runs {len(self.handles)}: "
                f"rebuild with `qa index --shards {len(self.handles)}` or restart `qa serve --ray`"
            )
        for handle in self.handles:  # shard by shard: each keeps serving the previous build meanwhile
            handle.prepare.remote(str(index.path), index.fingerprint).result()

    def __call__(
        self, index: LoadedIndex, query: Query, candidates: int, retrievers: set[str], scope: Scope | None
    ) -> list[ShardPool]:
        sent = replace(query, words=[])  # the retrievers read its vector and terms, not its words' vectors
        calls = [
            h.search.remote(str(index.path), index.fingerprint, sent, candidates, retrievers, scope)
            for h in self.handles
        ]
        return [call.result() for call in calls]


class Router:
    """The ingress: the service's app, its engine searching the shard deployments."""

    async def __init__(self, settings_json: str, *shards: Any) -> None:  # type: ignore[misc]  # Serve awaits it
        import asyncio

        from qa.encoder import serving_encoder
        from qa.engine import Engine, one_blas_thread
        from qa.errors import IndexMissing

        one_blas_thread()  # this replica answers questions

        self.settings = Settings.model_validate_json(settings_json)
        self.engine = Engine(self.settings, serving_encoder(self.settings), fanout=RayShards(list(shards)))
        try:  # off the replica's event loop: loading waits for the shards to load the build
            await asyncio.to_thread(self.engine.load)
        except IndexMissing as error:
            log.warning("%s; serving 503 until it is built", error)

    def __serve_build_asgi_app__(self) -> Any:
        from qa.api import create_app

        return create_app(self.settings, engine=self.engine, follow=True)


def application(settings: Settings, shards: int, replicas: int, replica_cpus: float) -> Any:
    """The Serve application: ``shards`` shard deployments and the router, each ``replicas`` times."""
    options: dict[str, Any] = {"num_replicas": replicas, "ray_actor_options": {"num_cpus": replica_cpus}}
    shard_apps = [
        serve.deployment(name=f"shard-{i:02d}", **options)(Shard).bind(i, str(settings.index_dir))
        for i in range(shards)
    ]
    router = serve.deployment(name="router", max_ongoing_requests=ROUTER_ONGOING_REQUESTS, **options)(
        serve.ingress()(Router)
    )
    return router.bind(settings.model_dump_json(), *shard_apps)


def app_builder(args: dict[str, str]) -> Any:
    """For Serve's config files (``import_path: qa.cluster.serve:app_builder``, a KubeRay
    RayService: deploy/): settings from the environment (``QA_INDEX_DIR`` on a volume every node
    mounts), ``args`` ``shards`` (default: the index's count), ``replicas``, ``replica_cpus``."""
    from qa.store import IndexFolder

    settings = Settings()
    shards = int(args.get("shards") or IndexFolder(settings.index_dir).read_manifest().shards)
    return application(settings, shards, int(args.get("replicas", 1)), float(args.get("replica_cpus", 1)))


def run(settings: Settings, shards: int, replicas: int, replica_cpus: float) -> None:
    """Deploy on the connected cluster, HTTP on ``settings.host:port`` from the head node; a
    deployment that fails to start is a QAError with Serve's reason (and nothing left running)."""
    import ray

    needed = replica_cpus * replicas * (shards + 1)
    available = float(ray.cluster_resources().get("CPU", 0))
    if needed > available + 1e-9:  # Serve would wait for them for ever
        raise QAError(
            f"{replicas} replica(s) of {shards} shard(s) and the router at {replica_cpus} CPU each need "
            f"{needed:g} CPUs; the cluster has {available:g}: lower --replica-cpus or --replicas"
        )
    serve.start(http_options={"host": settings.host, "port": settings.port, "location": "HeadOnly"})
    try:
        serve.run(
            application(settings, shards, replicas, replica_cpus), name="qa", route_prefix="/", blocking=False
        )
    except RuntimeError as error:
        serve.shutdown()
        raise QAError(f"Ray Serve could not start the service: {str(error).splitlines()[0]}") from None


def shutdown() -> None:
    serve.shutdown()
