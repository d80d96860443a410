"""The first stage: the question made ready (qa/question.py: document phrases dropped, misspellings
matched), encoded, and each content word weighed (qa/terms.py) — the ``Query`` every later stage
reads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from cachetools import LRUCache

from qa.question import MAX_WORDS, Prepared, prepare
from qa.terms import QueryWord, analyze_one, content_words, stems

if TYPE_CHECKING:
    from qa.encoder import Encoder
    from qa.store import LoadedIndex


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


class QueryStage:
    """Questions made ready, encoded, and their words weighed; several questions in one encoder
    call (the evaluation and the benchmarks ask in batches)."""

    name = "query"

    def __init__(
        self,
        encoder: Encoder,
        *,
        prepare_questions: bool = True,
        word_weights: Literal["english", "corpus"] = "english",
    ) -> None:
        """``prepare_questions`` and ``word_weights`` other than the defaults are ablations
        (tools/signal_ablation.py): the question as typed, and each word weighed by its IDF over
        the corpus' passages instead of its rarity in general English."""
        self.encoder = encoder
        self.prepare_questions = prepare_questions
        self.word_weights = word_weights
        # Vectors of question words the corpus does not use, kept across questions and index versions.
        self._word_vectors: LRUCache[str, np.ndarray] = LRUCache(maxsize=20_000)
        self._lock = threading.Lock()  # cachetools caches are not thread-safe

    def warm_up(self) -> None:
        from qa.question import rarity

        rarity("the")  # loads wordfreq's English table now, not on the first question (half a second)

    def describe(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "about": "the question made ready, encoded, its words weighed",
            "model": getattr(self.encoder, "name", None),
        }

    def run(self, questions: list[str], index: LoadedIndex) -> list[Query]:
        """Prepare the questions, then encode them, and in the same encoder call their words the
        corpus does not use."""
        lexicon = index.lexicon
        prepared = [
            prepare(q, lexicon.words, lexicon.word_ids) if self.prepare_questions else Prepared(q, q, {})
            for q in questions
        ]
        words = [content_words(p.text)[:MAX_WORDS] for p in prepared]
        unknown = {w for ws in words for w in ws if w not in lexicon.word_ids}
        with self._lock:
            fresh = {w: v for w in unknown if (v := self._word_vectors.get(w)) is not None}
        new_words = sorted(unknown - set(fresh))
        vectors = self.encoder.encode([*(p.text for p in prepared), *new_words])
        with self._lock:
            for w, v in zip(new_words, vectors[len(questions) :]):
                fresh[w] = self._word_vectors[w] = v
        result = []
        for ready, vector, qwords in zip(prepared, vectors, words):
            word_vectors = [
                lexicon.vectors[lexicon.word_ids[w]] if w in lexicon.word_ids else fresh[w] for w in qwords
            ]
            query_words = []
            for w, s, v in zip(qwords, stems(qwords), word_vectors):
                rank_weight = lexicon.rank_weigh(s, v, vector)
                weight = lexicon.weigh(w, v, vector) if self.word_weights == "english" else rank_weight
                query_words.append(QueryWord(w, s, v, weight, rank_weight))
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
