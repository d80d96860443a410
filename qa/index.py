"""The index: its layout on disk, its manifest checks, and loading it for queries (qa/builder.py builds it).

Layout of the index folder::

    index/current -> builds/<id>     symlink, swapped atomically when a build completes
    index/builds/<id>/manifest.json  model, splitter, per-document hashes, fingerprints, calibration
                     documents.jsonl the documents' texts as indexed (offsets point into these)
                     passages.jsonl  passages with their sentence offsets
                     dense.faiss     passage vectors (normalised; inner product = cosine)
                     sentences.npy   sentence vectors (float16) for answer-sentence scoring,
                                     one per distinct sentence text
                     sentence_map.npy each sentence's row of sentences.npy (int32)
                     bm25/           bm25s keyword index over title + headings + passage
                     lexicon.json    passage frequency of each stem, and the corpus' words
                     words.npy       a vector per word (float16), for soft word coverage

A build of K > 1 shards (``qa index --shards K``) holds, instead of those files, its manifest for the
whole corpus and ``shards/00`` ... ``shards/<K-1>``: each a complete index in the layout above of
the documents assigned to it (``shard_of``), with the corpus-wide BM25 statistics and lexicon, so
that searching every shard and merging (qa/shards.py) ranks as one index would.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np
import scipy.sparse
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from qa.config import Settings
from qa.corpus import Document, corpus_fingerprint
from qa.encoder import Encoder
from qa.errors import IndexCorrupt, IndexMismatch, IndexMissing, QAError
from qa.passages import Passage, Sentence
from qa.terms import STEMMER_LANGUAGE, Lexicon, analyze

FORMAT_VERSION = 3  # 2: the manifest records each file's size and checksum; 3: sentence_map.npy


def shard_of(doc_id: str, shards: int) -> int:
    """The shard a document's passages go to: stable across builds, so an unchanged document keeps
    its shard (and its vectors are reused there)."""
    return int(hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:8], 16) % shards


def shard_folder(build: Path, shard: int) -> Path:
    return build / "shards" / f"{shard:02d}"


@dataclass
class LoadedIndex:
    """Everything a query needs, in memory. Immutable once loaded: a reload swaps a whole new one."""

    path: Path
    manifest: dict
    documents: dict[str, Document]
    passages: list[Passage]
    dense: faiss.Index
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray  # stored as QA_SENTENCE_VECTORS says: float16, int8 or float32
    sentence_offsets: np.ndarray  # passage i owns sentence rows [offsets[i], offsets[i + 1])
    bm25: bm25s.BM25 | None  # None in the catalog of a sharded build (its shards hold the rows)
    lexicon: Lexicon
    with_context: bool = True  # passages were indexed with their title and headings
    stamp: tuple[Path, int] | None = None  # build_stamp() of what was loaded
    positions: dict[str, int] = field(default_factory=dict)
    # Per passage, for each sentence: its stems (with the section heading's, its context) and word ids.
    # Filled on first use, so a large index loads fast and pays only for passages that get asked about.
    # By passage id: the index of a sharded question's merged candidates shares its catalog's.
    _sentence_terms: dict[str, list[tuple[set[str], np.ndarray]]] = field(default_factory=dict)
    _passage_terms: dict[str, tuple[set[str], np.ndarray]] = field(default_factory=dict)

    by_document: dict[str, list[str]] = field(default_factory=dict)  # passage ids of each document
    # A sharded build loads as its catalog (documents, passages and lexicon of the whole corpus, no
    # vectors) with its shards, each a LoadedIndex of part of the corpus; () when not sharded, or
    # when the shards are served elsewhere (Ray Serve deployments).
    shards: tuple[LoadedIndex, ...] = ()
    sentence_scales: np.ndarray | None = None  # int8 sentence vectors: each row's scale
    # Sentence i's vector is row sentence_map[i] (a sentence repeated anywhere is stored once);
    # None: row i.
    sentence_map: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.positions = {p.passage_id: i for i, p in enumerate(self.passages)}
        for passage in self.passages:
            self.by_document.setdefault(passage.doc_id, []).append(passage.passage_id)

    def passage_terms(self, position: int) -> tuple[set[str], np.ndarray]:
        """Stems and lexicon word ids of what retrieval saw of a passage (title + headings + text)."""
        passage = self.passages[position]
        terms = self._passage_terms.get(passage.passage_id)
        if terms is None:
            text = retrieval_text(passage, self.documents[passage.doc_id].title, self.with_context)
            terms = (set(analyze([text])[0]), self.lexicon.ids(text))
            self._passage_terms[passage.passage_id] = terms
        return terms

    def sentence_terms(self, position: int) -> list[tuple[set[str], np.ndarray]]:
        passage = self.passages[position]
        terms = self._sentence_terms.get(passage.passage_id)
        if terms is None:
            text = self.documents[passage.doc_id].text
            sentences = [text[s.start : s.end] for s in passage.sentences]
            heading = set(analyze([passage.heading])[0]) if passage.heading else set()
            terms = [
                (set(stems) | heading, self.lexicon.ids(sentence))
                for stems, sentence in zip(analyze(sentences), sentences)
            ]
            self._sentence_terms[passage.passage_id] = (
                terms  # a dict assignment is atomic: safe across threads
            )
        return terms

    @property
    def shard_count(self) -> int:
        return int(self.manifest.get("shards", 1))

    def parts(self) -> tuple[LoadedIndex, ...]:
        """What holds the vectors: the shards of a sharded build, else the index itself."""
        return self.shards or (self,)

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    @property
    def model(self) -> str:
        return str(self.manifest["model"]["name"])

    def age_seconds(self) -> float:
        return time.time() - datetime.fromisoformat(self.manifest["built_at"]).timestamp()

    def sentence_rows(self, positions: list[int] | np.ndarray) -> np.ndarray:
        """The sentence vectors of these passages, one after the other, as float32."""
        offsets = self.sentence_offsets
        if not len(positions):
            return np.zeros((0, self.dense.d), np.float32)
        rows = np.concatenate([np.arange(offsets[p], offsets[p + 1]) for p in positions])
        if self.sentence_map is not None:
            rows = self.sentence_map[rows]
        vectors = self.sentence_vectors[rows].astype(np.float32)
        return vectors if self.sentence_scales is None else vectors * self.sentence_scales[rows, None]

    def sentence_counts(self, positions: list[int] | np.ndarray) -> np.ndarray:
        return np.diff(self.sentence_offsets)[positions]


def splitter_settings(settings: Settings) -> dict[str, object]:
    return {
        "passage_max_chars": settings.passage_max_chars,
        "passage_context": settings.passage_context,
        "sentences": settings.sentence_splitter,
        "version": 1,
    }


def keyword_settings(settings: Settings) -> dict[str, object]:
    """How passages become keyword-index terms and BM25 scores; a change means a rebuild."""
    return {
        "stemmer": STEMMER_LANGUAGE,
        "stopwords": "nltk-english",
        "bm25_k1": settings.bm25_k1,
        "bm25_b": settings.bm25_b,
        "max_word_vectors": settings.max_word_vectors,
        "sentence_vectors": settings.sentence_vectors,
    }


def retrieval_text(passage: Passage, title: str, with_context: bool) -> str:
    return passage.context(title) if with_context else passage.text


def current_path(index_dir: Path) -> Path:
    return index_dir / "current"


def earlier_builds(index_dir: Path) -> list[Path]:
    """The builds kept besides the current one, newest first (their names begin with the time)."""
    current = current_path(index_dir).resolve()
    folder = index_dir / "builds"
    found = [b.resolve() for b in folder.iterdir() if b.is_dir()] if folder.is_dir() else []
    return sorted((b for b in found if b != current), key=lambda b: b.name, reverse=True)


def build_stamp(index_dir: Path) -> tuple[Path, int] | None:
    """Which build ``current`` points to and when its manifest last changed (a new build, or new
    thresholds from `qa calibrate`); None without one."""
    build = current_path(index_dir).resolve()
    try:
        return build, (build / "manifest.json").stat().st_mtime_ns
    except OSError:
        return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow")


class _ModelInfo(_Strict):
    name: str
    dim: int = Field(gt=0)


class _Calibration(_Strict):
    model: str
    thresholds: dict[str, float]


class _FileInfo(_Strict):
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


class _Manifest(_Strict):
    """What a build's manifest.json must hold for the build to be served."""

    format_version: int
    model: _ModelInfo
    splitter: dict[str, Any]
    keywords: dict[str, Any]
    faiss: dict[str, str]
    documents: dict[str, dict[str, Any]]
    corpus_fingerprint: str
    skipped: list[str] = []
    fingerprint: str = Field(min_length=12)
    built_at: datetime
    passages: int = Field(ge=0)
    sentences: int = Field(ge=0)
    files: dict[str, _FileInfo]
    calibration: _Calibration | None = None
    shards: int = Field(default=1, ge=1)  # a sharded build's count, in its manifest for the whole corpus
    shard: dict[str, int] | None = None  # a shard's own manifest: {"index": i, "of": K}


