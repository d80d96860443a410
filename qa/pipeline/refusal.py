"""Why the service refused, in plain words for the person who asked: no scores, no stems, no
thresholds (those stay in ``explain``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from qa.answer_type import expected_type, measure_asked
from qa.question import rarity
from qa.store import LoadedIndex

if TYPE_CHECKING:
    from qa.pipeline.fusion import Candidate
    from qa.pipeline.query import Query
    from qa.pipeline.scope import Scope


# A word named in a refusal ("doesn't mention budget") tells at least this much (qa/question.py's
# rarity: "get" 0.25, "short" 0.67, "article" 0.91; "budget" 1.18, "microchips" 3.5): filler is not
# what the passage lacks.
KEY_WORD_RARITY = 1.0
# When it lacks no key word, a less rare word it lacks is named ("summer" 0.77, "price" 0.77), not
# filler ("short" 0.67): "doesn't mention summer" says more than "is about something else".
LESSER_WORD_RARITY = 0.7


def plain_reason(
    index: LoadedIndex,
    query: Query,
    top: Candidate | None,
    failed: str,
    scope: Scope | None = None,
    numbers_missing: tuple[str, ...] = (),
) -> str:
    """Why the service refused, for the person who asked: no scores, no stems, no thresholds (those
    stay in ``explain``). Names the closest section and the key words it does not hold, even in
    other forms ("chips" is held by "microchips"). ``failed`` is the condition of the answer rule
    that failed (``_decide``); a question asked within ``scope`` speaks of that document;
    ``numbers_missing``, the rule's evidence, the numbers of the question the passage lacks."""
    if failed == "no words":
        return "Ask about something: the question has no word the documents could be searched for."
    they, dont = _subject(index, scope)
    if top is None:
        return f"Nothing in {they[0].lower() + they[1:]} relates to this question."
    passage = index.passages[top.position]
    where = passage.heading.split(" › ")[-1] if passage.heading else index.documents[passage.doc_id].title
    # the question's words, with their rarity, that the closest passage does not hold and those it does
    lacks, holds = _words_held(index, query, top) if failed not in ("reader", "value", "number") else ([], [])
    if failed == "similarity" and not (_key(holds) and _key(lacks)):
        # nothing close; but when the closest passage names some of what is asked and lacks the rest
        # ("How many employees does Sberbank have?"), that is what to say
        return f"{they} {dont} seem to cover this: nothing in {_it(they)} comes close to the question."
    if failed == "reader":
        clause = what_is_asked(query.asked)
        said = f"say {clause}" if clause else "answer this question"
        return f"{they} {dont} {said}. The closest passage, in “{where}”, does not state it."
    if failed == "value":
        wanted = {
            "number": measure_asked(query.text) or "a number",
            "time": "a date or time",
            "clock": "a time of day",
            "duration": "a length of time",
            "temperature": "a temperature",
        }.get(expected_type(query.text) or "", "the value")
        return f"{they} {dont} give {wanted} for this. The closest passage, in “{where}”, has none."
    if failed == "number":  # a number the question gives: "Apollo 13", "in 1837"
        missing = list(numbers_missing[:3])
    else:
        missing = _key(lacks)[:3] or [word for word, rare in lacks if rare >= LESSER_WORD_RARITY][:1]
    if not missing and failed == "coverage":  # on the subject, but too few of the question's words
        return f"{they} {dont} say. The closest passage, in “{where}”, holds too few of the question's words."
    if not missing:
        return f"{they} {dont} say. The closest passage, in “{where}”, is about something else."
    missing = [_as_typed(word, query.asked) for word in missing]
    listed = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " or " + missing[-1]
    return f"{they} {dont} say. The closest passage, in “{where}”, doesn't mention {listed}."


