"""Passages and sentences: sentence-aware splitting inside sections, with offsets into the document.

Invariant: ``document.text[p.start:p.end] == p.text`` for every passage and sentence.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pysbd

from qa.corpus import Document
from qa.readers import HEADED_FORMATS

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_LIST_MARKER = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+")
_SEGMENTER = pysbd.Segmenter(language="en", clean=False)
# pysbd's time and memory grow faster than the text: a paragraph longer than this (a text file
# without blank lines, say) is cut at line breaks or sentence ends into windows of about this size.
WINDOW_CHARS = 20_000


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A run of whole sentences inside one section of one document."""

    passage_id: str
    doc_id: str
    start: int
    end: int
    text: str
    heading: str  # the section headings above it, outermost first; retrieval context, never cited
    sentences: tuple[Sentence, ...] = field(default_factory=tuple)

    def context(self, title: str) -> str:
        """What the encoders and the keyword index see: title, headings, then the passage."""
        return "\n".join(part for part in (title, self.heading, self.text) if part)


@dataclass(frozen=True)
class _Block:
    """A paragraph or a list: its sentence spans and the headings above it."""

    heading: str
    sentences: list[tuple[int, int]]


def split_document(document: Document, max_chars: int, splitter: str = "sentencex") -> list[Passage]:
    """Split a document into passages of whole sentences, at most ``max_chars`` where possible;
    ``splitter`` names the sentence splitter (``SPLITTERS``)."""
    passages: list[Passage] = []
    used_ids: set[str] = set()
    text = document.text
    for block in _blocks(text, markdown=document.format in HEADED_FORMATS, splitter=splitter):
        for group in _pack(block.sentences, max_chars):
            start, end = group[0][0], group[-1][1]
            passage_id = _passage_id(document.doc_id, text[start:end], used_ids)
            passages.append(
                Passage(
                    passage_id=passage_id,
                    doc_id=document.doc_id,
                    start=start,
                    end=end,
                    text=text[start:end],
                    heading=block.heading,
                    sentences=tuple(Sentence(s, e) for s, e in group),
                )
            )
    return passages


def _passage_id(doc_id: str, text: str, used: set[str]) -> str:
    """Content-based: the same text in the same document keeps its id across rebuilds and edits."""
    base = f"{doc_id}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"
    passage_id, n = base, 1
    while passage_id in used:  # identical paragraphs repeated in one document
        n += 1
        passage_id = f"{base}-{n}"
    used.add(passage_id)
    return passage_id