_DOCUMENT = TypeAdapter(Document)  # a documents.jsonl row is a Document's fields


class _PassageRow(_Strict):
    id: str
    doc_id: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    heading: str
    sentences: list[tuple[int, int]]


class _Lexicon(_Strict):
    doc_freq: dict[str, int]
    n_docs: int = Field(ge=0)
    words: list[str]


def _first_error(error: ValidationError) -> str:
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def read_manifest(index_dir: Path, folder: Path | None = None) -> dict:
    """The current build's manifest (or that of ``folder``, a shard of it), checked field by field;
    IndexCorrupt names what is wrong."""
    path = (folder or current_path(index_dir)) / "manifest.json"
    if not path.exists() and folder is not None:
        raise IndexCorrupt(_shown(index_dir, path), "missing")
    if not path.exists():
        raise IndexMissing(index_dir)
    shown = _shown(index_dir, path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise IndexCorrupt(shown, str(error)) from error
    if not isinstance(manifest, dict):
        raise IndexCorrupt(shown, "not a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}; rebuild it with `qa index`"
        )
    try:
        _Manifest.model_validate(manifest)
    except ValidationError as error:
        raise IndexCorrupt(shown, _first_error(error)) from error
    return manifest


def _shown(index_dir: Path, path: Path) -> str:
    """A file of the index as messages name it: relative to the index folder, through ``current``
    to the build it is (no absolute paths in HTTP responses)."""
    try:
        return path.resolve().relative_to(index_dir.resolve()).as_posix()
    except ValueError:
        return path.name


def check_compatible(manifest: dict, encoder: Encoder) -> None:
    built = manifest["model"]
    if built["name"] != encoder.name or int(built["dim"]) != encoder.dim:
        raise IndexMismatch(
            f"index was built with model {built['name']} (dimension {built['dim']}), but the "
            f"configured model is {encoder.name} (dimension {encoder.dim}); rebuild with `qa index`"
        )


def staleness(settings: Settings, manifest: dict, memo: dict | None = None) -> str | None:
    """Why the index no longer matches the corpus and settings, or None when it is current."""
    try:
        fingerprint = corpus_fingerprint(settings.corpus_dir, memo)
    except QAError as error:
        return str(error)
    if fingerprint != manifest.get("corpus_fingerprint"):
        return "the corpus changed since the index was built"
    if manifest.get("splitter") != splitter_settings(settings):
        return "the splitter settings changed since the index was built"
    if manifest.get("keywords") != keyword_settings(settings):
        return "the keyword-index settings changed since the index was built"
    return None


def check(settings: Settings) -> str | None:
    """None when the index is present, sound and current, else a one-line reason.

    Sound means what the server would accept, and more: every file's size and checksum as the
    manifest recorded them (a truncated or hand-edited file), then a full load with its checks.
    """
    try:
        manifest = read_manifest(settings.index_dir)
        verify_checksums(settings.index_dir, manifest)
        load_index(settings.index_dir)
    except QAError as error:
        return str(error)
    return staleness(settings, manifest)


def file_records(build: Path) -> dict[str, dict[str, object]]:
    """Size and SHA-256 of every file of a build but its manifest, by path inside the build."""
    records: dict[str, dict[str, object]] = {}
    for file in sorted(build.rglob("*")):
        if file.is_file() and file.name != "manifest.json":
            digest = hashlib.sha256()
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(2**20), b""):
                    digest.update(block)
            records[file.relative_to(build).as_posix()] = {
                "bytes": file.stat().st_size,
                "sha256": digest.hexdigest(),
            }
    return records


