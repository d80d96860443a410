"""Search on Ray Serve: the service's FastAPI app as a Serve deployment (the router), each of its
replicas with one Ray actor per shard of the index; the router's engine fans each question out to
its shards and merges their pools (qa/shards.py).

Why actors and not a deployment per shard: a question calls every shard, and a plain actor call
takes 1.1 ms here against 4.9 ms through a Serve handle (whose router first picks a replica); the
shards need none of Serve's routing, since a router replica always asks all of its own. Each router
replica starts its shards (same CPUs each) and owns them: they live and die with it, Serve's health
checks and restarts of the router cover them, and Ray restarts a shard that dies on its own (it
loads its build again on the next question). R replicas hold R copies of each shard, as R replicas
of shard deployments did.

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

import ray
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
# Searches a shard actor runs at once, in threads (FAISS and NumPy release the GIL for their work).
SHARD_CONCURRENCY = 8


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
    """The engine's fan-out to its shard actors (qa/shards.py's ``Fanout``)."""

    loads_shards = False  # the router holds the catalog; the vectors stay in the shards

    def __init__(self, actors: list[Any]) -> None:
        self.actors = actors

    def prepare(self, index: LoadedIndex) -> None:
        if len(self.actors) != index.shard_count:
            raise IndexMismatch(
                f"the index has {index.shard_count} shard(s) and this service runs {len(self.actors)}: "
                f"rebuild with `qa index --shards {len(self.actors)}` or restart `qa serve --ray`"
            )
        for actor in self.actors:  # shard by shard: each keeps serving the previous build meanwhile
            ray.get(actor.prepare.remote(str(index.path), index.fingerprint))

    def __call__(
        self, index: LoadedIndex, query: Query, candidates: int, retrievers: set[str], scope: Scope | None
    ) -> list[ShardPool]:
        sent = replace(query, words=[])  # the retrievers read its vector and terms, not its words' vectors
        return ray.get(
            [
                a.search.remote(str(index.path), index.fingerprint, sent, candidates, retrievers, scope)
                for a in self.actors
            ]
        )


def start_shards(shards: int, index_dir: str, cpus: float) -> list[Any]:
    """One actor per shard, owned by the calling router replica. Ray restarts one that dies (a
    search is safe to retry: it only reads)."""
    actor = ray.remote(Shard).options(
        num_cpus=cpus,
        max_restarts=-1,
        max_task_retries=2,
        max_concurrency=SHARD_CONCURRENCY,
    )
    return [actor.remote(i, index_dir) for i in range(shards)]


HTTP_MODES = ("proxy", "replicas")  # and "auto" for ``run``: the replicas on one node


class Router:
    """The ingress: the service's app, its engine searching its shard actors. Requests come through
    Serve's HTTP proxy (``http="proxy"``), or each replica answers HTTP itself on the service's
    port (``"replicas"``: uvicorn in a thread of the replica, the port shared by the replicas of a
    node; Serve still places, checks and restarts them). The second skips the proxy's hop and
    Serve's request path inside the replica (docs/scaling.md has the figures)."""

    async def __init__(  # type: ignore[misc]  # Serve awaits it
        self, settings_json: str, shards: int, shard_cpus: float, http: str = "proxy"
    ) -> None:
        import asyncio

        from qa.encoder import serving_encoder
        from qa.engine import Engine, one_blas_thread
        from qa.errors import IndexMissing

        one_blas_thread()  # this replica answers questions

        self.settings = Settings.model_validate_json(settings_json)
        actors = start_shards(shards, str(self.settings.index_dir), shard_cpus)
        self.engine = Engine(self.settings, serving_encoder(self.settings), fanout=RayShards(actors))
        try:  # off the replica's event loop: loading waits for the shards to load the build
            await asyncio.to_thread(self.engine.load)
        except IndexMissing as error:
            log.warning("%s; serving 503 until it is built", error)
        self.http: Any = None
        if http == "replicas":
            from qa.api.serve import ThreadServer

            self.http = ThreadServer(self.__serve_build_asgi_app__(), self.settings)

    def __serve_build_asgi_app__(self) -> Any:
        from qa.api import create_app

        return create_app(self.settings, engine=self.engine, follow=True)

    def check_health(self) -> None:
        """Serve's health check: a replica whose HTTP server stopped is replaced."""
        if self.http is not None and not self.http.alive:
            raise RuntimeError("the replica's HTTP server stopped")

    def __del__(self) -> None:  # Serve calls it when it stops the replica
        if getattr(self, "http", None) is not None:
            self.http.stop()


def application(
    settings: Settings, shards: int, replicas: int, replica_cpus: float, http: str = "proxy"
) -> Any:
    """The Serve application: ``replicas`` replicas of the router, each with its ``shards`` shard
    actors; every one of them reserves ``replica_cpus``. ``http``: see ``Router``."""
    if http not in HTTP_MODES:
        raise QAError(f"HTTP is served by the proxy or the replicas, not {http!r}")
    router = serve.deployment(
        name="router",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": replica_cpus},
        max_ongoing_requests=ROUTER_ONGOING_REQUESTS,
    )(serve.ingress()(Router) if http == "proxy" else Router)
    return router.bind(settings.model_dump_json(), shards, replica_cpus, http)


def app_builder(args: dict[str, str]) -> Any:
    """For Serve's config files (``import_path: qa.cluster.serve:app_builder``, a KubeRay
    RayService: deploy/): settings from the environment (``QA_INDEX_DIR`` on a volume every node
    mounts), ``args`` ``shards`` (default: the index's count), ``replicas``, ``replica_cpus``,
    ``http`` (default: "proxy")."""
    from qa.store import IndexFolder

    settings = Settings()
    shards = int(args.get("shards") or IndexFolder(settings.index_dir).read_manifest().shards)
    return application(
        settings,
        shards,
        int(args.get("replicas", 1)),
        float(args.get("replica_cpus", 1)),
        args.get("http", "proxy"),
    )


def http_mode(http: str) -> str:
    """``"auto"``: the replicas answer HTTP on a cluster of one node (nothing for the proxy to
    route between nodes), the proxy on the head node otherwise."""
    if http != "auto":
        return http
    return "replicas" if sum(1 for node in ray.nodes() if node.get("Alive")) == 1 else "proxy"


def run(settings: Settings, shards: int, replicas: int, replica_cpus: float, http: str = "auto") -> str:
    """Deploy on the connected cluster, HTTP on ``settings.host:port`` from the head node (by the
    proxy) or from every node that runs a replica (by the replicas); a deployment that fails to
    start is a QAError with Serve's reason (and nothing left running). Returns the HTTP mode."""
    http = http_mode(http)
    needed = replica_cpus * replicas * (shards + 1)
    available = float(ray.cluster_resources().get("CPU", 0))
    if needed > available + 1e-9:  # Serve would wait for them for ever
        raise QAError(
            f"{replicas} replica(s) of {shards} shard(s) and the router at {replica_cpus} CPU each need "
            f"{needed:g} CPUs; the cluster has {available:g}: lower --replica-cpus or --replicas"
        )
    location = "HeadOnly" if http == "proxy" else "NoServer"
    serve.start(http_options={"host": settings.host, "port": settings.port, "location": location})
    try:
        serve.run(
            application(settings, shards, replicas, replica_cpus, http),
            name="qa",
            route_prefix="/" if http == "proxy" else None,
            blocking=False,
        )
    except RuntimeError as error:
        serve.shutdown()
        raise QAError(f"Ray Serve could not start the service: {str(error).splitlines()[0]}") from None
    return http


def shutdown() -> None:
    serve.shutdown()
