"""Build the index (incrementally, atomically, one build at a time): what a build holds is decided
here; qa/store/ writes it in its layout and publishes it."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np

from qa.config import Settings
from qa.corpus import Document, DocumentEdit, Edits, read_corpus
from qa.encoder import Encoder
from qa.errors import REBUILD_ADVICE, BuildCancelled, IndexMissing, QAError
from qa.passages import Passage, split_document
from qa.store import (
    FORMAT_VERSION,
    BuildContent,
    IndexFolder,
    LoadedIndex,
    calibration_for,
    keyword_settings,
    load_index,
    retrieval_text,
    splitter_settings,
    write_build,
)
from qa.terms import Lexicon, analyze, content_words

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What a build changed, for the operator."""

    fingerprint: str
    documents_added: list[str] = field(default_factory=list)
    documents_changed: list[str] = field(default_factory=list)
    documents_removed: list[str] = field(default_factory=list)
    documents_unchanged: int = 0
    passages_added: int = 0
    passages_removed: int = 0
    passages_kept: int = 0
    removed_passage_ids: list[str] = field(default_factory=list)
    texts_embedded: int = 0
    read_seconds: float = 0.0
    split_seconds: float = 0.0
    embed_seconds: float = 0.0
    write_seconds: float = 0.0  # BM25, lexicon and every file (with checksums and fsync)
    total_seconds: float = 0.0
    shards: int = 1
    up_to_date: bool = False
    skipped: list[str] = field(default_factory=list)  # corpus entries left out, with the reason

    def lines(self) -> list[str]:
        skipped = [f"skipped {entry}" for entry in self.skipped]
        if self.up_to_date:
            return [*skipped, f"index is up to date ({self.fingerprint[:12]})"]
        named = [
            f"  {verb}: {_listed(ids)}"
            for verb, ids in (
                ("added", self.documents_added),
                ("changed", self.documents_changed),
                ("removed", self.documents_removed),
            )
            if ids
        ]
        gone = self.removed_passage_ids
        cited = [f"citation ids gone (`/passages/ID` now answers 404): {_listed(gone)}"] if gone else []
        return [
            *skipped,
            f"documents: {len(self.documents_added)} added, {len(self.documents_changed)} changed, "
            f"{len(self.documents_removed)} removed, {self.documents_unchanged} unchanged",
            *named,
            f"passages: {self.passages_added} added, {self.passages_removed} removed, "
            f"{self.passages_kept} kept",
            f"embedded {self.texts_embedded} texts in {self.embed_seconds:.2f}s; "
            f"build took {self.total_seconds:.2f}s (read {self.read_seconds:.2f}s, split "
            f"{self.split_seconds:.2f}s, write {self.write_seconds:.2f}s)"
            + (f" into {self.shards} shards" if self.shards > 1 else "")
            + f"; fingerprint {self.fingerprint[:12]}",
            *cited,
        ]


def _listed(ids: list[str], most: int = 20) -> str:
    """Ids for a line of the report: the first ``most`` and how many more (``--json`` has them all)."""
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Stages(Protocol):
    """Where the two costly stages of a build run: splitting documents into passages and embedding
    texts. ``LocalStages`` runs them in this process; qa/cluster/data.py on a Ray cluster."""

    def split(
        self, documents: list[Document], settings: Settings, progress: bool, cancel: threading.Event
    ) -> list[Passage]: ...

    def embed(self, texts: list[str], label: str, progress: bool, cancel: threading.Event) -> np.ndarray: ...


@dataclass
class LocalStages:
    """Both stages in this process: splitting document by document, embedding batch by batch."""

    encoder: Encoder
    batch_size: int = 32

    def split(
        self, documents: list[Document], settings: Settings, progress: bool, cancel: threading.Event
    ) -> list[Passage]:
        return _split(documents, settings, progress, cancel)

    def embed(self, texts: list[str], label: str, progress: bool, cancel: threading.Event) -> np.ndarray:
        vectors = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        batch = max(self.batch_size, 1) * 8
        chunks = range(0, len(texts), batch)
        if progress and len(texts) > batch:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc=f"embedding {len(texts)} {label}", unit="batch")
        for offset in chunks:
            check_cancelled(cancel)
            vectors[offset : offset + batch] = self.encoder.encode(texts[offset : offset + batch])
        return vectors