def _verify_sizes(index_dir: Path, build: Path, manifest: dict) -> None:
    for name, record in manifest["files"].items():
        file = build / name
        try:
            size = file.stat().st_size
        except OSError:
            raise IndexCorrupt(_shown(index_dir, file), "missing") from None
        if size != record["bytes"]:
            raise IndexCorrupt(_shown(index_dir, file), f"{size} bytes, the build wrote {record['bytes']}")


def verify_checksums(index_dir: Path, manifest: dict, build: Path | None = None) -> None:
    """Every file of ``build`` (default: the current one) as it was written: same size and SHA-256
    (reads the whole build)."""
    build = (build or current_path(index_dir)).resolve()
    found = file_records(build)
    for name in manifest["files"]:
        if name not in found and (build / name).exists():
            raise IndexCorrupt(_shown(index_dir, build / name), "listed in the manifest, but not a file")
    _verify_sizes(index_dir, build, manifest)
    for name, record in manifest["files"].items():
        if found[name]["sha256"] != record["sha256"]:
            raise IndexCorrupt(
                _shown(index_dir, build / name), "its checksum differs from the one the build wrote"
            )


def _bm25_problem(scores: dict) -> str | None:
    """What is wrong with a BM25 score matrix (CSC: a column per word, a row per passage), checked
    in one pass over its arrays: a same-size overwrite of them once loaded, then failed every question."""
    data, indices, indptr = scores["data"], scores["indices"], scores["indptr"]
    if len(data) != len(indices) or len(indptr) == 0 or indptr[0] != 0 or indptr[-1] != len(indices):
        return "its score matrix's arrays do not fit together"
    if np.any(np.diff(indptr) < 0):
        return "its column pointers go backwards"
    if len(indices) and (indices.min() < 0 or indices.max() >= scores["num_docs"]):
        return "a score of a passage that does not exist"
    if not np.all(np.isfinite(data)):
        return "a score that is not a number"
    return None


