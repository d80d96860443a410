"""Reading a build back: every file checked as it is read (a build made with another model or
format is refused, a missing, truncated or inconsistent file is named), a sharded build as its catalog
with its shards."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np
from pydantic import ValidationError

from qa.corpus import Document
from qa.encoder import Encoder
from qa.errors import IndexCorrupt
from qa.passages import Passage, Sentence
from qa.store.folder import IndexFolder
from qa.store.format import DOCUMENT_ROW, LexiconRow, Manifest, PassageRow, first_error, shard_folder
from qa.store.loaded import Catalog, LoadedIndex
from qa.store.policy import check_compatible
from qa.terms import Lexicon


def load_index(
    index_dir: Path, encoder: Encoder | None = None, *, shards: bool = True, build: Path | None = None
) -> LoadedIndex:
    """Load the current build (or ``build``, an earlier one) and check it whole: a build made with
    another model or format is refused (IndexMismatch), a missing, truncated or inconsistent file too
    (IndexCorrupt naming it).

    A sharded build loads as its catalog with every shard (``shards=False``: the catalog alone,
    for a router whose shards are loaded by other processes)."""
    folder = IndexFolder(index_dir)
    stamp = folder.stamp()  # before reading: a manifest rewritten meanwhile reads as newer
    path = (build or folder.current).resolve()
    manifest = folder.read_manifest(path if build else None)
    if encoder is not None:
        check_compatible(manifest, encoder)
    if manifest.shards == 1:
        return _load_folder(folder, path, manifest, stamp=stamp)
    parts = [load_shard(index_dir, path, i, vectors=shards) for i in range(manifest.shards)]
    return _catalog(path, manifest, parts, stamp, keep=shards)


def load_shard(index_dir: Path, build: Path, shard: int, *, vectors: bool = True) -> LoadedIndex:
    """One shard of a sharded build (``vectors=False``: its documents, passages and lexicon only)."""
    index = IndexFolder(index_dir)
    folder = shard_folder(build, shard)
    manifest = index.read_manifest(folder)
    if (manifest.shard or {}).get("index") != shard:
        raise IndexCorrupt(index.shown(folder / "manifest.json"), f"is not the manifest of shard {shard}")
    return _load_folder(index, folder, manifest, vectors=vectors)


def _catalog(
    path: Path, manifest: Manifest, parts: list[LoadedIndex], stamp: tuple[Path, int] | None, keep: bool
) -> LoadedIndex:
    """The whole corpus' documents and passages from its shards, without vectors (those stay in
    the shards, which qa/shards.py searches)."""
    dim = manifest.model.dim
    passages = [p for part in parts for p in part.passages]
    offsets = np.zeros(len(passages) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p.sentences) for p in passages])
    return Catalog(
        path=path,
        manifest=manifest,
        documents={k: d for part in parts for k, d in part.documents.items()},
        passages=passages,
        dense=None,
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
    index: IndexFolder,
    path: Path,
    manifest: Manifest,
    *,
    vectors: bool = True,
    stamp: tuple[Path, int] | None = None,
) -> LoadedIndex:
    """The index in ``path`` (a build, or a shard of one) with its checked ``manifest``."""
    index.verify_sizes(path, manifest)
    dim = manifest.model.dim

    def corrupt(name: str, problem: str) -> IndexCorrupt:
        return IndexCorrupt(index.shown(path / name), problem)

    def read(name: str, reader: Callable[[Path], Any]) -> Any:
        try:
            return reader(path / name)
        except ValidationError as error:
            raise corrupt(name, first_error(error)) from error
        except Exception as error:  # any failure to parse a file means the same to the operator
            raise corrupt(name, f"{type(error).__name__}: {error}") from error

    def lines(file: Path) -> list[dict]:
        with file.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]

    documents: dict[str, Document] = {}
    for document in read("documents.jsonl", lambda f: [DOCUMENT_ROW.validate_python(r) for r in lines(f)]):
        if document.doc_id in documents:
            raise corrupt("documents.jsonl", f"document {document.doc_id!r} appears twice")
        documents[document.doc_id] = document
    if set(documents) != set(manifest.documents):
        raise corrupt("documents.jsonl", "its documents are not the ones the manifest lists")
    passages = [
        _passage(row, documents, corrupt)
        for row in read("passages.jsonl", lambda f: [PassageRow.model_validate(r) for r in lines(f)])
    ]
    n_sentences = sum(len(p.sentences) for p in passages)
    if len(passages) != manifest.passages or n_sentences != manifest.sentences:
        raise corrupt(
            "passages.jsonl",
            f"{len(passages)} passages and {n_sentences} sentences, the manifest says "
            f"{manifest.passages} and {manifest.sentences}",
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
        if manifest.keywords.get("sentence_vectors") == "int8":
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
        "lexicon.json", lambda f: LexiconRow.model_validate(json.loads(f.read_text(encoding="utf-8")))
    )
    word_vectors = read("words.npy", lambda f: np.load(f, allow_pickle=False))
    if word_vectors.shape != (len(lexicon_data.words), dim):
        raise corrupt("words.npy", f"shape {word_vectors.shape}, expected {(len(lexicon_data.words), dim)}")
    lexicon = Lexicon(
        lexicon_data.doc_freq, lexicon_data.n_docs, lexicon_data.words, word_vectors.astype(np.float32)
    )
    with_context = bool(manifest.splitter.get("passage_context", True))
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
    row: PassageRow, documents: dict[str, Document], corrupt: Callable[[str, str], IndexCorrupt]
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
