"""The readers of corpus files, one module per format, each a ``Reader`` (qa/readers/base.py).

Every reader returns the document's text with its structure in Markdown's terms: a section heading
is a line of ``#`` marks and the heading (from HTML ``<h1>``-``<h6>``, Word heading styles, a PDF's
larger type, an FAQ's questions), paragraphs are separated by blank lines. The splitter
(qa/passages.py) makes headings retrieval context, never cited text; every offset points into the
stored text. A new format is one module and one entry in ``READERS``."""

from __future__ import annotations

from qa.readers.base import Metadata, Reader
from qa.readers.faq import read_faq
from qa.readers.html import read_html
from qa.readers.markdown import read_markdown
from qa.readers.pdf import read_pdf
from qa.readers.text import read_text
from qa.readers.word import read_word

# Suffix -> (format name, reader of the file's bytes into its text and metadata).
READERS: dict[str, tuple[str, Reader]] = {
    ".md": ("markdown", read_markdown),
    ".markdown": ("markdown", read_markdown),
    ".txt": ("text", read_text),
    ".html": ("html", read_html),
    ".htm": ("html", read_html),
    ".pdf": ("pdf", read_pdf),
    ".docx": ("docx", read_word),
    ".csv": ("faq", read_faq),
    ".jsonl": ("faq", read_faq),
}
# Formats whose compressed content can cost far more than the file's size to read: each file is read
# in a child process with a time and a memory limit (qa/isolation.py).
CONTAINED = frozenset({"pdf", "docx"})
# Formats whose text marks section headings with Markdown's "#" lines (all but plain text).
HEADED_FORMATS = frozenset(fmt for fmt, _ in READERS.values()) - {"text"}
SUFFIXES = tuple(READERS)

__all__ = ["CONTAINED", "HEADED_FORMATS", "READERS", "SUFFIXES", "Metadata", "Reader"]