def _stored_vectors(dense: faiss.Index) -> np.ndarray:
    """A read-only view of the vectors FAISS stores (flat, or HNSW's flat storage): no second copy."""
    if dense.ntotal == 0:
        return np.zeros((0, dense.d), np.float32)
    flat = faiss.downcast_index(dense.storage) if isinstance(dense, faiss.IndexHNSW) else dense
    if not isinstance(flat, faiss.IndexFlat):
        return dense.reconstruct_n(0, dense.ntotal)
    view = faiss.rev_swig_ptr(flat.get_xb(), dense.ntotal * dense.d).reshape(dense.ntotal, dense.d)
    view.flags.writeable = False
    return view  # valid while LoadedIndex holds ``dense``


@dataclass(frozen=True)
class BuildContent:
    """Everything a build writes: what ``write_build`` puts on disk and ``load_index`` reads back."""

    manifest: dict
    documents: list[Document]
    passages: list[Passage]
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray  # one row per distinct sentence text
    sentence_map: np.ndarray  # per sentence of the passages, in order: its row of sentence_vectors
    word_vectors: np.ndarray
    bm25: bm25s.BM25
    lexicon: dict  # doc_freq, n_docs, words


def write_build(folder: Path, build: BuildContent) -> None:
    """Write a build's files into ``folder`` in the layout ``load_index`` reads (each row through
    the same model that reads it), the manifest last, with the size and checksum of every other file;
    as shards when the manifest asks for more than one."""
    shards = int(build.manifest.get("shards", 1))
    if shards > 1:
        owner = {d.doc_id: shard_of(d.doc_id, shards) for d in build.documents}
        passage_owner = np.array([owner[p.doc_id] for p in build.passages], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum([len(p.sentences) for p in build.passages])]).astype(np.int64)
        scores = build.bm25.scores  # rows are passages: sliced by row, as CSR, for every shard
        matrix = scipy.sparse.csc_matrix(
            (scores["data"], scores["indices"], scores["indptr"]),
            shape=(scores["num_docs"], len(scores["indptr"]) - 1),
        ).tocsr()
        for shard in range(shards):
            sub = shard_folder(folder, shard)
            sub.mkdir(parents=True)
            rows = np.flatnonzero(passage_owner == shard)
            mine = {doc_id for doc_id, s in owner.items() if s == shard}
            _write_files(sub, _shard_content(build, shard, shards, mine, rows, starts, matrix))
    else:
        _write_files(folder, build)
    manifest = {**build.manifest, "files": file_records(folder)}
    (folder / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    for file in folder.rglob("*"):
        if file.is_file():
            with file.open("rb") as handle:
                os.fsync(handle.fileno())


def _shard_content(
    build: BuildContent,
    shard: int,
    shards: int,
    mine: set[str],
    rows: np.ndarray,
    starts: np.ndarray,
    bm25_matrix: scipy.sparse.csr_matrix,
) -> BuildContent:
    """The part of a build one shard holds: the documents ``mine``, their passages (``rows``),
    vectors and BM25 rows (scored with the whole corpus' statistics), and the whole lexicon."""
    sentence_rows = np.concatenate(
        [np.arange(starts[r], starts[r + 1]) for r in rows] or [np.zeros(0, np.int64)]
    )
    passages = [build.passages[r] for r in rows]
    used, sentence_map = np.unique(build.sentence_map[sentence_rows], return_inverse=True)
    manifest = {
        **build.manifest,
        "documents": {k: v for k, v in build.manifest["documents"].items() if k in mine},
        "passages": len(passages),
        "sentences": len(sentence_rows),
        "shard": {"index": shard, "of": shards},
    }
    del manifest["shards"]
    return BuildContent(
        manifest,
        [d for d in build.documents if d.doc_id in mine],
        passages,
        build.passage_vectors[rows],
        build.sentence_vectors[used],
        sentence_map.astype(np.int32),
        build.word_vectors,
        _bm25_rows(build.bm25, bm25_matrix[rows].tocsc()),
        build.lexicon,
    )


def store_vectors(vectors: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Unit vectors as stored: float32, float16 (half the bytes, cosines within about 1e-3), or
    int8 with a scale per row (a quarter; the row's largest component maps to 127)."""
    if dtype != "int8":
        return vectors.astype(dtype), None
    scales = np.abs(vectors).max(axis=1, initial=1e-12).astype(np.float32) / 127
    return np.round(vectors / scales[:, None]).astype(np.int8), scales


def _bm25_rows(bm25: bm25s.BM25, matrix: scipy.sparse.csc_matrix) -> bm25s.BM25:
    """A BM25 index of some of ``bm25``'s passages (``matrix``: their rows of its score matrix),
    their scores unchanged: the document frequencies and average length they were computed with
    are the whole corpus'."""
    scores = bm25.scores
    part = copy.copy(bm25)
    part.scores = {
        "data": matrix.data.astype(scores["data"].dtype),
        "indices": matrix.indices.astype(scores["indices"].dtype),
        "indptr": matrix.indptr.astype(scores["indptr"].dtype),
        "num_docs": matrix.shape[0],
    }
    return part


def _write_files(folder: Path, build: BuildContent) -> None:
    """Every file of an index but its manifest: documents, passages, vectors, BM25, lexicon."""
    with (folder / "documents.jsonl").open("w", encoding="utf-8") as out:
        for d in build.documents:
            out.write(json.dumps(d.to_json(), ensure_ascii=False) + "\n")
    with (folder / "passages.jsonl").open("w", encoding="utf-8") as out:
        for p in build.passages:
            row = _PassageRow(
                id=p.passage_id,
                doc_id=p.doc_id,
                start=p.start,
                end=p.end,
                heading=p.heading,
                sentences=[(s.start, s.end) for s in p.sentences],
            )
            out.write(row.model_dump_json() + "\n")
    dense = _make_faiss(build.passage_vectors, build.manifest["faiss"]["type"])
    faiss.write_index(dense, str(folder / "dense.faiss"))
    stored = build.manifest["keywords"].get("sentence_vectors", "float16")
    vectors, scales = store_vectors(build.sentence_vectors, stored)
    np.save(folder / "sentences.npy", vectors)
    np.save(folder / "sentence_map.npy", build.sentence_map.astype(np.int32))
    if scales is not None:
        np.save(folder / "sentence_scales.npy", scales)
    build.bm25.save(str(folder / "bm25"))
    (folder / "lexicon.json").write_text(json.dumps(build.lexicon, ensure_ascii=False), encoding="utf-8")
    np.save(folder / "words.npy", build.word_vectors.astype(np.float16))
    if "shard" in build.manifest:
        manifest = {**build.manifest, "files": file_records(folder)}
        (folder / "manifest.json").write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
        )


def _make_faiss(vectors: np.ndarray, faiss_type: str) -> faiss.Index:
    dim = vectors.shape[1]
    index: faiss.Index
    if faiss_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    return index


def rewrite_manifest(build: Path, manifest: dict) -> None:
    """Replace a build's manifest atomically (a reader sees the old one or the new one)."""
    tmp = build / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, build / "manifest.json")


def index_lock(index_dir: Path) -> FileLock:
    """The lock a writer of the index folder holds: one build or manifest change at a time."""
    return FileLock(str(index_dir / ".lock"))


def save_calibration(index_dir: Path, calibration: dict) -> None:
    """Store fitted abstention thresholds (``{"model": ..., "thresholds": {...}}``) in the current
    build's manifest."""
    with index_lock(index_dir).acquire(timeout=60):
        manifest = read_manifest(index_dir)
        manifest["calibration"] = calibration
        rewrite_manifest(current_path(index_dir).resolve(), manifest)


def calibration_for(manifest: dict, model: str) -> dict | None:
    """The stored calibration when it was fitted for ``model`` (thresholds are a property of the
    model's similarities: another model's are not valid), else None."""
    calibration = manifest.get("calibration")
    return calibration if calibration and calibration.get("model") == model else None


def load_index(
    index_dir: Path, encoder: Encoder | None = None, *, shards: bool = True, build: Path | None = None
) -> LoadedIndex:
    """Load the current build (or ``build``, an earlier one) and check it whole: a build made with
    another model or format is refused (IndexMismatch), a missing, truncated or inconsistent file too
    (IndexCorrupt naming it).

    A sharded build loads as its catalog with every shard (``shards=False``: the catalog alone,
    for a router whose shards are loaded by other processes)."""
    stamp = build_stamp(index_dir)  # before reading: a manifest rewritten meanwhile reads as newer
    path = (build or current_path(index_dir)).resolve()
    manifest = read_manifest(index_dir, path if build else None)
    if encoder is not None:
        check_compatible(manifest, encoder)
    if int(manifest.get("shards", 1)) == 1:
        return _load_folder(index_dir, path, manifest, stamp=stamp)
    parts = [load_shard(index_dir, path, i, vectors=shards) for i in range(int(manifest["shards"]))]
    return _catalog(path, manifest, parts, stamp, keep=shards)


def load_shard(index_dir: Path, build: Path, shard: int, *, vectors: bool = True) -> LoadedIndex:
    """One shard of a sharded build (``vectors=False``: its documents, passages and lexicon only)."""
    folder = shard_folder(build, shard)
    manifest = read_manifest(index_dir, folder)
    if (manifest.get("shard") or {}).get("index") != shard:
        raise IndexCorrupt(
            _shown(index_dir, folder / "manifest.json"), f"is not the manifest of shard {shard}"
        )
    return _load_folder(index_dir, folder, manifest, vectors=vectors)


def _catalog(
    path: Path, manifest: dict, parts: list[LoadedIndex], stamp: tuple[Path, int] | None, keep: bool
) -> LoadedIndex:
    """The whole corpus' documents and passages from its shards, without vectors (those stay in
    the shards, which qa/shards.py searches)."""
    dim = int(manifest["model"]["dim"])
    passages = [p for part in parts for p in part.passages]
    offsets = np.zeros(len(passages) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p.sentences) for p in passages])
    return LoadedIndex(
        path=path,
        manifest=manifest,
        documents={k: d for part in parts for k, d in part.documents.items()},
        passages=passages,
        dense=faiss.IndexFlatIP(dim),
        passage_vectors=np.zeros((0, dim), np.float32),
        sentence_vectors=np.zeros((0, dim), np.float16),
        sentence_offsets=offsets,
        bm25=None,
        lexicon=parts[0].lexicon,  # the corpus-wide lexicon: every shard holds it
        with_context=parts[0].with_context,
        stamp=stamp,
        shards=tuple(parts) if keep else (),
    )


