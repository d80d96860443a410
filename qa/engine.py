"""The question-answering engine shared by the API, the CLI and the evaluation: encoder + index.

The loaded index is swapped as one reference, so every question is answered wholly by one index
version, whichever is current when the question arrives.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from cachetools import LRUCache
from threadpoolctl import threadpool_limits

from qa.answer import (
    CONFIDENCE_INPUTS,
    RELEVANCE_INPUTS,
    Calibrated,
    Logistic,
    ReaderRule,
    Result,
    Rule,
    Thresholds,
    answer,
)
from qa.config import Settings
from qa.encoder import Encoder
from qa.errors import (
    BuildCancelled,
    IndexCorrupt,
    IndexMissing,
    QAError,
    ScopeEmpty,
    ServingDamaged,
)
from qa.index import LoadedIndex, calibration_for, earlier_builds, load_index, verify_checksums
from qa.question import MAX_WORDS, prepare, rarity
from qa.ranking import Candidate, Weights, rank, rank_pool
from qa.reader import Reader, load_reader
from qa.retrieve import Query, Scope
from qa.shards import Fanout, LocalShards, merge
from qa.terms import QueryWord, analyze_one, content_words, stems

if TYPE_CHECKING:
    from qa.builder import BuildReport
    from qa.corpus import DocumentEdit, Edits

T = TypeVar("T")


def normalize_question(question: str) -> str:
    """The question the engine answers: Unicode-normalised (NFKC: full-width and compatibility
    characters as their plain forms), whitespace collapsed. The cache key is this text case-folded;
    every stage reads the question case-blind (the uncased models' tokenizers, lower-cased keywords,
    case-insensitive patterns), so questions with one key get one answer. The key must never fold
    more than the engine does: a full-width question, answered as typed, was refused and its refusal
    then served for the plain one."""
    return " ".join(unicodedata.normalize("NFKC", question).split())


def thresholds_for(index: LoadedIndex, settings: Settings, reader: Reader | None = None) -> Rule:
    """The answer rule: the calibrated thresholds when the manifest holds some for this model, else
    the settings' defaults; with the reader, and its threshold (calibrated for this reader, else
    the one shipped with it), the reader rule."""
    calibration = calibration_for(index.manifest, index.model)
    if calibration:
        values = calibration["thresholds"]
        thresholds = Thresholds(values["similarity"], values["coverage"], source="calibrated")
    else:
        thresholds = Thresholds(settings.abstain_similarity, settings.abstain_coverage)
    if reader is None:
        return thresholds
    stored = (calibration or {}).get("reader_rule")
    if stored and stored.get("reader") == reader.name:
        return ReaderRule(thresholds.similarity, thresholds.coverage, stored["threshold"], "calibrated")
    return ReaderRule(thresholds.similarity, thresholds.coverage, reader.default_threshold, thresholds.source)


def calibrated_for(index: LoadedIndex, reader: Reader | None = None) -> Calibrated:
    """The answers' confidence and the citations' relevance: each as `qa calibrate` fitted it for
    this model (the confidence, for this reader too), else as shipped with the reader; none without
    either."""
    calibration = calibration_for(index.manifest, index.model) or {}
    shipped = reader.default_calibrated if reader is not None else Calibrated()
    confidence = shipped.confidence
    stored = calibration.get("confidence")
    if stored and stored.get("reader") == (reader.name if reader else None):
        confidence = Logistic.from_json(stored, CONFIDENCE_INPUTS)
    relevance, floor = shipped.relevance, shipped.relevance_floor
    if calibration.get("relevance"):
        relevance = Logistic.from_json(calibration["relevance"], RELEVANCE_INPUTS)
        floor = float(calibration["relevance"].get("floor", 0.0))
    return Calibrated(confidence, relevance, floor)


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
    ) -> None:
        """``reader``: True loads the one the settings name; a Reader, or None for none."""
        # How a sharded index's shards are searched: in this process, unless given (Ray Serve).
        self.fanout = fanout or LocalShards()
        self.settings = settings
        self.encoder = encoder
        rarity("the")  # loads wordfreq's English table now, not on the first question (half a second)
        self.weights = Weights.from_settings(settings)
        # The reader shares the cores with the encoder and, under --workers, with the other workers.
        threads = max(1, len(os.sched_getaffinity(0)) // settings.workers)
        self.reader = load_reader(settings.reader, threads) if reader is True else (reader or None)
        self._index = index
        self._cache: LRUCache[tuple[str, int, str, Scope | None], Result] = LRUCache(
            maxsize=max(settings.cache_size, 1)
        )
        self.build_encoder = getattr(encoder, "inner", encoder)  # builds bypass the request batcher
        # Vectors of question words the corpus does not use, kept across questions and index versions.
        self._word_vectors: LRUCache[str, np.ndarray] = LRUCache(maxsize=20_000)
        self._cache_lock = threading.Lock()
        self._intact: set[str] = set()  # builds found intact after an error answering from them

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
            verify_checksums(self.settings.index_dir, index.manifest, index.path)
            self._intact.add(index.fingerprint)  # verified once: a recurring error costs no rereading
            return False
        except IndexCorrupt as damage:
            log.error("%s: serving an earlier build instead", damage)
        with self._cache_lock:
            if self._index is not index:  # another question fell back already
                return True
        for build in earlier_builds(self.settings.index_dir):
            try:
                earlier = load_index(
                    self.settings.index_dir, self.encoder, shards=self.fanout.loads_shards, build=build
                )
                verify_checksums(self.settings.index_dir, earlier.manifest, build)
            except QAError as error:
                log.warning("earlier build %s cannot be served either: %s", build.name, error)
                continue
            if earlier.shard_count > 1:
                self.fanout.prepare(earlier)
            self.swap(earlier)
            return True
        with self._cache_lock:
            self._index = None
        raise ServingDamaged(
            "the index is damaged and no earlier build is intact; rebuild it with `qa index`"
        )

    def swap(self, index: LoadedIndex) -> None:
        with self._cache_lock:
            self._index = index
            self._cache.clear()

    def queries(self, questions: list[str], index: LoadedIndex) -> list[Query]:
        """Prepare questions (qa/question.py), then encode them, and in the same encoder call their
        words the corpus does not use."""
        lexicon = index.lexicon
        prepared = [prepare(q, lexicon.words, lexicon.word_ids) for q in questions]
        words = [content_words(p.text)[:MAX_WORDS] for p in prepared]
        unknown = {w for ws in words for w in ws if w not in lexicon.word_ids}
        with self._cache_lock:  # cachetools caches are not thread-safe
            fresh = {w: v for w in unknown if (v := self._word_vectors.get(w)) is not None}
        new_words = sorted(unknown - set(fresh))
        vectors = self.encoder.encode([*(p.text for p in prepared), *new_words])
        with self._cache_lock:
            for w, v in zip(new_words, vectors[len(questions) :]):
                fresh[w] = self._word_vectors[w] = v
        result = []
        for ready, vector, qwords in zip(prepared, vectors, words):
            word_vectors = [
                lexicon.vectors[lexicon.word_ids[w]] if w in lexicon.word_ids else fresh[w] for w in qwords
            ]
            query_words = [
                QueryWord(w, s, v, lexicon.weigh(w, v, vector), lexicon.rank_weigh(s, v, vector))
                for w, s, v in zip(qwords, stems(qwords), word_vectors)
            ]
            result.append(
                Query(
                    text=ready.text,
                    vector=vector,
                    terms=analyze_one(ready.text),
                    words=query_words,
                    asked=ready.asked,
                )
            )
        return result

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
    ) -> Result:
        """Rank and answer (or refuse) one encoded question within ``scope`` (the whole corpus when
        None); ``weights`` other than the settings' are for ablations and baselines; ``read_all``:
        the reader reads every question, not only those its verdict decides (to calibrate it)."""
        weights = weights or self.weights
        allowed = None
        if scope is not None:
            allowed = scope.positions(index)
            if len(allowed) == 0:
                raise ScopeEmpty(f"no document matches the filter: {scope.describe()}")
        if index.shard_count > 1:
            index, ranked = self._rank_shards(index, query, weights, scope)
        else:
            ranked = rank(
                index,
                query,
                weights,
                candidates=self.settings.candidates,
                depth=self.settings.rerank_depth,
                allowed=allowed,
            )
        return answer(
            index,
            query,
            ranked,
            top_k=top_k,
            thresholds=thresholds_for(index, self.settings, self.reader),
            calibrated=calibrated_for(index, self.reader),
            explain=explain,
            scope=scope,
            reader=self.reader,
            read=self.settings.reader_sentences,
            read_all=read_all,
        )

    def _rank_shards(
        self, catalog: LoadedIndex, query: Query, weights: Weights, scope: Scope | None
    ) -> tuple[LoadedIndex, list[Candidate]]:
        """Every shard's candidates merged (qa/shards.py), then ranked as one index ranks its pool:
        the index of the merged candidates and their ranking."""
        candidates = self.settings.candidates
        pools = self.fanout(catalog, query, candidates, weights.retrievers, scope)
        merged = merge(catalog, query, pools, candidates, weights.retrievers)
        if merged is None:
            return catalog, []
        view, pool = merged
        return view, rank_pool(view, query, pool, weights, self.settings.rerank_depth)

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
    ) -> Result:
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
            (query,) = self.queries([asked], index)
            result = dataclasses.replace(
                self.respond(
                    index, query, top_k, explain=explain, weights=weights, scope=scope, read_all=read_all
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