def build_index(
    settings: Settings,
    encoder: Encoder,
    *,
    progress: bool = False,
    lock_timeout: float = 0,
    cancel: threading.Event | None = None,
    skip_invalid: bool = False,
    stages: Stages | None = None,
) -> BuildReport:
    """Build (incrementally) into ``settings.index_dir`` and switch ``current`` to it atomically.

    Vectors of passages and sentences whose text did not change are reused from the previous build
    when it used the same model. Holds a lock for the whole build: a second build waits up to
    ``lock_timeout`` seconds, then raises IndexBusy. A crash at any point leaves ``current`` intact.
    Setting ``cancel`` stops the build at its next document or embedding batch (BuildCancelled),
    before anything is published. A corpus file that cannot be used stops the build, or with
    ``skip_invalid`` is left out and listed with its reason (in the report and the manifest).
    ``stages`` runs splitting and embedding elsewhere (a Ray cluster); the build is the same.
    """
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    lock = IndexFolder(settings.index_dir).acquire(lock_timeout)
    try:
        stages = stages or LocalStages(encoder, settings.encode_batch_size)
        return _build_locked(settings, encoder, stages, progress, cancel or threading.Event(), skip_invalid)
    finally:
        lock.release()


def _previous(settings: Settings, encoder: Encoder) -> LoadedIndex | None:
    """The current build, to reuse its vectors and to tell whether it is up to date; None when it
    is missing, of another model, or damaged in any way `qa index --check` finds (a same-size
    overwrite loads, so every file's checksum is verified too): then everything is built anew."""
    try:
        previous = load_index(settings.index_dir, encoder)
        IndexFolder(settings.index_dir).verify_checksums(previous.manifest)
    except QAError as error:
        if not isinstance(error, IndexMissing):
            reason = str(error).removesuffix(REBUILD_ADVICE)  # this is that rebuild
            log.warning("the current build is not reused (%s): everything is built anew", reason)
        return None
    return previous


