"""The index: its layout on disk, its manifest checks, and loading it for queries (qa/build.py builds it).

Layout of the index folder::

    index/current -> builds/<id>     symlink, swapped atomically when a build completes
    index/builds/<id>/manifest.json  model, splitter, per-document hashes, fingerprints, calibration
                     documents.jsonl the documents' texts as indexed (offsets point into these)
                     passages.jsonl  passages with their sentence offsets
                     dense.faiss     passage vectors (normalised; inner product = cosine)
                     sentences.npy   sentence vectors (float16) for answer-sentence scoring
                     bm25/           bm25s keyword index over title + headings + passage
                     lexicon.json    passage frequency of each stem, and the corpus' words
                     words.npy       a vector per word (float16), for soft word coverage
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import bm25s
import faiss
import numpy as np

from qa.config import Settings
from qa.corpus import Document, corpus_fingerprint
from qa.encoder import Encoder
from qa.errors import IndexCorrupt, IndexMismatch, IndexMissing, QAError
from qa.passages import Passage, Sentence
from qa.terms import STEMMER_LANGUAGE, Lexicon, analyze

FORMAT_VERSION = 1


@dataclass
class LoadedIndex:
    """Everything a query needs, in memory. Immutable once loaded: a reload swaps a whole new one."""

    path: Path
    manifest: dict
    documents: dict[str, Document]
    passages: list[Passage]
    dense: faiss.Index
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    sentence_offsets: np.ndarray  # passage i owns sentence rows [offsets[i], offsets[i + 1])
    bm25: bm25s.BM25
    lexicon: Lexicon
    with_context: bool = True  # passages were indexed with their title and headings
    stamp: tuple[Path, int] | None = None  # build_stamp() of what was loaded
    positions: dict[str, int] = field(default_factory=dict)
    # Per passage, for each sentence: its stems (with the section heading's, its context) and word ids.
    # Filled on first use, so a large index loads fast and pays only for passages that get asked about.
    _sentence_terms: dict[int, list[tuple[set[str], np.ndarray]]] = field(default_factory=dict)
    _passage_terms: dict[int, tuple[set[str], np.ndarray]] = field(default_factory=dict)

    by_document: dict[str, list[str]] = field(default_factory=dict)  # passage ids of each document

    def __post_init__(self) -> None:
        self.positions = {p.passage_id: i for i, p in enumerate(self.passages)}
        for passage in self.passages:
            self.by_document.setdefault(passage.doc_id, []).append(passage.passage_id)

    def passage_terms(self, position: int) -> tuple[set[str], np.ndarray]:
        """Stems and lexicon word ids of what retrieval saw of a passage (title + headings + text)."""
        terms = self._passage_terms.get(position)
        if terms is None:
            passage = self.passages[position]
            text = retrieval_text(passage, self.documents[passage.doc_id].title, self.with_context)
            terms = (set(analyze([text])[0]), self.lexicon.ids(text))
            self._passage_terms[position] = terms
        return terms

    def sentence_terms(self, position: int) -> list[tuple[set[str], np.ndarray]]:
        terms = self._sentence_terms.get(position)
        if terms is None:
            passage = self.passages[position]
            text = self.documents[passage.doc_id].text
            sentences = [text[s.start : s.end] for s in passage.sentences]
            heading = set(analyze([passage.heading])[0]) if passage.heading else set()
            terms = [
                (set(stems) | heading, self.lexicon.ids(sentence))
                for stems, sentence in zip(analyze(sentences), sentences)
            ]
            self._sentence_terms[position] = terms  # a dict assignment is atomic: safe across threads
        return terms

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
        rows = [self.sentence_vectors[offsets[p] : offsets[p + 1]] for p in positions]
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, self.dense.d), np.float32)

    def sentence_counts(self, positions: list[int] | np.ndarray) -> np.ndarray:
        return np.diff(self.sentence_offsets)[positions]


def splitter_settings(settings: Settings) -> dict[str, object]:
    return {
        "passage_max_chars": settings.passage_max_chars,
        "passage_context": settings.passage_context,
        "sentences": "pysbd",
        "version": 1,
    }


def keyword_settings(settings: Settings) -> dict[str, object]:
    """How passages become keyword-index terms and BM25 scores; a change means a rebuild."""
    return {
        "stemmer": STEMMER_LANGUAGE,
        "stopwords": "nltk-english",
        "bm25_k1": settings.bm25_k1,
        "bm25_b": settings.bm25_b,
    }


def retrieval_text(passage: Passage, title: str, with_context: bool) -> str:
    return passage.context(title) if with_context else passage.text


def current_path(index_dir: Path) -> Path:
    return index_dir / "current"


def build_stamp(index_dir: Path) -> tuple[Path, int] | None:
    """Which build ``current`` points to and when its manifest last changed (a new build, or new
    thresholds from `qa calibrate`); None without one."""
    build = current_path(index_dir).resolve()
    try:
        return build, (build / "manifest.json").stat().st_mtime_ns
    except OSError:
        return None


def read_manifest(index_dir: Path) -> dict:
    path = current_path(index_dir) / "manifest.json"
    if not path.exists():
        raise IndexMissing(index_dir)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise IndexCorrupt(path, str(error)) from error
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"index format {manifest.get('format_version') if isinstance(manifest, dict) else '?'} "
            f"is not {FORMAT_VERSION}; rebuild it with `qa index`"
        )
    return manifest


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


def check(settings: Settings, encoder_name: str | None = None) -> str | None:
    """None when the index is present and current, else a one-line reason."""
    try:
        manifest = read_manifest(settings.index_dir)
    except QAError as error:
        return str(error)
    if encoder_name is not None and manifest["model"]["name"] != encoder_name:
        return f"index was built with model {manifest['model']['name']}, configured {encoder_name}"
    return staleness(settings, manifest)


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


def load_index(index_dir: Path, encoder: Encoder | None = None) -> LoadedIndex:
    """Load the current build; refuse one made with another model or format, or with broken files."""
    stamp = build_stamp(index_dir)  # before reading: a manifest rewritten meanwhile reads as newer
    manifest = read_manifest(index_dir)
    if encoder is not None:
        check_compatible(manifest, encoder)
    path = current_path(index_dir).resolve()

    def read(name: str, reader: Callable[[Path], object]) -> object:
        file = path / name
        try:
            return reader(file)
        except Exception as error:  # any failure to parse a file means the same to the operator
            raise IndexCorrupt(file, f"{type(error).__name__}: {error}") from error

    documents = {
        d["doc_id"]: Document(**d)
        for d in read("documents.jsonl", lambda f: [json.loads(x) for x in f.open(encoding="utf-8")])  # type: ignore[union-attr]
    }
    rows = read("passages.jsonl", lambda f: [json.loads(x) for x in f.open(encoding="utf-8")])
    passages = [
        Passage(
            passage_id=r["id"],
            doc_id=r["doc_id"],
            start=r["start"],
            end=r["end"],
            text=documents[r["doc_id"]].text[r["start"] : r["end"]],
            heading=r["heading"],
            sentences=tuple(Sentence(s, e) for s, e in r["sentences"]),
        )
        for r in rows  # type: ignore[union-attr]
    ]
    dense = read("dense.faiss", lambda f: faiss.read_index(str(f)))
    sentence_vectors = read("sentences.npy", lambda f: np.load(f, allow_pickle=False))
    bm25 = read("bm25", lambda f: bm25s.BM25.load(str(f)))
    lexicon_data = read("lexicon.json", lambda f: json.loads(f.read_text(encoding="utf-8")))
    word_vectors = read("words.npy", lambda f: np.load(f, allow_pickle=False))
    assert isinstance(dense, faiss.Index) and isinstance(sentence_vectors, np.ndarray)
    n_sentences = sum(len(p.sentences) for p in passages)
    if dense.ntotal != len(passages) or dense.d != manifest["model"]["dim"]:
        raise IndexCorrupt(path / "dense.faiss", f"{dense.ntotal} vectors for {len(passages)} passages")
    if sentence_vectors.shape != (n_sentences, dense.d):
        raise IndexCorrupt(path / "sentences.npy", f"shape {sentence_vectors.shape}")
    assert isinstance(lexicon_data, dict) and isinstance(word_vectors, np.ndarray)
    if word_vectors.shape != (len(lexicon_data["words"]), dense.d):
        raise IndexCorrupt(path / "words.npy", f"shape {word_vectors.shape}")
    lexicon = Lexicon(
        lexicon_data["doc_freq"],
        lexicon_data["n_docs"],
        lexicon_data["words"],
        word_vectors.astype(np.float32),
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
        sentence_vectors=sentence_vectors,  # float16 in memory too: a passage's rows are cast per query
        sentence_offsets=offsets,
        bm25=bm25,  # type: ignore[arg-type]
        lexicon=lexicon,
        with_context=with_context,
        stamp=stamp,
    )
