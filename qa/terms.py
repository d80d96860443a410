"""Keyword analysis shared by the BM25 index and answer scoring: lowercase, stop words, Snowball stems,
and the soft word coverage that tells whether a passage speaks of what the question asks."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

from qa.answer_type import (
    NUMBER_WORDS,
    compared_quantities,
    is_number,
    is_value_word,
    leading_number,
    states_a_limit,
)
from qa.question import rarity

STEMMER_LANGUAGE = "english"
# Snowball keeps the "s" of a plural without a vowel ("DVDs", "PCs", "TVs" stem to "dvds"), so an
# acronym and its plural had two stems; such a stem loses its "s" ("dvd"). Part of the keyword-index
# settings: an index built with Snowball's stems alone is rebuilt.
ACRONYM_PLURALS = "singular"
_ACRONYM_PLURAL = re.compile(r"[b-df-hj-np-tv-xz]{2,}s")
# The NLTK English list: it includes question words (who, what, how), which carry no topic.
STOPWORDS = list(STOPWORDS_EN_PLUS)
_STOPSET = frozenset(STOPWORDS)
_WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s' token pattern

# A question word missing from a passage counts as present in proportion to its best cosine with a
# word of the passage: not at all below SOFT_LOW, fully from SOFT_HIGH ("centres" ~ "centers").
# Except a value ("1837" and "1835", "east" and "west": close as vectors, never the same fact,
# `answer_type.is_value_word`): it counts only where the text holds it (a number however written,
# `_holds`).
SOFT_LOW = 0.5
SOFT_HIGH = 0.8
_DECADE = re.compile(r"(\d{3}|\d)0s")  # "1960s", "60s"

# Signs a text writes for a word a question spells out: "$136 billion" answers "how many dollars",
# "30%" "what percent". Keyword analysis reads each as its word, in texts and in questions alike.
_SIGN_WORDS = {"$": "dollars", "%": "percent", "€": "euros", "£": "pounds", "¥": "yen", "₽": "rubles"}
_SIGN = re.compile("[" + re.escape("".join(_SIGN_WORDS)) + "]")


def spell_signs(text: str) -> str:
    """``text`` with each currency or percent sign written as its word ("$5" -> " dollars 5")."""
    return _SIGN.sub(lambda sign: f" {_SIGN_WORDS[sign[0]]} ", text)


class _Stemmer:
    """Snowball's English stems (PyStemmer), an acronym's plural stemmed as the acronym."""

    def __init__(self) -> None:
        self._snowball = Stemmer.Stemmer(STEMMER_LANGUAGE)

    def stemWords(self, words: list[str]) -> list[str]:  # the name bm25s and PyStemmer use
        return [
            stem[:-1] if _ACRONYM_PLURAL.fullmatch(stem) else stem for stem in self._snowball.stemWords(words)
        ]


_local = threading.local()


def _stemmer() -> _Stemmer:
    """One stemmer per thread: PyStemmer's must not be called from two threads at once."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = _Stemmer()
    return stemmer


def analyze(texts: list[str]) -> list[list[str]]:
    """Stemmed content words of each text (bm25s' tokenizer with PyStemmer)."""
    tokens = bm25s.tokenize(
        [spell_signs(text) for text in texts],
        stopwords=STOPWORDS,
        stemmer=_stemmer(),
        return_ids=False,
        show_progress=False,
    )
    return [list(words) for words in tokens]


def analyze_one(text: str) -> list[str]:
    return analyze([text])[0]


def content_words(text: str) -> list[str]:
    """Lowercased words of ``text`` that are not stop words, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(spell_signs(text).lower()):
        if word not in _STOPSET:
            seen.setdefault(word, None)
    return list(seen)


def stems(words: list[str]) -> list[str]:
    return _stemmer().stemWords(words)


def segment_max(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The maximum of each run of consecutive rows of ``values`` (runs of ``lengths`` rows, in
    order); 0 for an empty run. How a passage's best sentence or a text's closest word is found."""
    best = np.zeros((len(lengths), *values.shape[1:]), dtype=values.dtype)
    filled = lengths > 0
    if filled.any():
        best[filled] = np.maximum.reduceat(values, (np.cumsum(lengths) - lengths)[filled], axis=0)
    return best