def check_cancelled(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise BuildCancelled("the build was cancelled: the service is shutting down; nothing was published")


def _build_locked(
    settings: Settings,
    encoder: Encoder,
    stages: Stages,
    progress: bool,
    cancel: threading.Event,
    skip_invalid: bool,
) -> BuildReport:
    started = time.perf_counter()
    corpus = read_corpus(
        settings.corpus_dir, settings.max_document_bytes, skip_invalid, cancel, settings.parse_limits
    )
    read_seconds = time.perf_counter() - started
    documents, fingerprint_of_corpus = corpus.documents, corpus.fingerprint
    previous = _previous(settings, encoder)
    splitter = splitter_settings(settings)
    keywords = keyword_settings(settings)
    shards = settings.shards or (previous.shard_count if previous is not None else 1)
    old_hashes: dict[str, str] = {}
    if previous is not None and previous.manifest.splitter == splitter:
        old_hashes = {k: v["hash"] for k, v in previous.manifest.documents.items()}

    fingerprint = _sha(
        json.dumps(
            [
                FORMAT_VERSION,
                encoder.name,
                splitter,
                keywords,
                sorted((d.doc_id, d.content_hash) for d in documents),
                *([shards] if shards > 1 else []),  # one shard: the fingerprint of earlier builds
            ]
        )
    )
    report = BuildReport(
        fingerprint=fingerprint, skipped=corpus.skipped, read_seconds=read_seconds, shards=shards
    )
    new_ids = {d.doc_id for d in documents}
    for document in documents:
        if document.doc_id not in old_hashes:
            report.documents_added.append(document.doc_id)
        elif old_hashes[document.doc_id] != document.content_hash:
            report.documents_changed.append(document.doc_id)
        else:
            report.documents_unchanged += 1
    report.documents_removed = sorted(set(old_hashes) - new_ids)
    if previous is not None and previous.fingerprint == fingerprint:
        seen = {"corpus_fingerprint": fingerprint_of_corpus, "skipped": corpus.skipped}
        recorded = previous.manifest.to_json()
        if any(recorded.get(key) != value for key, value in seen.items()):
            IndexFolder.rewrite_manifest(previous.path, {**recorded, **seen})
        report.up_to_date = True
        report.passages_kept = len(previous.passages)
        report.total_seconds = time.perf_counter() - started
        return report

    split_started = time.perf_counter()
    passages = stages.split(documents, settings, progress, cancel)
    report.split_seconds = time.perf_counter() - split_started
    titles = {d.doc_id: d.title for d in documents}
    contexts = [retrieval_text(p, titles[p.doc_id], settings.passage_context) for p in passages]
    texts = {d.doc_id: d.text for d in documents}
    # A sentence repeated anywhere is embedded and stored once (a file of "Hi. " repeated once
    # made a 1.5 GB sentences.npy): each sentence of the passages maps to its distinct text's row.
    distinct: dict[str, int] = {}
    sentence_map = np.array(
        [
            distinct.setdefault(texts[p.doc_id][s.start : s.end], len(distinct))
            for p in passages
            for s in p.sentences
        ],
        dtype=np.int32,
    )
    sentence_texts = list(distinct)

    reuse: dict[str, np.ndarray] = {}
    if previous is not None and old_hashes:
        old_titles = {k: d.title for k, d in previous.documents.items()}
        for part in previous.parts():  # each shard's vectors, when the build was sharded
            for i, p in enumerate(part.passages):
                reuse["p" + _sha(retrieval_text(p, old_titles[p.doc_id], settings.passage_context))] = (
                    part.passage_vectors[i]
                )
                doc_text = previous.documents[p.doc_id].text
                for s, vector in zip(p.sentences, part.sentence_rows([i])):
                    reuse["s" + _sha(doc_text[s.start : s.end])] = vector
        for word, vector in zip(previous.lexicon.words, previous.lexicon.vectors):
            reuse["w" + _sha(word)] = vector
        old_ids = {p.passage_id for p in previous.passages}
        new_passage_ids = {p.passage_id for p in passages}
        report.removed_passage_ids = sorted(old_ids - new_passage_ids)
        report.passages_removed = len(report.removed_passage_ids)
        report.passages_kept = len(old_ids & new_passage_ids)
        report.passages_added = len(new_passage_ids - old_ids)
    else:
        report.passages_added = len(passages)

    embed_started = time.perf_counter()
    embed = _Embedder(stages, encoder.dim, reuse, report, progress, cancel)
    words = vocabulary(contexts, settings.max_word_vectors)
    passage_vectors, sentence_vectors, word_vectors = embed({"p": contexts, "s": sentence_texts, "w": words})
    report.embed_seconds = time.perf_counter() - embed_started
    write_started = time.perf_counter()

    tokens = analyze(contexts)
    doc_freq, n_docs = Lexicon.count(tokens)
    faiss_type = _faiss_type(settings, len(passages))
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": {"name": encoder.name, "dim": encoder.dim},
        "splitter": splitter,
        "keywords": keywords,
        "faiss": {"type": faiss_type},
        "documents": {
            d.doc_id: {"hash": d.content_hash, "path": d.path, "title": d.title} for d in documents
        },
        "corpus_fingerprint": fingerprint_of_corpus,
        "skipped": corpus.skipped,  # corpus files left out, each with its reason
        "fingerprint": fingerprint,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "passages": len(passages),
        "sentences": len(sentence_map),
        # Thresholds fitted by `qa calibrate` stay valid while the model is the same.
        "calibration": calibration_for(previous.manifest, encoder.name) if previous else None,
        **({"shards": shards} if shards > 1 else {}),
    }
    lexicon = {"doc_freq": doc_freq, "n_docs": n_docs, "words": words}
    bm25 = bm25s.BM25(k1=keywords["bm25_k1"], b=keywords["bm25_b"])
    # bm25s rejects an empty vocabulary; a passage of only stop words still needs a row.
    bm25.index([t or [""] for t in tokens], show_progress=False)
    build = BuildContent(
        manifest,
        documents,
        passages,
        passage_vectors,
        sentence_vectors,
        sentence_map,
        word_vectors,
        bm25,
        lexicon,
    )
    _publish(settings.index_dir, build, cancel)
    report.write_seconds = time.perf_counter() - write_started
    report.total_seconds = time.perf_counter() - started
    return report


@dataclass
class _Embedder:
    """Vectors for texts of several kinds, reusing those of unchanged texts and embedding the rest
    in one pass of the stages (one model load on a cluster)."""

    stages: Stages
    dim: int
    reuse: dict[str, np.ndarray]
    report: BuildReport
    progress: bool
    cancel: threading.Event

    def __call__(self, kinds: dict[str, list[str]]) -> list[np.ndarray]:
        """One array of vectors for each kind's texts (keys: "p" passages, "s" sentences, "w" words)."""
        out = [np.zeros((len(texts), self.dim), dtype=np.float32) for texts in kinds.values()]
        missing: list[tuple[int, int]] = []  # (kind, row) of the first occurrence of each new text
        copies: dict[str, list[tuple[int, int]]] = {}  # identical texts (boilerplate) embed once
        for k, (kind, texts) in enumerate(kinds.items()):
            for i, text in enumerate(texts):
                key = kind + _sha(text)
                cached = self.reuse.get(key)
                if cached is not None:
                    out[k][i] = cached
                elif key in copies:
                    copies[key].append((k, i))
                else:
                    copies[key] = [(k, i)]
                    missing.append((k, i))
        if missing:
            texts = [list(kinds.values())[k][i] for k, i in missing]
            vectors = self.stages.embed(texts, "texts", self.progress, self.cancel)
            for (k, i), vector in zip(missing, vectors):
                out[k][i] = vector
        for same in copies.values():
            first = out[same[0][0]][same[0][1]]
            for k, i in same[1:]:
                out[k][i] = first
        self.report.texts_embedded += len(missing)
        return out