def _load_folder(
    index_dir: Path,
    path: Path,
    manifest: dict,
    *,
    vectors: bool = True,
    stamp: tuple[Path, int] | None = None,
) -> LoadedIndex:
    """The index in ``path`` (a build, or a shard of one) with its checked ``manifest``."""
    _verify_sizes(index_dir, path, manifest)
    dim = int(manifest["model"]["dim"])

    def corrupt(name: str, problem: str) -> IndexCorrupt:
        return IndexCorrupt(_shown(index_dir, path / name), problem)

    def read(name: str, reader: Callable[[Path], Any]) -> Any:
        try:
            return reader(path / name)
        except ValidationError as error:
            raise corrupt(name, _first_error(error)) from error
        except Exception as error:  # any failure to parse a file means the same to the operator
            raise corrupt(name, f"{type(error).__name__}: {error}") from error

    def lines(file: Path) -> list[dict]:
        with file.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]

    documents: dict[str, Document] = {}
    for document in read("documents.jsonl", lambda f: [_DOCUMENT.validate_python(r) for r in lines(f)]):
        if document.doc_id in documents:
            raise corrupt("documents.jsonl", f"document {document.doc_id!r} appears twice")
        documents[document.doc_id] = document
    if set(documents) != set(manifest["documents"]):
        raise corrupt("documents.jsonl", "its documents are not the ones the manifest lists")
    passages = [
        _passage(row, documents, corrupt)
        for row in read("passages.jsonl", lambda f: [_PassageRow.model_validate(r) for r in lines(f)])
    ]
    n_sentences = sum(len(p.sentences) for p in passages)
    if len(passages) != manifest["passages"] or n_sentences != manifest["sentences"]:
        raise corrupt(
            "passages.jsonl",
            f"{len(passages)} passages and {n_sentences} sentences, the manifest says "
            f"{manifest['passages']} and {manifest['sentences']}",
        )
    dense, sentence_vectors, bm25 = faiss.IndexFlatIP(dim), np.zeros((0, dim), np.float16), None
    scales = sentence_map = None
    if vectors:
        dense = read("dense.faiss", lambda f: faiss.read_index(str(f)))
        if dense.ntotal != len(passages) or dense.d != dim:
            raise corrupt(
                "dense.faiss", f"{dense.ntotal} vectors of dimension {dense.d} for {len(passages)} passages"
            )
        sentence_vectors = read("sentences.npy", lambda f: np.load(f, allow_pickle=False))
        n_vectors = len(sentence_vectors)
        if sentence_vectors.ndim != 2 or sentence_vectors.shape[1] != dim or n_vectors > n_sentences:
            raise corrupt(
                "sentences.npy", f"shape {sentence_vectors.shape}, expected at most {(n_sentences, dim)}"
            )
        sentence_map = read("sentence_map.npy", lambda f: np.load(f, allow_pickle=False))
        if sentence_map.shape != (n_sentences,) or not np.issubdtype(sentence_map.dtype, np.integer):
            raise corrupt("sentence_map.npy", f"shape {sentence_map.shape}, expected {(n_sentences,)}")
        if n_sentences and not (0 <= sentence_map.min() and sentence_map.max() < n_vectors):
            raise corrupt("sentence_map.npy", f"a row outside the {n_vectors} sentence vectors")
        if manifest["keywords"].get("sentence_vectors") == "int8":
            scales = read("sentence_scales.npy", lambda f: np.load(f, allow_pickle=False))
            if scales.shape != (n_vectors,):
                raise corrupt("sentence_scales.npy", f"shape {scales.shape}, expected {(n_vectors,)}")
        bm25 = read("bm25", lambda f: bm25s.BM25.load(str(f)))
        if bm25.scores.get("num_docs") != len(passages):
            raise corrupt("bm25", f"{bm25.scores.get('num_docs')} rows for {len(passages)} passages")
        problem = _bm25_problem(bm25.scores)
        if problem:
            raise corrupt("bm25", problem)
    lexicon_data = read(
        "lexicon.json", lambda f: _Lexicon.model_validate(json.loads(f.read_text(encoding="utf-8")))
    )
    word_vectors = read("words.npy", lambda f: np.load(f, allow_pickle=False))
    if word_vectors.shape != (len(lexicon_data.words), dim):
        raise corrupt("words.npy", f"shape {word_vectors.shape}, expected {(len(lexicon_data.words), dim)}")
    lexicon = Lexicon(
        lexicon_data.doc_freq, lexicon_data.n_docs, lexicon_data.words, word_vectors.astype(np.float32)
    )
    with_context = bool(manifest["splitter"].get("passage_context", True))
    if isinstance(dense, faiss.IndexHNSW):
        dense.hnsw.efSearch = max(dense.hnsw.efSearch, 128)
    offsets = np.zeros(len(passages) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p.sentences) for p in passages])
    return LoadedIndex(
        path=path,
        manifest=manifest,
        documents=documents,
        passages=passages,
        dense=dense,
        passage_vectors=_stored_vectors(dense),
        sentence_vectors=sentence_vectors,  # as stored, in memory too: a passage's rows are cast per query
        sentence_scales=scales,
        sentence_map=sentence_map,
        sentence_offsets=offsets,
        bm25=bm25,
        lexicon=lexicon,
        with_context=with_context,
        stamp=stamp,
    )


def _passage(
    row: _PassageRow, documents: dict[str, Document], corrupt: Callable[[str, str], IndexCorrupt]
) -> Passage:
    """A passage from its row, checked against its document: offsets inside it, sentences inside
    the passage."""
    document = documents.get(row.doc_id)
    if document is None:
        raise corrupt("passages.jsonl", f"passage {row.id} names an unknown document {row.doc_id!r}")
    bounds = [(row.start, row.end), *row.sentences]
    if not (row.start < row.end <= len(document.text)) or any(
        not (row.start <= s < e <= row.end) for s, e in row.sentences
    ):
        raise corrupt(
            "passages.jsonl", f"passage {row.id} has offsets outside its document or passage: {bounds[:3]}"
        )
    return Passage(
        passage_id=row.id,
        doc_id=row.doc_id,
        start=row.start,
        end=row.end,
        text=document.text[row.start : row.end],
        heading=row.heading,
        sentences=tuple(Sentence(s, e) for s, e in row.sentences),
    )
