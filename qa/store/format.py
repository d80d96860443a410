"""The index on disk: its layout, the rows and manifest as typed models, and how documents are
assigned to shards. (Written by qa/store/writer.py, read by qa/store/loader.py.)

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

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from qa.corpus import Document
from qa.passages import Passage

FORMAT_VERSION = 4  # 2: the manifest records each file's size and checksum; 3: sentence_map.npy;
# 4: keyword analysis reads "$" and "%" as words (`terms.spell_signs`)


def shard_of(doc_id: str, shards: int) -> int:
    """The shard a document's passages go to: stable across builds, so an unchanged document keeps
    its shard (and its vectors are reused there)."""
    return int(hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:8], 16) % shards


def shard_folder(build: Path, shard: int) -> Path:
    return build / "shards" / f"{shard:02d}"


def retrieval_text(passage: Passage, title: str, with_context: bool) -> str:
    return passage.context(title) if with_context else passage.text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow")


class ModelInfo(_Strict):
    name: str
    dim: int = Field(gt=0)


class Calibration(_Strict):
    """What `qa calibrate` stored: the thresholds for ``model``, and the other fitted parts
    (the reader rule, the confidence, the relevance), kept as they were written."""

    model: str
    thresholds: dict[str, float]


class FileInfo(_Strict):
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


class Manifest(_Strict):
    """A build's manifest.json, checked field by field when read (``IndexFolder.read_manifest``) and
    passed on typed; fields it does not name are kept (``to_json``)."""

    format_version: int
    model: ModelInfo
    splitter: dict[str, Any]
    keywords: dict[str, Any]
    faiss: dict[str, str]
    documents: dict[str, dict[str, Any]]
    corpus_fingerprint: str
    skipped: list[str] = []
    fingerprint: str = Field(min_length=12)
    built_at: str  # ISO 8601, as the build wrote it

    @field_validator("built_at")
    @classmethod
    def _a_time(cls, value: str) -> str:
        datetime.fromisoformat(value)  # ValueError: not a time
        return value

    passages: int = Field(ge=0)
    sentences: int = Field(ge=0)
    files: dict[str, FileInfo]
    calibration: Calibration | None = None
    shards: int = Field(default=1, ge=1)  # a sharded build's count, in its manifest for the whole corpus
    shard: dict[str, int] | None = None  # a shard's own manifest: {"index": i, "of": K}

    def to_json(self) -> dict[str, Any]:
        """As written to manifest.json (the fields it does not name included)."""
        return self.model_dump(mode="json", exclude_unset=True)


DOCUMENT_ROW = TypeAdapter(Document)  # a documents.jsonl row is a Document's fields


class PassageRow(_Strict):
    id: str
    doc_id: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    heading: str
    sentences: list[tuple[int, int]]


class LexiconRow(_Strict):
    doc_freq: dict[str, int]
    n_docs: int = Field(ge=0)
    words: list[str]


def first_error(error: ValidationError) -> str:
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


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
