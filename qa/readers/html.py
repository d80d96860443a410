"""HTML pages (.html, .htm): the main text as Markdown (trafilatura)."""

from __future__ import annotations

import re
from pathlib import Path

from qa.errors import CorpusError
from qa.readers.base import Metadata
from qa.readers.text import decoded

_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")


def _unescaped(text: str) -> str:
    """The page's characters, not Markdown's escapes of them ("\\[citation needed\\]" is
    "[citation needed]" on the page); a "#" opening a line stays escaped, or it would be a heading."""

    def character(match: re.Match[str]) -> str:
        at_line_start = match.start() == 0 or text[match.start() - 1] == "\n"
        return match.group(0) if match.group(1) == "#" and at_line_start else match.group(1)

    return _MD_ESCAPE.sub(character, text)


def read_html(path: Path, raw: bytes) -> tuple[str, Metadata]:
    """The page's main text (trafilatura drops navigation, footers and boilerplate) as Markdown, so
    that ``<h1>``-``<h6>`` are section headings; the date only from the page's metadata, never
    guessed from dates in its text. One parse: trafilatura heads its Markdown with the metadata."""
    import trafilatura  # imported here: only HTML corpora pay for it

    text = trafilatura.extract(
        decoded(path, raw),
        output_format="markdown",
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
        with_metadata=True,
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    meta: dict[str, str] = {}
    if text and text.startswith("---\n"):  # "key: value" lines (read as such: a title may hold ": ")
        header, _, text = text[4:].partition("\n---\n")
        for line in header.splitlines():
            key, _, value = line.partition(": ")
            meta[key.strip()] = value.strip().strip('"')
    if not text or not text.strip():
        raise CorpusError(path, "no main text found in the HTML page")
    text = _unescaped(text)
    return text.strip(), Metadata(title=meta.get("title"), source=meta.get("url"), published=meta.get("date"))
