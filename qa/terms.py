"""Keyword analysis shared by the BM25 index and answer scoring: lowercase, stop words, Snowball stems."""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

import bm25s
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

STEMMER_LANGUAGE = "english"
# The NLTK English list: it includes question words (who, what, how), which carry no topic.
STOPWORDS = list(STOPWORDS_EN_PLUS)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer(STEMMER_LANGUAGE)


def analyze(texts: list[str]) -> list[list[str]]:
    """Stemmed content words of each text (bm25s' tokenizer with PyStemmer)."""
    tokens = bm25s.tokenize(
        texts, stopwords=STOPWORDS, stemmer=_stemmer(), return_ids=False, show_progress=False
    )
    return [list(words) for words in tokens]


def analyze_one(text: str) -> list[str]:
    return analyze([text])[0]


class TermWeights:
    """Inverse document frequency over passages; a word the corpus never uses weighs the most."""

    def __init__(self, doc_freq: dict[str, int], n_docs: int) -> None:
        self.doc_freq = doc_freq
        self.n_docs = max(n_docs, 1)

    @classmethod
    def from_tokens(cls, token_lists: Iterable[list[str]]) -> TermWeights:
        doc_freq: dict[str, int] = {}
        n = 0
        for tokens in token_lists:
            n += 1
            for token in set(tokens):
                doc_freq[token] = doc_freq.get(token, 0) + 1
        return cls(doc_freq, n)

    def idf(self, term: str) -> float:
        # Smoothed so that a word in every passage still counts a little.
        return math.log(1.0 + (self.n_docs + 1) / (self.doc_freq.get(term, 0) + 0.5))

    def coverage(self, query_terms: list[str], text_terms: Iterable[str]) -> float:
        """Share of the query's IDF mass present in ``text_terms`` (1.0 when the query has no terms)."""
        unique = set(query_terms)
        total = sum(self.idf(t) for t in unique)
        if total == 0:
            return 1.0
        present = set(text_terms)
        return sum(self.idf(t) for t in unique if t in present) / total

    def unknown(self, query_terms: list[str]) -> list[str]:
        """Query words the corpus never uses."""
        return sorted({t for t in query_terms if t not in self.doc_freq})
