"""The question as the retrievers see it, and the two retrievers: dense (FAISS) and keyword (BM25).

What they find is a pool of candidate passages; qa/ranking.py scores and orders it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from qa.errors import quoted
from qa.index import LoadedIndex
from qa.terms import QueryWord


@dataclass(frozen=True)
class Query:
    """A question as the retrievers see it."""

    text: str  # as prepared for retrieval (qa/question.py): what is analysed and encoded
    vector: np.ndarray  # normalised, shape (dim,)
    terms: list[str]  # stemmed content words, for BM25
    words: list[QueryWord] = field(default_factory=list)  # content words with vectors, for coverage
    asked: str = ""  # the question as the user wrote it (echoed in the answer); text when empty

    @property
    def question(self) -> str:
        return self.asked or self.text


# Document fields a scope can match on (front matter and what the readers find); the API's
# filter model takes its keys from here.
ScopeField = Literal["title", "source", "published", "format", "path"]


@dataclass(frozen=True)
class Scope:
    """The part of the corpus a question is asked within: documents by id, and documents whose
    metadata fields equal the values given (all of them). Applied inside retrieval, so the
    candidates, and the citations, are all from the scope."""

    doc_ids: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, doc_ids: list[str] | None = None, metadata: dict[str, str] | None = None) -> Scope | None:
        """None when nothing restricts the question. A metadata field documents do not have is a
        ValueError (the API's schema refuses it first)."""
        unknown = sorted(set(metadata or {}) - set(get_args(ScopeField)))
        if unknown:
            raise ValueError(
                f"documents cannot be filtered by {', '.join(unknown)}: use {', '.join(get_args(ScopeField))}"
            )
        scope = cls(tuple(sorted(set(doc_ids or ()))), tuple(sorted((metadata or {}).items())))
        return scope if scope.doc_ids or scope.metadata else None

    def documents(self, index: LoadedIndex) -> list[str]:
        """Ids of the documents in the scope."""
        ids = self.doc_ids or tuple(index.documents)
        return [
            doc_id
            for doc_id in ids
            if doc_id in index.documents
            and all(str(getattr(index.documents[doc_id], f) or "") == v for f, v in self.metadata)
        ]

    def positions(self, index: LoadedIndex) -> np.ndarray:
        """Rows of the passages in the scope."""
        return np.array(
            sorted(index.positions[p] for d in self.documents(index) for p in index.by_document.get(d, [])),
            dtype=np.int64,
        )

    def to_json(self) -> dict[str, object]:
        return {"doc_ids": list(self.doc_ids), "metadata": dict(self.metadata)}

    def describe(self) -> str:
        """In words, for messages (the client's values cut short): "documents 'a', 'b' and format = 'pdf'"."""
        ids = ", ".join(quoted(i) for i in self.doc_ids[:5]) + (", …" if len(self.doc_ids) > 5 else "")
        parts = [("documents " if len(self.doc_ids) > 1 else "document ") + ids] if self.doc_ids else []
        return " and ".join([*parts, *(f"{field} = {quoted(value)}" for field, value in self.metadata)])


@dataclass(frozen=True)
class Pool:
    """The candidates the retrievers found: their rows in the index, in order, with their raw BM25
    scores and their 1-based rank in each retriever's list (0: not found by that retriever)."""

    positions: np.ndarray
    bm25: np.ndarray
    ranks: dict[str, np.ndarray]
    # Each passage's sentences scored (qa/ranking.py's SentenceScore), when the reranking has scored
    # them already: the answer-sentence signal reads them instead of scoring them again.
    sentences: list[list[Any]] | None = None


def retrieve(
    index: LoadedIndex,
    query: Query,
    candidates: int,
    retrievers: set[str],
    allowed: np.ndarray | None = None,
) -> Pool | None:
    """The union of the dense retriever's (FAISS) and the keyword retriever's (BM25) first
    ``candidates`` passages, of those in ``retrievers`` ("dense", "bm25"), among the ``allowed``
    rows when given (a scope: only their vectors are searched, only they are scored by BM25); None
    when both find none."""
    n = len(index.passages) if allowed is None else len(allowed)
    if n == 0:
        return None
    k = min(candidates, n)
    dense_rank: dict[int, int] = {}
    if "dense" in retrievers:
        ids = _nearest(index, query, k, allowed)
        # FAISS pads with -1 when fewer than k vectors are found.
        dense_rank = {int(i): r + 1 for r, i in enumerate(ids[0]) if i >= 0}
    total = len(index.passages)
    bm25_scores = np.zeros(total, dtype=np.float32)
    bm25_rank: dict[int, int] = {}
    if "bm25" in retrievers and query.terms and index.bm25 is not None:
        bm25_scores = np.asarray(index.bm25.get_scores(query.terms), dtype=np.float32)
        if allowed is not None:
            outside = np.ones(total, dtype=bool)
            outside[allowed] = False
            bm25_scores[outside] = 0.0
        top = np.argpartition(-bm25_scores, k - 1)[:k] if k < total else np.arange(total)
        top = top[np.argsort(-bm25_scores[top], kind="stable")]
        bm25_rank = {int(i): r + 1 for r, i in enumerate(top) if bm25_scores[i] > 0}
    positions = np.array(sorted(set(dense_rank) | set(bm25_rank)), dtype=np.int64)
    if len(positions) == 0:
        return None
    ranks = {
        name: np.array([found.get(int(p), 0) for p in positions], dtype=np.int64)
        for name, found in (("dense", dense_rank), ("bm25", bm25_rank))
        if name in retrievers
    }
    return Pool(positions, bm25_scores[positions], ranks)


def _nearest(index: LoadedIndex, query: Query, k: int, allowed: np.ndarray | None) -> np.ndarray:
    """Rows of the ``k`` passages nearest the question: FAISS over the whole index, or an exact
    search over the ``allowed`` rows (their vectors are in memory; an HNSW graph searched with a
    filter can return fewer than ``k``)."""
    if allowed is None:
        return index.dense.search(query.vector.reshape(1, -1), k)[1]
    scores = index.passage_vectors[allowed] @ query.vector
    best = np.argpartition(-scores, k - 1)[:k] if k < len(allowed) else np.arange(len(allowed))
    return allowed[best[np.argsort(-scores[best], kind="stable")]].reshape(1, -1)
