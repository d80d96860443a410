"""Build the index (incrementally, atomically, one build at a time) into the layout of qa/index.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bm25s
import faiss
import numpy as np
from filelock import FileLock, Timeout

from qa.config import Settings
from qa.corpus import Document, read_corpus
from qa.encoder import Encoder
from qa.errors import IndexBusy, QAError
from qa.index import (
    FORMAT_VERSION,
    LoadedIndex,
    current_path,
    keyword_settings,
    load_index,
    read_manifest,
    retrieval_text,
    splitter_settings,
)
from qa.passages import Passage, split_document
from qa.terms import Lexicon, analyze, content_words

KEEP_BUILDS = 2  # the current build and the one before it


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
    embed_seconds: float = 0.0
    total_seconds: float = 0.0
    up_to_date: bool = False

    def lines(self) -> list[str]:
        if self.up_to_date:
            return [f"index is up to date ({self.fingerprint[:12]})"]
        return [
            f"documents: {len(self.documents_added)} added, {len(self.documents_changed)} changed, "
            f"{len(self.documents_removed)} removed, {self.documents_unchanged} unchanged",
            f"passages: {self.passages_added} added, {self.passages_removed} removed, "
            f"{self.passages_kept} kept",
            f"embedded {self.texts_embedded} texts in {self.embed_seconds:.2f}s; "
            f"build took {self.total_seconds:.2f}s; fingerprint {self.fingerprint[:12]}",
            *(f"citation id gone: {pid}" for pid in self.removed_passage_ids),
        ]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_index(
    settings: Settings,
    encoder: Encoder,
    *,
    progress: bool = False,
    lock_timeout: float = 0,
) -> BuildReport:
    """Build (incrementally) into ``settings.index_dir`` and switch ``current`` to it atomically.

    Vectors of passages and sentences whose text did not change are reused from the previous build
    when it used the same model. Holds a lock for the whole build: a second build waits up to
    ``lock_timeout`` seconds, then raises IndexBusy. A crash at any point leaves ``current`` intact.
    """
    index_dir = settings.index_dir
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / ".lock"))
    try:
        lock.acquire(timeout=lock_timeout)
    except Timeout as error:
        raise IndexBusy(
            f"another `qa index` is building {index_dir} (lock {index_dir / '.lock'}); try again later"
        ) from error
    try:
        return _build_locked(settings, encoder, progress)
    finally:
        lock.release()


def _previous(settings: Settings, encoder: Encoder) -> LoadedIndex | None:
    try:
        previous = load_index(settings.index_dir, encoder)
    except QAError:
        return None  # missing, other model or broken: nothing to reuse, build from scratch
    return previous


def _build_locked(settings: Settings, encoder: Encoder, progress: bool) -> BuildReport:
    started = time.perf_counter()
    documents, fingerprint_of_corpus = read_corpus(settings.corpus_dir)
    previous = _previous(settings, encoder)
    splitter = splitter_settings(settings)
    keywords = keyword_settings(settings)
    old_hashes: dict[str, str] = {}
    if previous is not None and previous.manifest.get("splitter") == splitter:
        old_hashes = {k: v["hash"] for k, v in previous.manifest["documents"].items()}

    fingerprint = _sha(
        json.dumps(
            [
                FORMAT_VERSION,
                encoder.name,
                splitter,
                keywords,
                sorted((d.doc_id, d.content_hash) for d in documents),
            ]
        )
    )
    report = BuildReport(fingerprint=fingerprint)
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
        if previous.manifest.get("corpus_fingerprint") != fingerprint_of_corpus:
            _rewrite_manifest(
                previous.path, {**previous.manifest, "corpus_fingerprint": fingerprint_of_corpus}
            )
        report.up_to_date = True
        report.passages_kept = len(previous.passages)
        report.total_seconds = time.perf_counter() - started
        return report

    passages = [
        p
        for d in _progress(documents, progress, "splitting documents")
        for p in split_document(d, settings.passage_max_chars)
    ]
    titles = {d.doc_id: d.title for d in documents}
    contexts = [retrieval_text(p, titles[p.doc_id], settings.passage_context) for p in passages]
    texts = {d.doc_id: d.text for d in documents}
    sentence_texts = [texts[p.doc_id][s.start : s.end] for p in passages for s in p.sentences]

    reuse: dict[str, np.ndarray] = {}
    if previous is not None and old_hashes:
        old_titles = {k: d.title for k, d in previous.documents.items()}
        for i, p in enumerate(previous.passages):
            reuse["p" + _sha(retrieval_text(p, old_titles[p.doc_id], settings.passage_context))] = (
                previous.passage_vectors[i]
            )
            doc_text = previous.documents[p.doc_id].text
            rows = previous.sentence_rows([i])
            for s, vector in zip(p.sentences, rows):
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
    passage_vectors = _embed(encoder, contexts, "p", reuse, report, settings, progress, "passages")
    sentence_vectors = _embed(encoder, sentence_texts, "s", reuse, report, settings, progress, "sentences")
    words = sorted({w for c in contexts for w in content_words(c)})
    word_vectors = _embed(encoder, words, "w", reuse, report, settings, progress, "words")
    report.embed_seconds = time.perf_counter() - embed_started

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
        "fingerprint": fingerprint,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "passages": len(passages),
        "sentences": len(sentence_texts),
        "calibration": _carried_calibration(previous, encoder),
    }
    lexicon = {"doc_freq": doc_freq, "n_docs": n_docs, "words": words}
    _write_build(
        settings.index_dir,
        manifest,
        documents,
        passages,
        passage_vectors,
        sentence_vectors,
        word_vectors,
        tokens,
        lexicon,
        faiss_type,
    )
    report.total_seconds = time.perf_counter() - started
    return report


def _embed(
    encoder: Encoder,
    texts: list[str],
    kind: str,
    reuse: dict[str, np.ndarray],
    report: BuildReport,
    settings: Settings,
    progress: bool,
    label: str,
) -> np.ndarray:
    """Vectors for ``texts``, reusing those of unchanged texts and encoding the rest in batches."""
    vectors = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    missing = []  # first occurrence of each text not embedded before
    copies: dict[str, list[int]] = {}  # identical texts (boilerplate, repeated paragraphs) embed once
    for i, text in enumerate(texts):
        key = kind + _sha(text)
        cached = reuse.get(key)
        if cached is not None:
            vectors[i] = cached
        elif key in copies:
            copies[key].append(i)
        else:
            copies[key] = [i]
            missing.append(i)
    batch = max(settings.encode_batch_size, 1) * 8
    chunks = range(0, len(missing), batch)
    if progress and len(missing) > batch:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc=f"embedding {len(missing)} {label}", unit="batch")
    for offset in chunks:
        rows = missing[offset : offset + batch]
        vectors[rows] = encoder.encode([texts[i] for i in rows])
    for same in copies.values():
        vectors[same[1:]] = vectors[same[0]]
    report.texts_embedded += len(missing)
    return vectors


def _progress(items: list[Document], show: bool, label: str) -> Iterable[Document]:
    if not show or len(items) < 500:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=label, unit="doc")


def _faiss_type(settings: Settings, n_passages: int) -> str:
    if settings.faiss_type != "auto":
        return settings.faiss_type
    return "flat" if n_passages <= settings.faiss_exact_max else "hnsw"


def _make_faiss(vectors: np.ndarray, faiss_type: str) -> faiss.Index:
    dim = vectors.shape[1]
    if faiss_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    return index


def _carried_calibration(previous: LoadedIndex | None, encoder: Encoder) -> dict | None:
    """Thresholds fitted by `qa calibrate` stay valid while the model is the same."""
    if previous is None:
        return None
    calibration = previous.manifest.get("calibration")
    if calibration and calibration.get("model") == encoder.name:
        return calibration
    return None


def _write_build(
    index_dir: Path,
    manifest: dict,
    documents: list[Document],
    passages: list[Passage],
    passage_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    word_vectors: np.ndarray,
    tokens: list[list[str]],
    lexicon: dict,
    faiss_type: str,
) -> None:
    """Write every file into a temporary folder, then rename it and repoint ``current``."""
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=index_dir))
    try:
        with (tmp / "documents.jsonl").open("w", encoding="utf-8") as out:
            for d in documents:
                out.write(json.dumps(d.to_json(), ensure_ascii=False) + "\n")
        with (tmp / "passages.jsonl").open("w", encoding="utf-8") as out:
            for p in passages:
                row = {
                    "id": p.passage_id,
                    "doc_id": p.doc_id,
                    "start": p.start,
                    "end": p.end,
                    "heading": p.heading,
                    "sentences": [[s.start, s.end] for s in p.sentences],
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        faiss.write_index(_make_faiss(passage_vectors, faiss_type), str(tmp / "dense.faiss"))
        np.save(tmp / "sentences.npy", sentence_vectors.astype(np.float16))
        bm25 = bm25s.BM25(k1=manifest["keywords"]["bm25_k1"], b=manifest["keywords"]["bm25_b"])
        # bm25s rejects an empty vocabulary; a passage of only stop words still needs a row.
        bm25.index([t or [""] for t in tokens], show_progress=False)
        bm25.save(str(tmp / "bm25"))
        (tmp / "lexicon.json").write_text(json.dumps(lexicon, ensure_ascii=False), encoding="utf-8")
        np.save(tmp / "words.npy", word_vectors.astype(np.float16))
        (tmp / "manifest.json").write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        _fsync_tree(tmp)
        name = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{manifest['fingerprint'][:8]}"
        final = builds / name
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_current(index_dir, final)
    _prune(index_dir)


def _fsync_tree(folder: Path) -> None:
    for file in folder.rglob("*"):
        if file.is_file():
            with file.open("rb") as handle:
                os.fsync(handle.fileno())


def _point_current(index_dir: Path, build: Path) -> None:
    link = current_path(index_dir)
    tmp_link = index_dir / f".current-{os.getpid()}"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(build.relative_to(index_dir))
    os.replace(tmp_link, link)  # atomic: readers see the old build or the new one


def _prune(index_dir: Path) -> None:
    """Keep the newest builds (a running server may still hold the previous one) and no temp folders."""
    current = current_path(index_dir).resolve()
    builds = sorted((index_dir / "builds").iterdir(), reverse=True)
    keep = {current, *builds[:KEEP_BUILDS]}
    for build in builds:
        if build.resolve() not in keep:
            shutil.rmtree(build, ignore_errors=True)
    for leftover in index_dir.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _rewrite_manifest(build: Path, manifest: dict) -> None:
    tmp = build / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, build / "manifest.json")


def save_calibration(index_dir: Path, calibration: dict) -> None:
    """Store fitted abstention thresholds in the current build's manifest."""
    lock = FileLock(str(index_dir / ".lock"))
    with lock.acquire(timeout=60):
        manifest = read_manifest(index_dir)
        manifest["calibration"] = calibration
        _rewrite_manifest(current_path(index_dir).resolve(), manifest)