def _lines(text: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for line in text.splitlines(keepends=True):
        yield offset, line.rstrip("\r\n")
        offset += len(line)


def _blocks(text: str, markdown: bool, splitter: str = "sentencex") -> Iterator[_Block]:
    """Paragraphs separated by blank lines; Markdown headings open sections and are not cited."""
    headings: list[tuple[int, str]] = []
    paragraph: list[tuple[int, str]] = []

    def flush() -> _Block | None:
        if not paragraph:
            return None
        heading = " › ".join(title for _, title in headings)
        is_list = bool(_LIST_MARKER.match(paragraph[0][1]))
        spans: list[tuple[int, int]] = []
        if is_list:  # one item per line: a list item is never joined to the next
            for offset, line in paragraph:
                marker = _LIST_MARKER.match(line)
                skip = marker.end() if marker else 0
                spans.extend(sentence_spans(text, offset + skip, offset + len(line), splitter=splitter))
        else:
            start = paragraph[0][0]
            end = paragraph[-1][0] + len(paragraph[-1][1])
            spans.extend(sentence_spans(text, start, end, splitter=splitter))
        paragraph.clear()
        return _Block(heading, spans) if spans else None

    for offset, line in _lines(text):
        match = _HEADING.match(line) if markdown else None
        if match or not line.strip():
            block = flush()
            if block:
                yield block
        if match:
            level, title = len(match.group(1)), match.group(2).strip()
            headings = [(lvl, t) for lvl, t in headings if lvl < level] + [(level, title)]
        elif line.strip():
            paragraph.append((offset, line))
    block = flush()
    if block:
        yield block


def sentence_spans(
    text: str, start: int, end: int, max_chars: int = 2000, splitter: str = "sentencex"
) -> list[tuple[int, int]]:
    """Sentence boundaries of ``text[start:end]`` as absolute, whitespace-trimmed spans.

    The splitter finds the sentences (both know "U.S.", "$136 billion" and em dashes are not
    boundaries); each is located in the original text so the spans are exact whatever it normalises.
    """
    if end - start > WINDOW_CHARS:
        return [
            span
            for left, right in _windows(text, start, end)
            for span in sentence_spans(text, left, right, max_chars, splitter)
        ]
    segment = text[start:end]
    try:
        pieces = SPLITTERS[splitter](segment) if segment.strip() else []
    except Exception:  # neither documents its exceptions; on odd input keep the block whole
        pieces = []
    boundaries = [0]
    cursor = 0
    for piece in pieces:
        stripped = piece.strip()
        if not stripped:
            continue
        found = segment.find(stripped, cursor)
        if found < 0:
            continue  # not located verbatim: its text stays with the previous sentence
        if found > boundaries[-1]:
            boundaries.append(found)
        cursor = found + len(stripped)
    boundaries.append(len(segment))
    spans = []
    for left, right in zip(boundaries, boundaries[1:]):
        spans.extend(_trimmed_pieces(segment, left, right, max_chars))
    return [(start + s, start + e) for s, e in spans]


def _pysbd(segment: str) -> list[str]:
    return _SEGMENTER.segment(segment)


def _sentencex(segment: str) -> list[str]:
    import sentencex  # Wikimedia's rule-based splitter, compiled: some 700 times pysbd's speed

    return list(sentencex.segment("en", segment))


# Sentence splitters by name (the setting QA_SENTENCE_SPLITTER): each returns the sentences of a text.
SPLITTERS = {"pysbd": _pysbd, "sentencex": _sentencex}


def _windows(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """``[start, end)`` cut into pieces of at most WINDOW_CHARS, each ending at the last line break,
    else the last sentence end, else the last space in its second half (else cut hard)."""
    while end - start > WINDOW_CHARS:
        low, high = start + WINDOW_CHARS // 2, start + WINDOW_CHARS
        cut = text.rfind("\n", low, high)
        if cut < 0:
            cut = max(text.rfind(". ", low, high), text.rfind("? ", low, high), text.rfind("! ", low, high))
            cut = cut + 1 if cut >= 0 else text.rfind(" ", low, high)
        cut = cut if cut > start else high
        yield start, cut
        start = cut
    yield start, end


def _trimmed_pieces(segment: str, left: int, right: int, max_chars: int) -> list[tuple[int, int]]:
    """Trim whitespace; cut a run-on sentence longer than ``max_chars`` at whitespace."""
    while left < right and segment[left].isspace():
        left += 1
    while right > left and segment[right - 1].isspace():
        right -= 1
    if left >= right:
        return []
    if right - left <= max_chars:
        return [(left, right)]
    cut = segment.rfind(" ", left + max_chars // 2, left + max_chars)
    cut = cut if cut > left else left + max_chars
    return _trimmed_pieces(segment, left, cut, max_chars) + _trimmed_pieces(segment, cut, right, max_chars)


def _pack(sentences: list[tuple[int, int]], max_chars: int) -> Iterator[list[tuple[int, int]]]:
    """Greedy runs of consecutive sentences spanning at most ``max_chars`` (one sentence always fits)."""
    group: list[tuple[int, int]] = []
    for span in sentences:
        if group and span[1] - group[0][0] > max_chars:
            yield group
            group = []
        group.append(span)
    if group:
        yield group
