"""A loaded index: everything a question needs, in memory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import bm25s
import faiss
import numpy as np

from qa.corpus import Document
from qa.passages import Passage
from qa.store.format import Manifest, retrieval_text
from qa.terms import Lexicon, analyze


@dataclass
class LoadedIndex:
    """Everything a query needs, in memory. Immutable once loaded: a reload swaps a whole new one.
    What the question's stages read of an index; a sharded build's ``Catalog`` and a question's
    ``CandidateView`` over its shards are read the same way."""

    path: Path
    manifest: Manifest
    documents: dict[str, Document]
    passages: list[Passage]
    dense: faiss.Index | None  # None in a catalog and a candidate view: nothing to search there
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
        return self.manifest.shards

    def parts(self) -> tuple[LoadedIndex, ...]:
        """What holds the vectors: the shards of a sharded build, else the index itself."""
        return self.shards or (self,)

    @property
    def dim(self) -> int:
        return self.manifest.model.dim

    @property
    def fingerprint(self) -> str:
        return self.manifest.fingerprint

    @property
    def model(self) -> str:
        return self.manifest.model.name

    def age_seconds(self) -> float:
        return time.time() - datetime.fromisoformat(self.manifest.built_at).timestamp()

    def sentence_rows(self, positions: list[int] | np.ndarray) -> np.ndarray:
        """The sentence vectors of these passages, one after the other, as float32."""
        offsets = self.sentence_offsets
        if not len(positions):
            return np.zeros((0, self.dim), np.float32)
        rows = np.concatenate([np.arange(offsets[p], offsets[p + 1]) for p in positions])
        if self.sentence_map is not None:
            rows = self.sentence_map[rows]
        vectors = self.sentence_vectors[rows].astype(np.float32)
        return vectors if self.sentence_scales is None else vectors * self.sentence_scales[rows, None]

    def sentence_counts(self, positions: list[int] | np.ndarray) -> np.ndarray:
        return np.diff(self.sentence_offsets)[positions]

    def passage_similarities(self, positions: list[int] | np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The cosine of each of these passages with a question's vector."""
        return self.passage_vectors[positions] @ vector

    def sentence_similarities(self, positions: list[int] | np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The cosine of each sentence of these passages with a question's vector, one passage
        after the other."""
        return self.sentence_rows(positions) @ vector


class Catalog(LoadedIndex):
    """A sharded build as its router holds it: the whole corpus' documents, passages and lexicon,
    no vectors and no search structures (its shards hold those; qa/shards.py searches them)."""


@dataclass
class CandidateView(LoadedIndex):
    """A sharded question's merged candidates (qa/shards.py's ``merge``): their passages with the
    catalog's documents and lexicon, and nothing to search — retrieval is done; the stages after it
    read this as they read one index. No vectors: the shards sent each passage's and sentence's
    cosine with the question instead (a float where a vector was 384), so it answers for that
    question's vector only."""

    query_vector: np.ndarray | None = None
    passage_scores: np.ndarray | None = None  # the cosine of each passage with the question
    sentence_scores: np.ndarray | None = None  # of each sentence, in sentence_offsets' rows

    def _check(self, vector: np.ndarray) -> None:
        mine = self.query_vector
        if vector is not mine and (mine is None or not np.array_equal(vector, mine)):
            raise ValueError("a candidate view holds the similarities of its own question's vector only")

    def passage_similarities(self, positions: list[int] | np.ndarray, vector: np.ndarray) -> np.ndarray:
        self._check(vector)
        assert self.passage_scores is not None
        return self.passage_scores[positions]

    def sentence_similarities(self, positions: list[int] | np.ndarray, vector: np.ndarray) -> np.ndarray:
        self._check(vector)
        assert self.sentence_scores is not None
        offsets = self.sentence_offsets
        if not len(positions):
            return np.zeros(0, np.float32)
        return np.concatenate([self.sentence_scores[offsets[p] : offsets[p + 1]] for p in positions])