@dataclass(frozen=True)
class QueryWord:
    word: str
    stem: str
    vector: np.ndarray
    weight: float  # whether the corpus can answer: rarity in English times closeness to the question
    rank_weight: float  # which passage or sentence answers: rarity in the corpus times closeness


# Number words, to compare with numbers written in figures ("4th" and "fourth", "17th" and "seventeenth").
_NUMBER_WORD_VALUES = {word: str(value) for word, value in NUMBER_WORDS.items()}
# and as texts hold them, stemmed ("twelv", "twenti")
_NUMBER_WORD_VALUES |= {
    stem: _NUMBER_WORD_VALUES[word]
    for word, stem in zip(_NUMBER_WORD_VALUES, stems(list(_NUMBER_WORD_VALUES)))
}
_LEADING_DIGITS = re.compile(r"\d+")


def _number(token: str) -> str | None:
    """The number a token writes: its leading figures ("30th", "1970s", "3d") or its number word."""
    figures = _LEADING_DIGITS.match(token)
    return figures[0] if figures else _NUMBER_WORD_VALUES.get(token)


def _in_decade(year: str, decade: str) -> bool:
    """Whether a year ("1974") falls in the decade or century a question writes as ``decade``, its
    figures before "0s": "197" ("1970s"), "7" ("70s"), "120" ("1200s": the century, as usually meant)."""
    if len(year) != 4:
        return False
    if len(decade) == 1:
        return year[2] == decade
    return year.startswith(decade[:2] if decade.endswith("0") else decade)


# A day of the week is held by a text naming the part of the week it falls in: "open at weekends"
# answers "are you open on Saturday?" (a day is a value, so no vector brings the two together); and
# a part of the week by a text naming one of its days: "Monday to Friday" answers "on weekdays?".
_PART_OF_WEEK = {
    **dict.fromkeys(("saturday", "sunday"), "weekend"),
    **dict.fromkeys(("monday", "tuesday", "wednesday", "thursday", "friday"), "weekday"),
}
_DAYS_OF = {part: {day for day, of in _PART_OF_WEEK.items() if of == part} for part in ("weekend", "weekday")}


def _holds(word: QueryWord, text_stems: set[str]) -> bool:
    """Whether a text holds the question's word as such: its stem; for a day, the part of the week
    it falls in ("weekends" for "Saturday"), and for a part of the week, one of its days ("Monday"
    for "weekdays"); for a number, the same number however written ("30th" and "30", "4th" and
    "fourth", "1970's" and "1970s") or a year of the decade or century asked for ("1965" for
    "1960s" or "60s", "1215" for "1200s")."""
    stem = word.stem.lower()
    if word.stem in text_stems or _PART_OF_WEEK.get(stem) in text_stems:
        return True
    if not _DAYS_OF.get(stem, set()).isdisjoint(text_stems):
        return True
    if not is_number(word.word):
        return False
    asked = _number(word.word)
    decade = _DECADE.fullmatch(word.word)
    for stem in text_stems:
        number = _number(stem)
        if number is not None and (number == asked or (decade is not None and _in_decade(number, decade[1]))):
            return True
    return False


