"""The question as people type it, made ready for retrieval: phrases about the document itself
dropped ("according to the article"), misspelt words matched to the corpus vocabulary, and each
word's weight taken from its rarity in general English rather than in one corpus.

A word's weight in the corpus alone (its IDF over a few passages) makes any word the corpus never
uses ("point", "plain", a typo) the heaviest of the question, so a question in other words than the
document's looked unanswerable. General English frequencies (wordfreq) say instead that "point" is
ordinary and "Nvidia" is a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process
from wordfreq import zipf_frequency

# Phrases that point at the document rather than at what is asked about. Removed before the
# question is analysed; the words left carry the question.
_DOCUMENT = r"(?:article|text|piece|document|documents|story|report|passage|author|writer|page|source)"
_ABOUT_DOCUMENT = re.compile(
    rf"\b(?:according to|based on|going by|as per|per) (?:the|this) {_DOCUMENT}\b,?"
    rf"|\b(?:in|from) (?:the|this) {_DOCUMENT}\b,?"
    rf"|\b(?:does|did|do) (?:the|this) {_DOCUMENT} (?:say|mention|state|tell us|tell|explain|describe|claim|report)(?: anything)?(?: about)?\b"
    rf"|\b(?:the|this) {_DOCUMENT} (?:says|mentions|states|claims|reports|describes)(?: that)?\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)

# Rarity in general English: wordfreq's Zipf scale is log10 of occurrences per billion words
# ("the" 7.7, "budget" 4.8, "Nvidia" 3.3, a misspelling 0-1). Weight = ZIPF_COMMON - zipf, kept
# in [RARITY_MIN, RARITY_MAX]: common words weigh little, names and terms much.
ZIPF_COMMON = 6.0
RARITY_MIN = 0.25
RARITY_MAX = 3.5
# A word rarer than this in English and absent from the corpus is taken for a misspelling of the
# closest corpus word, when one is at least TYPO_SIMILARITY (0-100, rapidfuzz's ratio) alike.
TYPO_ZIPF = 2.0
TYPO_SIMILARITY = 80
# The content words of a question that are analysed (typo matching, word vectors, coverage): the
# first this many. Questions people ask hold under 15; 142 nonsense words in a 1,000-character
# question made a question cost 30-40 times an ordinary one (a vector and a fuzzy search each).
MAX_WORDS = 24


@dataclass(frozen=True)
class Prepared:
    """The question as asked, and the text retrieval works on."""

    asked: str
    text: str  # phrases about the document removed, misspellings corrected
    corrections: dict[str, str]  # misspelt word -> corpus word


def strip_document_phrases(question: str) -> str:
    """Remove "according to the article", "does the piece say", ... and the spaces they leave."""
    stripped = _ABOUT_DOCUMENT.sub(" ", question)
    stripped = re.sub(r"\s+", " ", stripped).strip(" ,;:")
    return stripped if re.search(r"\w", stripped) else question


@lru_cache(maxsize=50_000)
def zipf(word: str) -> float:
    return zipf_frequency(word, "en")


def rarity(word: str) -> float:
    """How much a word tells, from its frequency in general English."""
    return min(RARITY_MAX, max(RARITY_MIN, ZIPF_COMMON - zipf(word)))


def correct(
    question: str, vocabulary: list[str], known: set[str] | dict[str, int]
) -> tuple[str, dict[str, str]]:
    """Replace each word that is neither English nor in the corpus by the closest corpus word."""
    corrections: dict[str, str] = {}
    for word in list(dict.fromkeys(_WORD.findall(question)))[:MAX_WORDS]:
        lower = word.lower()
        if lower in known or zipf(lower) >= TYPO_ZIPF:
            continue
        match = process.extractOne(lower, vocabulary, scorer=fuzz.ratio, score_cutoff=TYPO_SIMILARITY)
        if match is not None:
            corrections[word] = match[0]
    if not corrections:
        return question, corrections
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in corrections) + r")\b")
    return pattern.sub(lambda m: corrections[m.group(1)], question), corrections


def prepare(question: str, vocabulary: list[str], known: set[str] | dict[str, int]) -> Prepared:
    """What retrieval should read of a question."""
    text = strip_document_phrases(question)
    text, corrections = correct(text, vocabulary, known)
    return Prepared(question, text, corrections)
