"""Writing a build: every file of the layout (qa/store/format.py), each row through the model that
reads it back, the manifest last with the size and checksum of every other file; as shards when the
manifest asks for more than one."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

import bm25s
import faiss
import numpy as np
import scipy.sparse

from qa.corpus import Document
from qa.passages import Passage
from qa.store.format import PassageRow, file_records, shard_folder, shard_of


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
            row = PassageRow(
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