class Lexicon:
    """The corpus vocabulary: passage frequency of each stem (IDF) and a vector for each word."""

    def __init__(self, doc_freq: dict[str, int], n_docs: int, words: list[str], vectors: np.ndarray) -> None:
        self.doc_freq = doc_freq
        self.n_docs = max(n_docs, 1)
        self.words = words
        self.word_ids = {w: i for i, w in enumerate(words)}
        self.vectors = vectors

    @staticmethod
    def count(token_lists: Iterable[list[str]]) -> tuple[dict[str, int], int]:
        doc_freq: dict[str, int] = {}
        n = 0
        for tokens in token_lists:
            n += 1
            for token in set(tokens):
                doc_freq[token] = doc_freq.get(token, 0) + 1
        return doc_freq, n

    def unknown(self, query_terms: Iterable[str]) -> list[str]:
        """Query stems the corpus never uses."""
        return sorted({t for t in query_terms if t not in self.doc_freq})

    def rank_weigh(self, stem: str, word_vector: np.ndarray, question_vector: np.ndarray) -> float:
        """IDF over the corpus' passages times closeness to the question: what tells one passage or
        sentence of this corpus from another (a word in every passage tells nothing)."""
        idf = math.log(1.0 + (self.n_docs + 1) / (self.doc_freq.get(stem, 0) + 0.5))
        return idf * max(0.05, float(word_vector @ question_vector))

    @staticmethod
    def weigh(word: str, word_vector: np.ndarray, question_vector: np.ndarray) -> float:
        """Rarity in general English times the word's cosine with the whole question: "budget" in
        "What is the budget of the task force?" weighs much more than "bring" in "How much will AI
        bring to the economy?", and an ordinary word the corpus happens not to use ("point") little."""
        return rarity(word) * max(0.05, float(word_vector @ question_vector))

    def ids(self, text: str) -> np.ndarray:
        return np.array([self.word_ids[w] for w in content_words(text) if w in self.word_ids], dtype=np.int64)

    def coverage(
        self, query: list[QueryWord], text_stems: set[str], text_word_ids: np.ndarray, ranking: bool = False
    ) -> float:
        """Weighted share of the question's words the text holds: exactly (same stem) or softly
        (a word of the text close in meaning). 1.0 for a question without content words."""
        return float(self.coverages(query, [(text_stems, text_word_ids)], ranking)[0])

    def coverages(
        self, query: list[QueryWord], texts: list[tuple[set[str], np.ndarray]], ranking: bool = False
    ) -> np.ndarray:
        """``coverage`` of several texts (the sentences of a passage, say) in one matrix product.
        ``ranking``: weigh the words by what tells this corpus' texts apart (``rank_weight``), to
        choose among them; otherwise by what they say in general (``weight``), to decide whether
        the best of them answers."""
        weights = np.array([word.rank_weight if ranking else word.weight for word in query], dtype=np.float32)
        total = float(weights.sum())
        if not query or total == 0 or not texts:
            return np.ones(len(texts))
        return (self.matches(query, texts) @ weights) / total

    @staticmethod
    def numbers_missing(
        query: list[QueryWord], text_stems: set[str], question: str = "", text: str = ""
    ) -> list[str]:
        """The numbers the question gives ("in 1837", "Apollo 13") that a text does not hold: a
        passage without them speaks of another year, another mission. But not a quantity held
        against a limit the text states: "Can my 15 year old use the sauna?" is answered by "The
        sauna is open to members over 18 only." without a 15."""
        missing = [w.word for w in query if is_number(w.word) and not _holds(w, text_stems)]
        compared = compared_quantities(question) if missing else set()
        if compared and states_a_limit(text):
            return [word for word in missing if leading_number(word) not in compared]
        return missing

    def matches(self, query: list[QueryWord], texts: list[tuple[set[str], np.ndarray]]) -> np.ndarray:
        """For each text and each question word, how far the text holds it: 1 for the same stem,
        else the closeness of its nearest word (0 below SOFT_LOW; always 0 for a value)."""
        exact = np.array([[_holds(word, stems) for word in query] for stems, _ in texts], dtype=np.float32)
        soft = np.zeros_like(exact)
        lengths = np.array([len(ids) for _, ids in texts])
        if lengths.sum() and query:
            # Each distinct word once: the texts of a passage share most of their words.
            distinct, rows = np.unique(np.concatenate([ids for _, ids in texts]), return_inverse=True)
            similarity = self.vectors[distinct] @ np.stack([word.vector for word in query]).T
            partial = np.clip((similarity - SOFT_LOW) / (SOFT_HIGH - SOFT_LOW), 0.0, 1.0)[rows]
            soft = segment_max(partial, lengths)  # the closest word of each text
            soft[:, [is_value_word(word.word) for word in query]] = 0.0
        return np.maximum(exact, soft)