def vocabulary(contexts: list[str], most: int) -> list[str]:
    """The words that get a vector (for soft word coverage): every content word of the passages, or
    the ``most`` used in the most passages when there are more (a word left out still matches by
    its stem; a question's word is embedded when asked). Sorted, as the lexicon stores them."""
    counts = Counter(w for c in contexts for w in set(content_words(c)))
    if len(counts) <= most:
        return sorted(counts)
    return sorted(w for w, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:most])


def _split(
    documents: list[Document], settings: Settings, progress: bool, cancel: threading.Event
) -> list[Passage]:
    """Passages of every document; on a terminal, a progress bar in characters once the corpus is
    large (many documents, or one big file: it names the file it is splitting)."""
    total = sum(len(d.text) for d in documents)
    bar = None
    if progress and (len(documents) >= 500 or total >= 2**20):
        from tqdm import tqdm

        bar = tqdm(total=total, desc="splitting", unit="char", unit_scale=True)
    passages: list[Passage] = []
    for document in documents:
        check_cancelled(cancel)
        if bar is not None and len(document.text) >= 2**20:
            bar.set_description(f"splitting {document.path}")
        passages.extend(split_document(document, settings.passage_max_chars, settings.sentence_splitter))
        if bar is not None:
            bar.update(len(document.text))
    if bar is not None:
        bar.close()
    return passages


def _faiss_type(settings: Settings, n_passages: int) -> str:
    if settings.faiss_type != "auto":
        return settings.faiss_type
    return "flat" if n_passages <= settings.faiss_exact_max else "hnsw"


def _publish(index_dir: Path, build: BuildContent, cancel: threading.Event) -> None:
    """Write every file into a temporary folder, then rename it and repoint ``current`` (unless the
    build was cancelled meanwhile: then nothing is published)."""
    IndexFolder(index_dir).publish(
        build.manifest["fingerprint"],
        lambda folder: write_build(folder, build),
        lambda: check_cancelled(cancel),
    )


def put_document(
    settings: Settings,
    doc_id: str,
    text: str,
    *,
    title: str | None = None,
    source: str | None = None,
    published: str | None = None,
    encoder: Encoder | None = None,
) -> BuildReport:
    """Add or replace a document (as ``PUT /admin/documents/{doc_id}``): written into the corpus
    folder, then the incremental build; a build that fails leaves the folder as it was."""
    from qa import corpus
    from qa.encoder import encoder_from

    current = _documents_on_record(settings).get(doc_id)
    done = corpus.put_document(settings.corpus_dir, doc_id, text, current, title, source, published)
    return built_or_undone(done, lambda: build_index(settings, encoder or encoder_from(settings)))


def delete_document(settings: Settings, doc_id: str, encoder: Encoder | None = None) -> BuildReport:
    """Remove a document's file from the corpus folder, then the incremental build (NotFound for an
    id the current build does not have)."""
    from qa import corpus
    from qa.encoder import encoder_from

    done = corpus.delete_document(settings.corpus_dir, doc_id, _documents_on_record(settings))
    return built_or_undone(done, lambda: build_index(settings, encoder or encoder_from(settings)))


def _documents_on_record(settings: Settings) -> dict[str, str]:
    """Each document of the current build and the file it was read from."""
    try:
        manifest = IndexFolder(settings.index_dir).read_manifest()
    except IndexMissing:
        return {}
    return {doc_id: entry["path"] for doc_id, entry in manifest.documents.items()}


def built_or_undone(done: DocumentEdit | Edits, build: Callable[[], BuildReport]) -> BuildReport:
    """The build after an edit of the corpus folder; a build that fails undoes the edit, leaving the
    folder matching the index still in use (the library's and the service's document routes)."""
    try:
        return build()
    except BaseException:
        done.undo()
        raise
