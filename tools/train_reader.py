"""Train the reader: a cross-encoder that reads a question with one sentence and gives the
probability that the sentence states the answer.

Data: SQuAD v1.1 dev (public, CC BY-SA 4.0). The articles that are also in SQuAD v2.0 dev (35) are
the training side; the other 13 are never trained on (``qa bench removed`` reports on them). Per
training question:

- positive: the sentence holding the gold answer;
- the near-topic negatives: the sentences of the article closest to the question by the bi-encoder's
  cosine once every sentence holding a gold answer is removed — what the service finds when the
  documents do not say (the best one always, the second one half of the time);
- a random other sentence of the article, half of the time;
- with ``--cut``, the answer sentence itself with the clause holding the answer cut out (when the
  rest is still a sentence and holds no gold answer): every word of the question's subject is
  there, only the fact is missing;
- with ``--swap``, the answer sentence read with the question asked about something else: one of
  the question's names or numbers that the sentence holds replaced by another of the article's
  that the sentence does not ("Which network broadcast Super Bowl 50?" → "... Super Bowl 49?"):
  the sentence is on the question's subject and states a fact of its kind, not the one asked;
- with ``--made N``, about N more questions made by rule from the training articles' sentences (a
  name, year or number of a clause asked for: ``made_question``), each with its sentence as the
  positive and the same kinds of negatives as SQuAD's questions;
- with ``--written FILE``, questions written by hand about the training articles in other words
  than theirs (``tools/written_questions.jsonl``): an answerable one with the sentence holding its
  evidence as the positive and a random sentence as a negative, an unanswered one with its two
  nearest sentences and a random one as negatives (``written_pairs``);
- with ``--documents FILE...``, short documents written here with questions about them, read the
  same way (``tools/written_documents.jsonl``, ``tools/written_items.jsonl``); with ``--items
  FILE...``, documents that give a fact for one item and not for its siblings, whose answerable
  questions also take the nearest sentence without their evidence (a sibling's fact) as a negative;
- and each SQuAD v2.0 unanswerable question of a training article with the sentence of its
  paragraph closest to it (written to look answerable from that paragraph);
- with ``--hard-from READER``, the reader's own mistakes: of the ten sentences nearest the question
  by cosine that hold no gold answer (the candidates the service reads), those READER rates above
  ``--hard-above``, at most two, the highest first. Train them with ``--init`` from READER's weights
  for a further epoch. ``--rounds N`` does this within one run: after training, the reader just
  trained mines its own mistakes and trains ``--round-epochs`` further on them, N times.

SQuAD's questions share many words with their answer sentence, which teaches a model to count shared
words. Half of the questions are rewritten as people type: a shared lower-case word replaced by a
near neighbour from the bi-encoder's vectors of the commonest corpus words, or dropped; lower case
without a question mark; "according to the article" openings; a slipped letter. Names (capitalised
words) are kept: replacing them changes what is asked.

    python -m tools.train_reader SQUAD_V1_DEV SQUAD_V2_DEV --out DIR

Seeded: the same data, order and initialisation give the same weights. The result is exported to
ONNX with int8 weights (about 22 MiB); the service ships it in qa/models/reader (docs/reader.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.removed import article_sentences, gold_answers, load_split
from bench.squad import answer_scores
from qa.config import bundled_model_path
from qa.question import zipf
from qa.reader import second_text
from tools.synonyms import WordNet

PREFIXES = (
    "according to the article, ",
    "according to the text, ",
    "does the article say ",
    "in the piece, ",
    "the article says ",
)
_WORD = re.compile(r"[A-Za-z][a-z]{2,}")
# where a clause ends: punctuation, a dash between spaces, or a joining word
_JOINERS = "and|but|which|who|whom|whose|while|whereas|where|when"
_CLAUSE = re.compile(rf"[,;:]|\s[–—-]\s|\s(?:{_JOINERS})\s")
_JOINING = re.compile(rf"^(?:{_JOINERS})\s+")  # a clause's joining word


@dataclass(frozen=True)
class Pair:
    question: str
    sentence: str
    label: float
    kind: str  # positive | near | random | cut | swap | hard | unanswerable | made | polar | written (and their negatives)
    # the gold answer's characters in ``sentence`` (positives only): the span head learns to point
    # at it (the short answer)
    answer: tuple[int, int] | None = None
    golds: tuple[str, ...] = ()  # every gold answer text (positives): what the short answer is scored on
    context: str = ""  # the sentence before it in its paragraph (a reader trained with --context)

    @property
    def second(self) -> str:
        """What the reader reads with the question (qa/reader.py's ``second_text``)."""
        return second_text(self.sentence, self.context)


class Rewriter:
    """Questions as people type them, in other words than the sentence that answers them."""

    def __init__(
        self,
        words: list[str],
        vectors: np.ndarray,
        rng: random.Random,
        synonyms: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.rng = rng
        self.words = words
        self.ids = {w: i for i, w in enumerate(words)}
        self.vectors = vectors
        self.synonyms = synonyms
        self._neighbours: dict[str, list[str]] = {}

    def neighbours(self, word: str) -> list[str]:
        """Near words by the bi-encoder's cosine, not the same word in another form; with
        ``synonyms`` (``tools.synonyms.WordNet``), first the word's synonyms among the known words
        whose cosine is not far off (0.35: the sense the articles use)."""
        if word not in self._neighbours:
            found: list[str] = []
            if word in self.ids:
                vector = self.vectors[self.ids[word]]
                for other in self.synonyms(word) if self.synonyms else []:
                    if (
                        other in self.ids
                        and other[:4] != word[:4]
                        and self.vectors[self.ids[other]] @ vector > 0.35
                    ):
                        found.append(other)
                sims = self.vectors @ vector
                for i in np.argsort(-sims)[1:12]:
                    other = self.words[i]
                    if sims[i] > 0.55 and other[:4] != word[:4] and other not in found:
                        found.append(other)
            self._neighbours[word] = found[:5]
        return self._neighbours[word]

    def __call__(self, question: str, sentence: str) -> str:
        rng = self.rng
        shared = {w.lower() for w in _WORD.findall(sentence)}
        out = []
        for token in question.split():
            word = token.strip("?,.;:\"'()")
            if word.islower() and word in shared and len(word) > 3 and rng.random() < 0.6:
                near = self.neighbours(word)
                if near:
                    out.append(token.replace(word, rng.choice(near)))
                    continue
                if rng.random() < 0.3:
                    continue  # dropped
            out.append(token)
        text = " ".join(out) or question
        if rng.random() < 0.3:
            text = text.lower().rstrip("?").strip()
        if rng.random() < 0.1:
            text = rng.choice(PREFIXES) + text[:1].lower() + text[1:]
        if rng.random() < 0.1:
            words = text.split()
            long = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha()]
            if long:
                i = rng.choice(long)
                j = rng.randrange(1, len(words[i]) - 1)
                w = words[i]
                words[i] = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
                text = " ".join(words)
        return text


def without_answer(sentence: str, span: tuple[int, int], golds: tuple[str, ...]) -> str | None:
    """``sentence`` with the clause holding ``span`` cut out, or None when what is left is not
    much of a sentence (under six words, or under half of it) or still holds a gold answer."""
    begin, end = span
    cuts = [0, *(m.start() for m in _CLAUSE.finditer(sentence)), len(sentence)]
    left = max(c for c in cuts if c <= begin)
    right = min(c for c in cuts if c >= end)
    rest = f"{sentence[:left].rstrip(' ,;:')} {sentence[right:].lstrip(' ,;:')}".strip()
    rest = re.sub(r"\s+([,.;:])", r"\1", rest)
    if len(rest.split()) < 6 or len(rest) < len(sentence) / 2:
        return None
    folded = " ".join(rest.lower().split())
    if any(" ".join(g.lower().split()) in folded for g in golds):
        return None
    if rest[-1] not in ".!?":
        rest += "."
    return rest[:1].upper() + rest[1:]


# a name (capitalised words in a row) or a number; a match at the start of a text is left out (its
# first word is capitalised whatever it is)
_NAME_OR_NUMBER = re.compile(r"\b(?:[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*|\d[\d,.]*\d|\d)\b")


def names_and_numbers(text: str) -> list[str]:
    return [m.group() for m in _NAME_OR_NUMBER.finditer(text) if m.start() > 0]


def swapped(question: str, sentence: str, article_names: list[str], rng: random.Random) -> str | None:
    """``question`` with one name or number (not its first word) that ``sentence`` also holds
    replaced by another of the same kind from ``article_names`` that the sentence does not hold and
    that shares no word with it; None when it has none."""
    places = [m for m in _NAME_OR_NUMBER.finditer(question) if m.start() > 0 and m.group() in sentence]
    if not places:
        return None
    place = rng.choice(places)
    numeric = place.group()[0].isdigit()
    words = set(place.group().split())
    others = [
        w
        for w in article_names
        if w[0].isdigit() == numeric and w not in sentence and not words & set(w.split())
    ]
    if not others:
        return None
    return question[: place.start()] + rng.choice(others) + question[place.end() :]


_YEAR = re.compile(r"1[0-9]{3}|20[0-9]{2}")


def made_question(sentence: str, rng: random.Random) -> tuple[str, tuple[int, int]] | None:
    """A question made by rule from ``sentence``: in the clause holding one of its names or numbers
    (not its first word), that value replaced by what is asked for it ("what" for a name, "when" for
    a year, "how many" for another number), as people type a question about a fact they half
    remember ("The Broncos defeated the Panthers in 2016." → "The Broncos defeated the Panthers in
    when?"); with the value's characters in the sentence (the answer). None when the sentence has
    no such value or the question would be under six words."""
    places = [
        m
        for m in _NAME_OR_NUMBER.finditer(sentence)
        if m.start() > 0
        and sentence[m.start() - 1] not in "(–-/"
        and sentence[m.end() : m.end() + 1] not in "–-/)"
    ]
    if not places:
        return None
    place = rng.choice(places)
    value = place.group()
    if _YEAR.fullmatch(value):
        asked = "when"
    elif value[0].isdigit():
        asked = "how many"
    else:
        asked = "what"
    cuts = [0, *(m.start() for m in _CLAUSE.finditer(sentence)), len(sentence)]
    left = max(c for c in cuts if c <= place.start())
    right = min(c for c in cuts if c >= place.end())
    before = sentence[left : place.start()].lstrip(" ,;:–—-")
    after = sentence[place.end() : right].rstrip(" ,;:.!?")
    before = _JOINING.sub("", before)  # "while Danny ... ranked" → "Danny ... ranked"
    before = re.sub(r"(?i)\b(?:the|an?)\s+$", "", before)  # "the what sided with" → "what sided with"
    question = f"{before}{asked}{after}".strip()
    if len(question.split()) < 6:
        return None
    return question[:1].upper() + question[1:] + "?", (place.start(), place.end())


_AUXILIARIES = "is|are|was|were|has|have|had|can|could|will|would|should|may|might|must"
# A sentence's first clause as subject, auxiliary and the rest: "The museum was founded in 1852 by ..."
_POLAR = re.compile(
    rf"^(?P<subject>[A-Z][^,;:()–—]{{1,60}}?)\s(?P<aux>{_AUXILIARIES})\s(?P<rest>[^,;:()–—]+)"
)
_BECAUSE = re.compile(r"\s(?:because(?: of)?|due to|in order to|so that|to ensure|as a result of)\s")
_NOT_A_SUBJECT = re.compile(
    r"(?i)^(?:in|on|at|after|before|during|since|by|for|from|with|when|while|although|if|as|however|"
    r"it|there|this|these|that|those|he|she|they|we|thus|hence|also|therefore|moreover|most|some|many|"
    r"any|another|such|other|each|both|all|one)\b|\b(?:who|which|that|whose)\b"
)
_DETERMINERS = frozenset("the a an its his her their".split())


def polar_question(sentence: str, rng: random.Random) -> tuple[str, tuple[int, int]] | None:
    """A why or yes/no question made by rule from ``sentence`` (SQuAD has few of either), by
    putting its first clause's auxiliary first: "The museum was founded in 1852 by Henry Cole." →
    "Was the museum founded in 1852 by Henry Cole?"; with a "because", "due to", "to ensure" ...
    in that clause, the why question of what comes before it ("Why was the museum closed to
    visitors?"). With the characters of one name, number or word of what it asks about, which the
    nearest sentences made its negatives must not hold. None when the sentence does not start so
    plainly."""
    match = _POLAR.match(sentence)
    if match is None or _NOT_A_SUBJECT.search(match["subject"]) or len(match["subject"].split()) > 6:
        return None
    subject, aux, rest = match["subject"], match["aux"], match["rest"].rstrip(" .!?")
    if aux in ("has", "have", "had") and not re.match(r"(?:been|\w+(?:ed|en))\b", rest):
        return None  # "had a long history": the main verb, not an auxiliary
    because = _BECAUSE.search(rest)
    asked, why = (rest[: because.start()], rest[because.end() :]) if because else (rest, rest)
    if len(asked.split()) < 2 or len(why.split()) < 2:
        return None
    offset = match.start("rest") + (because.end() if because else 0)
    values = list(_NAME_OR_NUMBER.finditer(why)) or [m for m in re.finditer(r"[A-Za-z]{6,}", why)]
    if not values:
        return None
    value = rng.choice(values)
    words = subject.split()
    first = words[0]
    named = len(words) > 1 and words[1][:1].isupper()  # "Marco Polo's"
    if first.lower() in _DETERMINERS or (zipf(first.lower()) >= 3.5 and not named):  # "The museum", "Oxygen"
        subject = first.lower() + subject[len(first) :]
    question = (
        f"Why {aux} {subject} {asked.strip()}?"
        if because
        else f"{aux.capitalize()} {subject} {asked.strip()}?"
    )
    return question, (offset + value.start(), offset + value.end())


def training_pairs(
    train_v1: list[dict[str, Any]],
    train_v2: list[dict[str, Any]],
    encoder: Any,
    seed: int,
    rewrite: float = 0.5,
    context: bool = False,
    cut: float = 0.0,
    miner: Any = None,
    hard_above: float = 0.28,
    swap: float = 0.0,
    made: int = 0,
    synonyms: Callable[[str], list[str]] | None = None,
    polar: int = 0,
    written: list[dict[str, Any]] | None = None,
    written_repeat: int = 1,
    documents: list[dict[str, Any]] | None = None,
) -> list[Pair]:
    """The pairs described above; ``rewrite``: the share of questions rewritten; ``context``: each
    sentence with the one before it in its paragraph (as the service reads a passage's sentence
    with the one before it), whatever that one holds; ``cut``: the share of answer sentences also
    read with the answer's clause cut out, as a negative; ``miner``: a reader whose mistakes are
    added as "hard" negatives (the near-topic sentences it rates above ``hard_above``); ``swap``: the
    share of answer sentences also read, as a negative, with the question asked about another name
    or number of the article (``swapped``); ``made``: about this many questions made by rule from the
    articles' sentences (``made_question``), each with its sentence as the positive and the same
    negatives as SQuAD's questions (the nearest sentences that do not hold the value asked for);
    ``polar``: the same for about this many why and yes/no questions (``polar_question``);
    ``written``: questions written by hand about the training articles (``written_pairs``), each of
    their pairs ``written_repeat`` times; ``documents``: more articles (``load_documents``), read for
    their ``written`` questions only."""
    rng = random.Random(seed)
    cut_rng = random.Random(seed + 1)  # its own: the other pairs stay those drawn without --cut
    swap_rng = random.Random(seed + 2)  # the same for --swap
    made_rng = random.Random(seed + 3)  # and for --made
    polar_rng = random.Random(seed + 4)  # and for --polar
    written_rng = random.Random(seed + 5)  # and for --written
    written_by_title: dict[str, list[dict[str, Any]]] = {}
    for item in written or []:
        written_by_title.setdefault(item["article"], []).append(item)
    articles = [(a, article_sentences(a)) for a in train_v1]
    texts = [s.text for _, sentences in articles for s in sentences]
    counts = Counter(w.lower() for t in texts for w in _WORD.findall(t))
    common = [w for w, _ in counts.most_common(15_000)]
    print(f"embedding {len(texts)} sentences and {len(common)} words ...", file=sys.stderr, flush=True)
    sentence_vectors = encoder.encode(texts)
    word_vectors = encoder.encode(common)
    rewriter = Rewriter(common, word_vectors, rng, synonyms)
    made_rewriter = Rewriter(common, word_vectors, made_rng, synonyms)
    made_share = made / max(1, len(texts))
    polar_rewriter = Rewriter(common, word_vectors, polar_rng, synonyms)
    # polar_question makes a question of about one sentence in five
    polar_share = min(1.0, 5 * polar / max(1, len(texts)))
    pairs: list[Pair] = []
    row = 0
    for article, sentences in articles:
        before = _previous(sentences) if context else [""] * len(sentences)
        names = sorted({w for s in sentences for w in names_and_numbers(s.text)})
        vectors = sentence_vectors[row : row + len(sentences)]
        row += len(sentences)
        items = [(qa, number) for number, p in enumerate(article["paragraphs"]) for qa in p["qas"]]
        question_vectors = encoder.encode([qa["question"] for qa, _ in items])
        for (qa, number), qvec in zip(items, question_vectors):
            answers = gold_answers(qa)
            start = qa["answers"][0]["answer_start"]
            positive = [s for s in sentences if s.paragraph == number and s.start <= start < s.end]
            if not positive or not answers:
                continue
            kept = [i for i, s in enumerate(sentences) if s is not positive[0] and not s.holds(answers)]
            question = qa["question"].strip()
            if rng.random() < rewrite:
                question = rewriter(question, positive[0].text)
            offset = start - positive[0].start
            answer_text = qa["answers"][0]["text"]
            span = (
                (offset, offset + len(answer_text))
                if offset + len(answer_text) <= len(positive[0].text)
                else None
            )
            first = sentences.index(positive[0])
            golds = tuple(x["text"] for x in qa["answers"])
            pairs.append(Pair(question, positive[0].text, 1.0, "positive", span, golds, before[first]))
            if swap and swap_rng.random() < swap:
                asked_else = swapped(question, positive[0].text, names, swap_rng)
                if asked_else is not None:
                    pairs.append(Pair(asked_else, positive[0].text, 0.0, "swap", context=before[first]))
            if span is not None and cut_rng.random() < cut:
                rest = without_answer(positive[0].text, span, golds)
                if rest is not None:
                    pairs.append(Pair(question, rest, 0.0, "cut", context=before[first]))
            if not kept:
                continue
            order = sorted(kept, key=lambda i: -float(vectors[i] @ qvec))
            if miner is not None:
                nearest = order[:10]
                pairs += _mistakes(
                    miner,
                    question,
                    [sentences[i].text for i in nearest],
                    [before[i] for i in nearest],
                    hard_above,
                )
            pairs += _negatives(question, sentences, before, order, kept, rng)
        if made:
            pairs += _made_pairs(sentences, vectors, before, encoder, made_share, made_rewriter, rewrite)
        if article["title"] in written_by_title:
            asked = written_pairs(
                written_by_title[article["title"]], article, sentences, vectors, before, encoder, written_rng
            )
            pairs += asked * written_repeat
        if polar:
            pairs += _made_pairs(
                sentences,
                vectors,
                before,
                encoder,
                polar_share,
                polar_rewriter,
                rewrite,
                polar_question,
                "polar",
            )
    for article in documents or []:
        # after SQuAD's articles, so that their pairs and draws stay those made without documents
        sentences = article_sentences(article)
        before = _previous(sentences) if context else [""] * len(sentences)
        vectors = encoder.encode([s.text for s in sentences])
        asked = written_pairs(
            written_by_title.get(article["title"], []),
            article,
            sentences,
            vectors,
            before,
            encoder,
            written_rng,
            kind="document",
            siblings=bool(article.get("siblings")),
        )
        pairs += asked * written_repeat
    for article in train_v2:
        sentences = article_sentences(article)
        before = _previous(sentences) if context else [""] * len(sentences)
        impossible = [
            (qa, number)
            for number, p in enumerate(article["paragraphs"])
            for qa in p["qas"]
            if qa.get("is_impossible")
        ]
        if not impossible:
            continue
        vectors = encoder.encode([s.text for s in sentences])
        question_vectors = encoder.encode([qa["question"] for qa, _ in impossible])
        for (qa, number), qvec in zip(impossible, question_vectors):
            own = [i for i, s in enumerate(sentences) if s.paragraph == number]
            if not own:
                continue
            best = max(own, key=lambda i: float(vectors[i] @ qvec))
            question = qa["question"].strip()
            if rng.random() < rewrite:
                question = rewriter(question, sentences[best].text)
            pairs.append(Pair(question, sentences[best].text, 0.0, "unanswerable", context=before[best]))
    rng.shuffle(pairs)
    return pairs


def _made_pairs(
    sentences: list[Any],
    vectors: np.ndarray,
    before: list[str],
    encoder: Any,
    share: float,
    rewriter: Rewriter,
    rewrite: float,
    maker: Callable[[str, random.Random], tuple[str, tuple[int, int]] | None] = made_question,
    kind: str = "made",
) -> list[Pair]:
    """Questions made by rule (``maker``) from ``share`` of an article's sentences, with their
    pairs: the sentence (positive; for ``made_question``'s, the value as its answer), the nearest
    sentence that does not hold the value (and the second nearest half of the time), and a random
    one half of the time."""
    rng = rewriter.rng
    made = []
    for i, s in enumerate(sentences):
        if rng.random() < share:
            found = maker(s.text, rng)
            if found is not None:
                made.append((i, *found))
    if not made:
        return []
    question_vectors = encoder.encode([question for _, question, _ in made])
    pairs = []
    for (i, question, span), qvec in zip(made, question_vectors):
        value = " ".join(sentences[i].text[span[0] : span[1]].split())
        kept = [k for k, s in enumerate(sentences) if not s.holds([value])]
        if rng.random() < rewrite:
            question = rewriter(question, sentences[i].text)
        short = maker is made_question  # a why or yes/no question has no short answer to point at
        pairs.append(
            Pair(
                question,
                sentences[i].text,
                1.0,
                kind,
                span if short else None,
                (value,) if short else (),
                before[i],
            )
        )
        if not kept:
            continue
        order = sorted(kept, key=lambda k: -float(vectors[k] @ qvec))
        pairs += _negatives(question, sentences, before, order, kept, rng, kind=f"{kind}-")
    return pairs


def load_written(path: Path) -> list[dict[str, Any]]:
    """The questions written about the training articles: JSON lines of article, question and
    evidence (a verbatim phrase of the article, or null where the article does not answer)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_documents(*paths: Path, siblings: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Short documents written here, of the kinds people keep answers in (a shop's guide, a lease, a
    timetable's rules), with questions written about each: JSON lines of title, text (paragraphs
    split by blank lines) and questions (question and evidence, or null where the document does not
    say), from each file in order. As articles in SQuAD's form and as --written items, for
    ``written_pairs``; ``siblings``: documents with parallel items (``written_pairs``)."""
    articles, items = [], []
    lines = [line for path in paths for line in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        if not line.strip():
            continue
        document = json.loads(line)
        paragraphs = [{"context": p, "qas": []} for p in document["text"].split("\n\n")]
        articles.append({"title": document["title"], "paragraphs": paragraphs, "siblings": siblings})
        items += [{"article": document["title"], **q} for q in document["questions"]]
    return articles, items


def written_pairs(
    items: list[dict[str, Any]],
    article: dict[str, Any],
    sentences: list[Any],
    vectors: np.ndarray,
    before: list[str],
    encoder: Any,
    rng: random.Random,
    kind: str = "written",
    siblings: bool = False,
) -> list[Pair]:
    """Pairs of questions written by hand about one article, in other words than its sentences
    (``{"article", "question", "evidence"}``; SQuAD's crowd-workers mostly reused their sentence's
    words, and questions made by rule share every word with it). An answerable question (its
    ``evidence`` a verbatim phrase of the article): the sentence holding the phrase as the
    positive and a random other sentence as a negative. One the article does not
    answer (``evidence`` null): its two nearest sentences and a random one, all negatives, the
    near-topic case the decision must refuse. With ``siblings`` (a document that gives a fact of
    one item and not of its siblings: ``--items``), an answerable question also has the nearest
    sentence that does not hold its evidence as a negative: there, that is a sibling's fact."""
    starts = []
    offset = 0
    for paragraph in article["paragraphs"]:
        starts.append(offset)
        offset += len(paragraph["context"]) + 1
    whole = "\n".join(p["context"] for p in article["paragraphs"])
    question_vectors = encoder.encode([item["question"] for item in items])
    pairs: list[Pair] = []
    everything = list(range(len(sentences)))
    for item, qvec in zip(items, question_vectors):
        question, evidence = item["question"], item.get("evidence")
        order = sorted(everything, key=lambda i: -float(vectors[i] @ qvec))
        if not evidence:
            pairs += [
                Pair(question, sentences[i].text, 0.0, f"{kind}-near", context=before[i]) for i in order[:2]
            ]
            other = rng.choice(order[2:] or order)
            pairs.append(Pair(question, sentences[other].text, 0.0, f"{kind}-random", context=before[other]))
            continue
        at = whole.find(evidence)
        if at < 0:
            raise ValueError(f"{article['title']}: the evidence of {question!r} is not in the article")
        holding = [
            i
            for i, s in enumerate(sentences)
            if starts[s.paragraph] + s.start <= at < starts[s.paragraph] + s.end
        ]
        if not holding:
            continue
        pairs.append(Pair(question, sentences[holding[0]].text, 1.0, kind, context=before[holding[0]]))
        if siblings:
            near = [i for i in order if i not in holding and evidence not in sentences[i].text][:1]
            pairs += [
                Pair(question, sentences[i].text, 0.0, f"{kind}-sibling", context=before[i]) for i in near
            ]
        # a random other sentence only: the article often says the same again nearby, and a
        # nearest sentence taken as a negative would too often hold the answer
        other = rng.choice([i for i in everything if i != holding[0]] or everything)
        pairs.append(Pair(question, sentences[other].text, 0.0, f"{kind}-random", context=before[other]))
    return pairs


def _negatives(
    question: str,
    sentences: list[Any],
    before: list[str],
    order: list[int],
    kept: list[int],
    rng: random.Random,
    kind: str = "",
) -> list[Pair]:
    """A question's negatives: the nearest sentence without its answer (``order``: those sentences,
    nearest first), the second nearest half of the time, and a random one of ``kept`` half of the
    time; ``kind`` prefixes their kinds ("near", "random")."""
    pairs = [Pair(question, sentences[order[0]].text, 0.0, f"{kind}near", context=before[order[0]])]
    if len(order) > 1 and rng.random() < 0.5:
        pairs.append(Pair(question, sentences[order[1]].text, 0.0, f"{kind}near", context=before[order[1]]))
    if rng.random() < 0.5:
        other = rng.choice(kept)
        pairs.append(Pair(question, sentences[other].text, 0.0, f"{kind}random", context=before[other]))
    return pairs


def _mistakes(
    miner: Any, question: str, candidates: list[str], contexts: list[str], above: float
) -> list[Pair]:
    """The candidates (none holds the answer) that ``miner`` rates above ``above``: at most two,
    the highest first, each with the sentence before it (read with --context)."""
    probabilities = miner.read(question, candidates)
    ranked = sorted(range(len(candidates)), key=lambda i: -probabilities[i])
    return [
        Pair(question, candidates[i], 0.0, "hard", context=contexts[i])
        for i in ranked[:2]
        if probabilities[i] > above
    ]


def _previous(sentences: list[Any]) -> list[str]:
    """Each sentence's predecessor in its paragraph ("" for a paragraph's first)."""
    return [
        sentences[i - 1].text if i > 0 and sentences[i - 1].paragraph == s.paragraph else ""
        for i, s in enumerate(sentences)
    ]


class CachedEncoder:
    """The bi-encoder, each list of texts embedded once: a mining round builds the same pairs again
    (the same sentences, words and questions) with only the miner changed."""

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder
        self._seen: dict[tuple[str, ...], np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        key = tuple(texts)
        if key not in self._seen:
            self._seen[key] = self._encoder.encode(texts)
        return self._seen[key]


def batches(pairs: list[Pair], size: int, rng: random.Random) -> list[list[Pair]]:
    """Shuffled batches of pairs of similar length (less padding: faster on the CPU)."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    chunk = size * 50
    result: list = []
    for offset in range(0, len(order), chunk):
        part = sorted(
            order[offset : offset + chunk], key=lambda i: len(pairs[i].question) + len(pairs[i].second)
        )
        result.extend([pairs[i] for i in part[k : k + size]] for k in range(0, len(part), size))
    rng.shuffle(result)
    return result


def reader_model(base: str) -> Any:
    """The reader to train: the bundled BERT with its one-logit head on [CLS] (does the sentence
    state the answer?) and a start/end head over the sentence's tokens (where?). The span head is
    trained on positives only (on negatives too with ``--null-span``); it gives the short answer (it
    left the verdict's held-out AUC where it was: docs/reader.md)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    class SpanReader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
            self.span = torch.nn.Linear(self.inner.config.hidden_size, 2)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_hidden_states=True,
            )
            start, end = self.span(out.hidden_states[-1]).unbind(-1)
            return out.logits.squeeze(-1), start, end

    return SpanReader()


def span_targets(inputs: Any, chunk: list[Pair], null: bool = False) -> tuple[list[int], list[int]]:
    """The first and last token of each positive's answer in the sentence; -100 (ignored) for an
    answer cut off by truncation, and for negatives unless ``null``: then they point at [CLS] (token
    0), as SQuAD 2.0 readers mark "no answer here"."""
    starts, ends = [], []
    for row, pair in enumerate(chunk):
        first = last = 0 if null and pair.label == 0 else -100
        if pair.answer is not None:
            begin, finish = pair.answer
            ids = inputs.sequence_ids(row)
            offsets = inputs["offset_mapping"][row].tolist()
            tokens = [t for t, sid in enumerate(ids) if sid == 1]
            inside = [t for t in tokens if offsets[t][1] > begin and offsets[t][0] < finish]
            if inside:
                first, last = inside[0], inside[-1]
        starts.append(first)
        ends.append(last)
    return starts, ends


def parameter_groups(model: Any, lr: float, decay: float) -> list[dict[str, Any]]:
    """The model's parameters with their learning rates: ``lr`` for the top layer and the heads,
    ``lr`` × decay^k for the layer k below the top, and the embeddings below the lowest layer
    (layer-wise decay: the lower layers, which hold most of what the base model knows of words and
    their paraphrases, move least). ``decay`` 1: one rate for all."""
    layers = model.inner.config.num_hidden_layers
    groups: dict[float, list[Any]] = {}
    for name, parameter in model.named_parameters():
        if ".embeddings." in name:
            depth = layers
        elif ".encoder.layer." in name:
            depth = layers - 1 - int(name.split(".encoder.layer.")[1].split(".")[0])
        else:  # the pooler and the two heads
            depth = 0
        groups.setdefault(lr * decay**depth, []).append(parameter)
    return [{"params": params, "lr": rate} for rate, params in groups.items()]


def train(
    pairs: list[Pair],
    base: str,
    out: Path,
    *,
    epochs: float,
    batch: int,
    lr: float,
    max_length: int,
    seed: int,
    span_weight: float,
    init: Path | None = None,
    null_span: bool = False,
    layer_decay: float = 1.0,
) -> Path:
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    torch.manual_seed(seed)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = reader_model(base)
    if init is not None:  # trained weights (reader.pt) to train further
        model.load_state_dict(torch.load(init))
    model.train()
    rng = random.Random(seed)
    per_epoch = math.ceil(len(pairs) / batch)
    steps = int(epochs * per_epoch)
    optimizer = torch.optim.AdamW(parameter_groups(model, lr, layer_decay), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    span_loss = torch.nn.CrossEntropyLoss(ignore_index=-100)
    step, started, running, running_span = 0, time.perf_counter(), 0.0, 0.0
    while step < steps:
        for chunk in batches(pairs, batch, rng):
            if step >= steps:
                break
            inputs = tokenizer(
                [p.question for p in chunk],
                [p.second for p in chunk],
                padding=True,
                truncation="only_second",
                max_length=max_length,
                return_tensors="pt",
                return_offsets_mapping=True,
            )
            starts, ends = span_targets(inputs, chunk, null_span)
            logits, start_logits, end_logits = model(
                inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"]
            )
            loss = loss_fn(logits, torch.tensor([p.label for p in chunk]))
            if any(s >= 0 for s in starts):
                # only the sentence's tokens can be the answer
                outside = inputs["token_type_ids"] == 0
                outside[:, 0] = not null_span  # [CLS]: "no answer here", with --null-span
                start_logits = start_logits.masked_fill(outside, -1e4)
                end_logits = end_logits.masked_fill(outside, -1e4)
                spans = (
                    span_loss(start_logits, torch.tensor(starts)) + span_loss(end_logits, torch.tensor(ends))
                ) / 2
                loss = loss + span_weight * spans
                running_span += spans.item()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            running += loss.item()
            if step % 50 == 0:
                elapsed = time.perf_counter() - started
                print(
                    f"step {step}/{steps} (epoch {step / per_epoch:.2f}) loss {running / 50:.4f} "
                    f"(span {running_span / 50:.4f}; {elapsed:.0f}s, {elapsed / step:.2f}s/step)",
                    flush=True,
                )
                running = running_span = 0.0
    model.eval()
    work = out / "torch"
    work.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), work / "reader.pt")
    tokenizer.save_pretrained(work)
    return work


def export(weights: Path, out: Path, base: str, quantisation: str, calibration: list[Pair]) -> Path:
    """ONNX export of the trained model (outputs logits, start_logits, end_logits) with int8
    weights. ``dynamic``: activations quantised per call, which makes a sentence's probability
    depend on what it is read with (the batch and its padding). ``static``: the matrix products'
    activation ranges fixed beforehand from ``calibration`` pairs, so a sentence reads the same alone
    or batched with other questions' (what batching concurrent questions needs)."""
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = reader_model(base)
    model.load_state_dict(torch.load(weights))
    model.eval()
    fp32 = out / "model-fp32.onnx"
    ids = torch.ones((1, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logits", "start_logits", "end_logits"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "logits": {0: "batch"},
                "start_logits": axes,
                "end_logits": axes,
            },
            opset_version=17,
            dynamo=False,
        )
    tokenizer = Path(base) / "tokenizer.json"
    shutil.copy(tokenizer, out / "tokenizer.json")
    if quantisation == "static":
        _quantise_static(fp32, out / "model.onnx", tokenizer, calibration)
    else:
        quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8)
    fp32.unlink()
    return out / "model.onnx"


def _quantise_static(fp32: Path, target: Path, tokenizer_file: Path, pairs: list[Pair]) -> None:
    """int8 weights and activations for the matrix products, ranges from ``pairs`` read in batches of
    16 (QDQ format: ONNX Runtime runs them as integer matrix products)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(96, strategy="only_second")
    tokenizer.enable_padding(length=96)  # one shape for every batch: the percentile calibrator needs it

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.chunks = iter([pairs[i : i + 16] for i in range(0, len(pairs), 16)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self.chunks, None)
            if chunk is None:
                return None
            encoded = tokenizer.encode_batch([(p.question, p.second) for p in chunk])
            return {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }

    prepared = fp32.with_name("model-prepared.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(target),
        Batches(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul", "Gather"],
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,  # 99.99th percentiles: further from the float model
        extra_options={"MatMulConstBOnly": True},
    )
    prepared.unlink()


def evaluate(folder: Path, split: Any, encoder: Any, seed: int, cut: float = 0.0) -> dict[str, Any]:
    """The reader on pairs built the same way from the 13 held-out articles (as asked, not
    rewritten): AUC of the answer sentence against each kind of negative, and accuracy at 0.5.
    ``cut``: add the answer sentences with the answer's clause cut out (their own AUC)."""
    from sklearn.metrics import roc_auc_score

    from qa.reader import Reader

    reader = Reader(folder)
    pairs = training_pairs(
        split.held_out, [], encoder, seed, rewrite=0.0, context=reader.reads_context, cut=cut
    )
    readings = [
        r
        for i in range(0, len(pairs), 64)
        for r in reader.readings(
            [(p.question, p.sentence) for p in pairs[i : i + 64]], [p.context for p in pairs[i : i + 64]]
        )
    ]
    probabilities = np.array([r.probability for r in readings])
    labels = np.array([p.label for p in pairs])
    kinds = np.array([p.kind for p in pairs])
    figures: dict[str, Any] = {
        "pairs": len(pairs),
        "auc": round(float(roc_auc_score(labels, probabilities)), 4),
        "accuracy_at_0.5": round(float(((probabilities >= 0.5) == (labels > 0)).mean()), 4),
    }
    positive = kinds == "positive"
    negatives = ("near", "random", "cut") if cut else ("near", "random")
    for kind in negatives:
        rows = positive | (kinds == kind)
        figures[f"auc_positive_vs_{kind}"] = round(float(roc_auc_score(labels[rows], probabilities[rows])), 4)
    for kind in ("positive", *negatives):
        figures[f"mean_probability_{kind}"] = round(float(probabilities[kinds == kind].mean()), 4)
    if reader.points:
        # the short answer read from the answer sentence, scored as SQuAD scores it
        scores = [
            answer_scores(p.sentence[r.short[0] : r.short[1]], list(p.golds))
            for p, r in zip(pairs, readings)
            if p.kind == "positive" and r.short is not None
        ]
        figures["short_answer_exact_match"] = round(float(np.mean([em for em, _ in scores])), 4)
        figures["short_answer_f1"] = round(float(np.mean([f1 for _, f1 in scores])), 4)
    return figures


LABELS = {
    "auc": "AUC, answer sentence against every negative",
    "auc_positive_vs_near": "AUC, answer sentence against the best sentence left once the answers are removed",
    "auc_positive_vs_random": "AUC, answer sentence against a random sentence of the article",
    "auc_positive_vs_cut": "AUC, answer sentence against itself with the answer's clause cut out",
    "accuracy_at_0.5": "accuracy at probability 0.5",
    "short_answer_exact_match": "short answer read from the answer sentence: exact match",
    "short_answer_f1": "short answer read from the answer sentence: F1",
}


def evaluation_table(figures: dict[str, Any]) -> str:
    lines = [f"held-out pairs: {figures['pairs']}", "", "| measure | value |", "|---|---|"]
    lines += [f"| {label} | {figures[key]:.3f} |" for key, label in LABELS.items() if key in figures]
    means = [figures.get(f"mean_probability_{k}") for k in ("positive", "near", "random")]
    if None not in means:
        lines.append(
            "| mean probability: answer sentence / near-topic sentence / random sentence | "
            + " / ".join(f"{m:.3f}" for m in means)
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from qa.config import Settings
    from qa.encoder import encoder_from

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad_v1", type=Path, help="SQuAD v1.1 dev JSON (optionally .gz)")
    parser.add_argument(
        "squad_v2", type=Path, help="SQuAD v2.0 dev JSON: which articles are the training side"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for model.onnx, tokenizer.json, meta.json"
    )
    parser.add_argument("--base", default=bundled_model_path(), help="model to start from")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument(
        "--layer-decay",
        type=float,
        default=1.0,
        help="learning rate of each layer below the top: this times the one above (1: the same for all)",
    )
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--span-weight",
        type=float,
        default=0.5,
        help="weight of the answer-span loss (0: no span head training)",
    )
    parser.add_argument(
        "--null-span",
        action="store_true",
        help="the span head is also trained on negatives, to point at [CLS] (no answer in the sentence)",
    )
    parser.add_argument("--limit", type=int, default=0, help="train on at most this many pairs (0 = all)")
    parser.add_argument(
        "--context",
        action="store_true",
        help="read each sentence with the one before it (the service then reads a passage's sentence "
        "with its predecessor; use --max-length 128)",
    )
    parser.add_argument(
        "--cut",
        type=float,
        default=0.0,
        help="the share of answer sentences also read as a negative with the answer's clause cut out "
        "(0: none); with --evaluate, on the held-out articles",
    )
    parser.add_argument(
        "--swap",
        type=float,
        default=0.0,
        help="the share of answer sentences also read as a negative with the question asked about "
        "another name or number of the article (0: none)",
    )
    parser.add_argument(
        "--made",
        type=int,
        default=0,
        help="about this many more questions, made by rule from the training articles' sentences "
        "(a name or number asked for), with the same kinds of negatives (0: none)",
    )
    parser.add_argument(
        "--polar",
        type=int,
        default=0,
        help="about this many why and yes/no questions, made by rule from the training articles' "
        "sentences (their auxiliary put first), with the same kinds of negatives (0: none)",
    )
    parser.add_argument(
        "--written",
        type=Path,
        help="questions written by hand about the training articles (JSON lines: article, question, "
        "evidence or null), with their pairs (written_pairs)",
    )
    parser.add_argument("--written-repeat", type=int, default=3, help="each --written pair this many times")
    parser.add_argument(
        "--documents",
        type=Path,
        nargs="+",
        help="short documents written here with questions about them (JSON lines: title, text, "
        "questions), read as --written questions are (load_documents); one file or more, in order",
    )
    parser.add_argument(
        "--items",
        type=Path,
        nargs="+",
        help="documents with parallel items (a fact given for one item and not for its siblings), "
        "read after --documents as they are, and each answerable question's nearest sentence without "
        "its evidence a negative too (written_pairs)",
    )
    parser.add_argument(
        "--synonyms",
        type=Path,
        help="a WordNet dict folder: rewritten questions also take the shared words' synonyms "
        "(tools/synonyms.py says where one is)",
    )
    parser.add_argument(
        "--hard-from",
        type=Path,
        help="a reader folder (model.onnx): add the near-topic sentences it rates above --hard-above "
        "as negatives (its mistakes)",
    )
    parser.add_argument("--hard-above", type=float, default=0.28, help="see --hard-from and --rounds")
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="after training, this many rounds of: the reader just trained mines its own mistakes "
        "(as --hard-from) and trains --round-epochs further on them with --round-lr",
    )
    parser.add_argument("--round-epochs", type=float, default=0.5)
    parser.add_argument("--round-lr", type=float, default=2e-5)
    parser.add_argument(
        "--init", type=Path, help="start from these trained weights (reader.pt) instead of --base's"
    )
    parser.add_argument(
        "--quantisation",
        choices=("dynamic", "static"),
        default="dynamic",
        help="int8 activations scaled per call (dynamic), or with ranges fixed from 256 training pairs "
        "(static: a sentence reads the same whatever it is batched with, but its probabilities were "
        "0.10 from the float model's on average against dynamic's 0.04: docs/reader.md)",
    )
    parser.add_argument(
        "--weights", type=Path, help="export these trained weights (reader.pt) again instead of training"
    )
    parser.add_argument(
        "--evaluate", action="store_true", help="measure the reader in --out on the held-out articles instead"
    )
    args = parser.parse_args(argv)

    split = load_split(args.squad_v1, args.squad_v2)
    encoder = CachedEncoder(encoder_from(Settings()))
    if args.evaluate:
        figures = evaluate(args.out, split, encoder, args.seed, args.cut)
        print(json.dumps({**figures, "table": evaluation_table(figures)}, indent=2))
        return
    from qa.reader import Reader

    synonyms = WordNet(args.synonyms) if args.synonyms else None
    written = load_written(args.written) if args.written else None
    documents, about_documents = load_documents(*(args.documents or []))
    with_items, about_items = load_documents(*(args.items or []), siblings=True)
    documents, about_documents = documents + with_items, about_documents + about_items
    if about_documents:
        written = (written or []) + about_documents

    def pairs_from(miner: Any) -> list[Pair]:
        pairs = training_pairs(
            split.train,
            split.train_v2,
            encoder,
            args.seed,
            context=args.context,
            cut=args.cut,
            miner=miner,
            hard_above=args.hard_above,
            swap=args.swap,
            made=args.made,
            synonyms=synonyms,
            polar=args.polar,
            written=written,
            written_repeat=args.written_repeat,
            documents=documents,
        )
        pairs = pairs[: args.limit] if args.limit else pairs
        kinds = Counter(p.kind for p in pairs)
        print(
            f"{len(split.train)} training articles ({len(split.held_out)} held out); {len(pairs)} pairs: "
            + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
            flush=True,
        )
        return pairs

    pairs = pairs_from(Reader(args.hard_from) if args.hard_from is not None else None)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    weights = args.weights
    rounds: list[dict[str, Any]] = []
    if weights is None:
        weights = _train_into(args, pairs, init=args.init, epochs=args.epochs, lr=args.lr)
        for number in range(1, args.rounds + 1):
            # the reader as trained so far, exported as the service reads it, mines its mistakes
            miner_folder = args.out / f"round-{number}-miner"
            miner_folder.mkdir(exist_ok=True)
            export(weights, miner_folder, args.base, "dynamic", [])
            reads = {"max_length": args.max_length, "context": "previous sentence" if args.context else None}
            (miner_folder / "meta.json").write_text(json.dumps(reads), encoding="utf-8")
            pairs = pairs_from(Reader(miner_folder))
            shutil.rmtree(miner_folder)
            weights = _train_into(args, pairs, init=weights, epochs=args.round_epochs, lr=args.round_lr)
            rounds.append({"pairs": len(pairs), "hard": sum(p.kind == "hard" for p in pairs)})
    trained = time.perf_counter() - started
    kinds = Counter(p.kind for p in pairs)
    calibration = random.Random(args.seed).sample(pairs, min(256, len(pairs)))
    onnx_file = export(weights, args.out, args.base, args.quantisation, calibration)
    meta = {
        "base": Path(args.base).parent.name if Path(args.base).name == "model" else args.base,
        "data": "SQuAD v1.1 dev articles that are also in SQuAD v2.0 dev (CC BY-SA 4.0)",
        "trained_articles": [a["title"] for a in split.train],
        "held_out_articles": [a["title"] for a in split.held_out],
        "pairs": len(pairs),
        "pairs_by_kind": dict(sorted(kinds.items())),
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "layer_decay": args.layer_decay,
        "max_length": args.max_length,
        "seed": args.seed,
        "span_weight": args.span_weight,
        "null_span": args.null_span,
        "outputs": ["logits", "start_logits", "end_logits"],
        "context": "previous sentence" if args.context else None,
        "cut": args.cut,
        "swap": args.swap,
        "made": args.made,
        "polar": args.polar,
        "written": {"file": str(args.written), "repeat": args.written_repeat} if args.written else None,
        "documents": (
            {
                "file": ", ".join(str(path) for path in [*(args.documents or []), *(args.items or [])]),
                "documents": len(documents),
                "questions": len(about_documents),
                "with_siblings": ", ".join(str(path) for path in args.items or []) or None,
            }
            if args.documents or args.items
            else None
        ),
        "synonyms": "WordNet 3.0 (its first two senses)" if args.synonyms else None,
        "hard_from": str(args.hard_from) if args.hard_from else None,
        "hard_above": args.hard_above if args.hard_from or args.rounds else None,
        "init": str(args.init) if args.init else None,
        "rounds": [
            {**r, "epochs": args.round_epochs, "lr": args.round_lr, "hard_above": args.hard_above}
            for r in rounds
        ],
        "train_seconds": round(trained),
        "quantisation": f"onnxruntime {args.quantisation} int8",
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"trained in {trained:.0f}s; wrote {onnx_file} ({onnx_file.stat().st_size / 2**20:.1f} MiB)")


def _train_into(args: Any, pairs: list[Pair], *, init: Path | None, epochs: float, lr: float) -> Path:
    """Train on ``pairs`` (from ``init``'s weights, or the base's) into ``--out``/reader.pt."""
    work = train(
        pairs,
        args.base,
        args.out,
        epochs=epochs,
        batch=args.batch,
        lr=lr,
        max_length=args.max_length,
        seed=args.seed,
        span_weight=args.span_weight,
        init=init,
        null_span=args.null_span,
        layer_decay=args.layer_decay,
    )
    weights = args.out / "reader.pt"
    (work / "reader.pt").replace(weights)  # kept: --weights exports it again without training
    shutil.rmtree(work)
    return weights


if __name__ == "__main__":
    main()