def _words_held(
    index: LoadedIndex, query: Query, top: Candidate
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The question's words, each with its rarity, that the closest passage lacks and those it holds
    (even in other forms), the weightiest first."""
    passage = index.passages[top.position]
    held = index.lexicon.matches(query.words, [index.passage_terms(top.position)])[0] if query.words else []
    text = index.documents[passage.doc_id].text[passage.start : passage.end].lower()
    lacks: list[tuple[str, float]] = []
    holds: list[tuple[str, float]] = []
    for word, share in sorted(zip(query.words, held), key=lambda p: -p[0].weight):
        (holds if share >= 0.5 or word.word.lower() in text else lacks).append((word.word, rarity(word.word)))
    return lacks, holds


def _key(words: list[tuple[str, float]]) -> list[str]:
    """The key words among them: rarer than filler."""
    return [word for word, rare in words if rare >= KEY_WORD_RARITY]


def _as_typed(word: str, question: str) -> str:
    """The word as the question spells it ("CEO", not "ceo")."""
    found = re.search(rf"\b{re.escape(word)}\b", question, re.IGNORECASE)
    return found.group(0) if found else word


def _subject(index: LoadedIndex, scope: Scope | None) -> tuple[str, str]:
    """Who "doesn't say": the documents, or the one (or few) the question was asked within."""
    if scope is None:
        return "The documents", "don't"
    return ("This document", "doesn't") if len(scope.documents(index)) == 1 else ("These documents", "don't")


def _it(they: str) -> str:
    return "it" if they == "This document" else "them"


_WH = frozenset("who whom whose what which when where why how".split())
_AUXILIARY = frozenset(
    "is are was were do does did has have had can could will would should may might".split()
)
_BE = frozenset("is are was were".split())


def what_is_asked(question: str) -> str | None:
    """The question as the object of "The documents don't say ...", when that is plain to do:
    "Which network broadcast it?" -> "which network broadcast it"; "What is the goal of X?" -> "what
    the goal of X is". None when it would take rewriting the verb ("How many eggs does it lay?")."""
    words = " ".join(question.split()).rstrip(" ?.!").split()
    if len(words) < 2 or words[0].lower() not in _WH:
        return None
    head = [words[0].lower()]
    rest = words[1:]
    if head[0] in ("which", "what", "whose", "how") and rest and rest[0].lower() not in _AUXILIARY:
        head.append(rest.pop(0))  # "which network", "how many" (one word of the asked-for phrase)
        if head[0] == "how" and rest and rest[0].lower() not in _AUXILIARY:
            head.append(rest.pop(0))  # "how many eggs"
    if not rest:
        return None
    verb, after = rest[0].lower(), rest[1:]
    if verb not in _AUXILIARY:
        if _inversion_follows(after):
            # the asked-for phrase runs on and an inverted verb follows ("how many holiday days do I
            # get", "what kind of AI markets does Russia want"): undoing it means rewriting the verb
            return None
        return " ".join(head + rest)  # the asked-for phrase is the subject: no inversion to undo
    if verb not in _BE or not after:
        return None
    noun = len(head) > (2 if head[0] == "how" else 1)  # "which network was", "how many people were"
    # Is the asked-for phrase the subject ("which network was founded", "who was elected"), or does
    # another subject follow the verb ("what colour is the kettle", "what is the goal")?
    inverted = _starts_a_subject(after[0]) if noun else not _participle(after[0], "")
    if not inverted:
        return " ".join(head + rest)
    if any(_participle(w, before) for before, w in zip(after, after[1:])):
        return None  # "where was the task force first presented": the verb's place is not plain to find
    return " ".join(head + after + [verb])  # "what is the goal" -> "what the goal is"


def _inversion_follows(words: list[str]) -> bool:
    """An auxiliary with a subject after it ("... do I get", "... does Russia want") within the
    first few words: the question's verb is inverted further on."""
    return any(
        word.lower() in _AUXILIARY and _starts_a_subject(after) for word, after in zip(words[:4], words[1:5])
    )


# Words that begin a noun phrase of their own: determiners, possessives and personal pronouns.
_NOUN_PHRASE_STARTS = frozenset(
    "the a an this that these those its his her their our my your it he she they we you".split()
)
_IRREGULAR_PARTICIPLES = frozenset(
    "known given taken made built held led found seen written chosen done born paid sold thought "
    "brought won begun meant called".split()
)


def _starts_a_subject(word: str) -> bool:
    """A determiner, a pronoun or a name: a noun phrase of its own begins."""
    return word.lower() in _NOUN_PHRASE_STARTS or word[:1].isupper()


def _participle(word: str, before: str) -> bool:
    """A verb's participle ("presented", "teaming", "known"), not an adjective after a determiner or
    a possessive ("the planned reform", "the country's ruling party")."""
    if before.lower() in _NOUN_PHRASE_STARTS or before.endswith("'s"):
        return False
    lower = word.lower()
    return lower in _IRREGULAR_PARTICIPLES or (len(lower) > 4 and lower.endswith(("ed", "ing")))
