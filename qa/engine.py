"""The question-answering engine shared by the API, the CLI and the evaluation: encoder + index.

The loaded index is swapped as one reference, so every question is answered wholly by one index
version, whichever is current when the question arrives.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from cachetools import LRUCache
from threadpoolctl import threadpool_limits

from qa.config import Settings
from qa.encoder import Encoder
from qa.errors import (
    REBUILD_ADVICE,
    BuildCancelled,
    IndexCorrupt,
    IndexMissing,
    QAError,
    ServingDamaged,
)
from qa.pipeline import Pipeline
from qa.pipeline.fusion import Weights
from qa.pipeline.query import Query
from qa.pipeline.result import Result
from qa.pipeline.scope import Scope
from qa.shards import Fanout, LocalShards
from qa.store import IndexFolder, LoadedIndex, load_index

if TYPE_CHECKING:
    from qa.builder import BuildReport
    from qa.corpus import DocumentEdit, Edits
    from qa.reader import Reader

T = TypeVar("T")


def normalize_question(question: str) -> str:
    """The question the engine answers: Unicode-normalised (NFKC: full-width and compatibility
    characters as their plain forms), whitespace collapsed. The cache key is this text case-folded;
    every stage reads the question case-blind (the uncased models' tokenizers, lower-cased keywords,
    case-insensitive patterns), so questions with one key get one answer. The key must never fold
    more than the engine does: a full-width question, answered as typed, was refused and its refusal
    then served for the plain one."""
    return " ".join(unicodedata.normalize("NFKC", question).split())


log = logging.getLogger(__name__)


def one_blas_thread() -> None:
    """For a process that answers questions, called where it starts (``qa`` commands, each server
    worker, each Ray Serve replica), never by the library: a question's matrix products are small,
    and BLAS worker threads would only spin, taking the cores from the encoder and the other
    requests (a third more CPU per question, measured)."""
    threadpool_limits(limits=1, user_api="blas")


class Engine:
    """Answers questions against the current index; thread-safe."""

    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        index: LoadedIndex | None = None,
        fanout: Fanout | None = None,
        reader: Reader | None | bool = True,
        pipeline: Pipeline | None = None,
    ) -> None:
        """``reader``: True loads the one the settings name; a Reader, or None for none.
        ``pipeline``: the question's stages (qa/pipeline/), when not the default ones; its models
        are loaded here, once, before any question."""
        # How a sharded index's shards are searched: in this process, unless given (Ray Serve).
        self.fanout = fanout or LocalShards()
        self.settings = settings
        self.encoder = encoder
        self.pipeline = pipeline or Pipeline(settings, encoder, reader=reader, fanout=self.fanout)
        self.pipeline.warm_up()
        self.weights = Weights.from_settings(settings)
        self._index = index
        self._cache: LRUCache[tuple[str, int, str, Scope | None], Result] = LRUCache(
            maxsize=max(settings.cache_size, 1)
        )
        self.build_encoder = getattr(encoder, "inner", encoder)  # builds bypass the request batcher
        self._cache_lock = threading.Lock()
        self._intact: set[str] = set()  # builds found intact after an error answering from them

    @property
    def reader(self) -> Reader | None:
        return self.pipeline.reader

    @property
    def index(self) -> LoadedIndex:
        index = self._index
        if index is None:
            raise IndexMissing(self.settings.index_dir)
        return index

    @property
    def ready(self) -> bool:
        return self._index is not None

    @property
    def serving(self) -> LoadedIndex | None:
        """The index being served, or None before one is loaded."""
        return self._index

    def load(self) -> LoadedIndex:
        """Load the current build from disk and swap it in."""
        index = self.read_index()
        self.swap(index)
        return index

    def read_index(self) -> LoadedIndex:
        """The current build from disk, its shards ready to search it; not yet served."""
        index = load_index(self.settings.index_dir, self.encoder, shards=self.fanout.loads_shards)
        if index.shard_count > 1:
            self.fanout.prepare(index)
        return index

    def fall_back_if_damaged(self, index: LoadedIndex) -> bool:
        """After an unexpected error answering from ``index``: if its files are no longer as its
        build wrote them, stop serving it and serve the newest earlier build that is intact (True);
        None intact: ServingDamaged. False when the build is intact (the error is not its fault)."""
        if index.fingerprint in self._intact:
            return False
        try:
            IndexFolder(self.settings.index_dir).verify_checksums(index.manifest, index.path)
            self._intact.add(index.fingerprint)  # verified once: a recurring error costs no rereading
            return False
        except IndexCorrupt as damage:
            log.error("%s: serving an earlier build instead", damage)
        with self._cache_lock:
            if self._index is not index:  # another question fell back already
                return True
        for build in IndexFolder(self.settings.index_dir).earlier_builds():
            try:
                earlier = load_index(
                    self.settings.index_dir, self.encoder, shards=self.fanout.loads_shards, build=build
                )
                IndexFolder(self.settings.index_dir).verify_checksums(earlier.manifest, build)
            except QAError as error:
                log.warning("earlier build %s cannot be served either: %s", build.name, error)
                continue
            if earlier.shard_count > 1:
                self.fanout.prepare(earlier)
            self.swap(earlier)
            return True
        with self._cache_lock:
            self._index = None
        raise ServingDamaged(f"the index is damaged and no earlier build is intact{REBUILD_ADVICE}")

    def swap(self, index: LoadedIndex) -> None:
        with self._cache_lock:
            self._index = index
            self._cache.clear()

    def queries(self, questions: list[str], index: LoadedIndex) -> list[Query]:
        """The questions made ready and encoded (the pipeline's query stage, several in one call)."""
        return self.pipeline.queries(questions, index)

    def respond(
        self,
        index: LoadedIndex,
        query: Query,
        top_k: int,
        *,
        explain: bool = False,
        weights: Weights | None = None,
        scope: Scope | None = None,
        read_all: bool = False,
        timings: dict[str, float] | None = None,
    ) -> Result:
        """Rank and answer (or refuse) one encoded question within ``scope`` (the whole corpus when
        None); ``weights`` other than the settings' are for ablations and baselines; ``read_all``:
        the reader reads every question, not only those its verdict decides (to calibrate it)."""
        work = self.pipeline.work(
            index,
            query,
            weights or self.weights,
            top_k=top_k,
            scope=scope,
            explain=explain,
            read_all=read_all,
        )
        return self.pipeline.answer(work, timings)

    def ask(
        self,
        question: str,
        top_k: int = 3,
        *,
        explain: bool = False,
        weights: Weights | None = None,
        use_cache: bool = True,
        scope: Scope | None = None,
        read_all: bool = False,
        timings: dict[str, float] | None = None,
    ) -> Result:
        """``timings``, when given, gathers the seconds each stage took (qa bench profile)."""
        index = self.index  # one index version for the whole question
        asked = normalize_question(question)
        key = (asked.casefold(), top_k, index.fingerprint, scope)
        cacheable = (
            use_cache and self.settings.cache_size > 0 and not explain and weights is None and not read_all
        )
        if cacheable:
            with self._cache_lock:
                cached = self._cache.get(key)
            if cached is not None:
                return dataclasses.replace(cached, question=question, cached=True)
        try:
            started = time.perf_counter()
            (query,) = self.queries([asked], index)
            if timings is not None:
                name = self.pipeline.query.name
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
            result = dataclasses.replace(
                self.respond(
                    index,
                    query,
                    top_k,
                    explain=explain,
                    weights=weights,
                    scope=scope,
                    read_all=read_all,
                    timings=timings,
                ),
                question=question,
            )
        except QAError:
            raise
        except Exception:
            if not self.fall_back_if_damaged(index):
                raise  # not the build's fault: a 500 with its traceback in the log
            return self.ask(
                question,
                top_k,
                explain=explain,
                weights=weights,
                use_cache=use_cache,
                scope=scope,
                read_all=read_all,
                timings=timings,
            )
        if cacheable:
            with self._cache_lock:
                if self._index is index:  # never cache an answer from an index swapped out meanwhile
                    self._cache[key] = result
        return result


class Reloader:
    """Rebuild the index from the corpus and swap it into a running engine, one rebuild at a time.

    ``stopping`` is set when the service begins to shut down: a build under way stops at its next
    batch and nothing is swapped in after that moment.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.stopping = threading.Event()

    def reindex(self, lock_timeout: float = 120) -> BuildReport:
        from qa.builder import build_index  # the build path is not needed to answer questions

        with self._lock:
            return self._recorded(lambda: self._reindex(build_index, lock_timeout))

    def _reindex(self, build_index: Callable[..., BuildReport], lock_timeout: float) -> BuildReport:
        engine = self.engine
        report = build_index(
            engine.settings, engine.build_encoder, lock_timeout=lock_timeout, cancel=self.stopping
        )
        for entry in report.skipped:  # `qa index` prints them; a server logs them
            log.warning("skipped %s", entry)
        if engine.serving is None or engine.serving.fingerprint != report.fingerprint:
            self._load()
        return report

    def put_document(
        self,
        doc_id: str,
        text: str,
        *,
        title: str | None = None,
        source: str | None = None,
        published: str | None = None,
        lock_timeout: float = 120,
    ) -> BuildReport:
        """Add or replace a document: written into the corpus folder (qa/corpus.py's
        ``put_document``), then the incremental build swapped in. A build that fails leaves the
        folder as it was."""
        from qa.corpus import put_document

        def edit() -> DocumentEdit:
            served = self.engine.serving
            current = served.documents[doc_id].path if served and doc_id in served.documents else None
            return put_document(
                self.engine.settings.corpus_dir, doc_id, text, current, title, source, published
            )

        return self._edited(edit, lock_timeout)

    def put_file(self, doc_id: str, suffix: str, raw: bytes, lock_timeout: float = 120) -> BuildReport:
        """Add or replace a document from a file of any readable format (PDF, Word, HTML, ...):
        written as ``<doc_id><suffix>`` (qa/corpus.py's ``put_file``), then the incremental build
        swapped in. A build that fails leaves the folder as it was."""
        from qa.corpus import put_file

        def edit() -> Edits:
            served = self.engine.serving
            current = served.documents[doc_id].path if served and doc_id in served.documents else None
            return put_file(self.engine.settings.corpus_dir, doc_id, suffix, raw, current)

        return self._edited(edit, lock_timeout)

    def delete_document(self, doc_id: str, lock_timeout: float = 120) -> BuildReport:
        """Remove a document's file from the corpus folder, then the incremental build swapped in
        (NotFound for an id the served index does not have)."""
        from qa.corpus import delete_document

        def edit() -> DocumentEdit:
            served = self.engine.serving
            on_record = {d: doc.path for d, doc in served.documents.items()} if served else {}
            return delete_document(self.engine.settings.corpus_dir, doc_id, on_record)

        return self._edited(edit, lock_timeout)

    def _edited(self, edit: Callable[[], DocumentEdit | Edits], lock_timeout: float) -> BuildReport:
        from qa.builder import build_index, built_or_undone

        with self._lock:  # one writer at a time; the build lock keeps out a `qa index` beside it
            done = edit()
            return built_or_undone(
                done, lambda: self._recorded(lambda: self._reindex(build_index, lock_timeout))
            )

    def reload(self) -> LoadedIndex:
        """Load the current build from disk (built elsewhere, say) without rebuilding."""
        with self._lock:
            return self._recorded(self._load)

    def _load(self) -> LoadedIndex:
        index = self.engine.read_index()
        if self.stopping.is_set():
            raise BuildCancelled("the service is shutting down; the index was not swapped")
        self.engine.swap(index)
        return index

    def _recorded(self, action: Callable[[], T]) -> T:
        """Run a reindex or reload; its error, if any, is what /readyz reports until the next one."""
        try:
            result = action()
        except QAError as error:
            self.last_error = str(error)  # the previous index keeps serving
            raise
        except Exception as error:  # a bug, not a state of the index: logged with its traceback
            self.last_error = f"unexpected error: {type(error).__name__}"
            raise
        self.last_error = None
        return result
