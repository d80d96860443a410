"""PDF (.pdf): text rebuilt into paragraphs and headings from pdfplumber's lines, with pages."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from qa.errors import CorpusError
from qa.readers.base import Metadata

# A PDF line in the top or bottom margin (this share of the page height) that repeats on other pages,
# or is only a page number, or is in smaller type than the body, is a running header or footer.
_MARGIN = 0.08
_PAGE_NUMBER = re.compile(r"^\W*(page\s*)?\d+(\s*(of|/)\s*\d+)?\W*$", re.IGNORECASE)
# Type this much larger than the body's, on a short line, is a heading.
_HEADING_SCALE = 1.15
_HEADING_MAX_CHARS = 150


@dataclass(frozen=True)
class _PdfLine:
    page: int
    text: str
    top: float
    bottom: float
    size: float  # the commonest character size on the line
    margin: bool  # in the top or bottom margin of its page
    right: float  # where the line ends


def read_pdf(path: Path, raw: bytes) -> tuple[str, Metadata]:
    """Text rebuilt into paragraphs (pdfplumber's lines: line wraps joined, hyphenation at line ends
    undone), running headers, footers and page numbers dropped, larger type as headings; with the
    offset where each page begins."""
    import pdfplumber

    try:
        with pdfplumber.open(io.BytesIO(raw)) as pdf:
            lines = [
                line for number, page in enumerate(pdf.pages, start=1) for line in _pdf_lines(number, page)
            ]
            info = pdf.metadata or {}
            n_pages = len(pdf.pages)
    except MemoryError:  # over the reader's memory limit (qa/isolation.py), not a damaged file
        raise
    except Exception as error:  # pdfminer raises many kinds on damaged files
        raise CorpusError(path, f"unreadable PDF ({type(error).__name__})") from error
    body = _body_size(lines)
    pages_of: dict[str, set[int]] = {}  # each margin line's shape (digits aside): the pages it is on
    for line in lines:
        if line.margin:
            pages_of.setdefault(_shape(line.text), set()).add(line.page)
    kept = [line for line in lines if not _running(line, pages_of, body, n_pages)]
    sizes = sorted({round(ln.size) for ln in kept if _is_heading(ln, body)}, reverse=True)
    pitch = _line_pitch(kept)
    full = max((ln.right for ln in kept if not _is_heading(ln, body)), default=0.0)  # a full line's end
    parts: list[str] = []
    pages: list[int] = []
    length = 0
    previous: _PdfLine | None = None
    for line in kept:
        heading = _is_heading(line, body)
        if previous is None:
            joint = ""
        elif heading or _is_heading(previous, body) or _new_paragraph(previous, line, pitch, full):
            joint = "\n\n"
        elif previous.text[-1:] in "-\u2013" and previous.text[-2:-1].isalnum() and line.text[:1].isalnum():
            joint = ""  # broken at a hyphen or dash: "infesta-" + "tion", "gold-" + "themed", "21–" + "10"
            if previous.text.endswith("-") and _hyphenated(previous.text, line.text):
                parts[-1] = parts[-1][:-1]
                length -= 1
        else:
            joint = " "
        text = ("#" * (sizes.index(round(line.size)) + 1) + " " + line.text) if heading else line.text
        while len(pages) < line.page:  # pages without text start where the next text does
            pages.append(length + len(joint))
        parts.append(joint + text)
        length += len(joint) + len(text)
        previous = line
    title = str(info.get("Title") or "").strip() or next(
        (ln.text for ln in kept if _is_heading(ln, body)), None
    )
    return "".join(parts), Metadata(title=title, pages=tuple(pages))


def _pdf_lines(number: int, page: object) -> list[_PdfLine]:
    height = float(page.height)  # type: ignore[attr-defined]
    found = []
    lines = page.extract_text_lines(return_chars=True)  # type: ignore[attr-defined]
    page.close()  # type: ignore[attr-defined]  # its characters are not kept: memory is one page's
    for line in lines:
        text = " ".join(line["text"].split())
        if not text:
            continue
        sizes = [round(float(c["size"]), 1) for c in line["chars"]] or [0.0]
        top, bottom = float(line["top"]), float(line["bottom"])
        margin = bottom < height * _MARGIN or top > height * (1 - _MARGIN)
        size = max(set(sizes), key=sizes.count)
        found.append(_PdfLine(number, text, top, bottom, size, margin, float(line["x1"])))
    return found


def _body_size(lines: list[_PdfLine]) -> float:
    """The type size most of the text is set in."""
    weight: dict[float, int] = {}
    for line in lines:
        weight[line.size] = weight.get(line.size, 0) + len(line.text)
    return max(weight, key=weight.__getitem__) if weight else 0.0


def _shape(text: str) -> str:
    return re.sub(r"\d+", "#", text)


def _running(line: _PdfLine, pages_of: dict[str, set[int]], body: float, n_pages: int) -> bool:
    """A running header or footer: a margin line that is a page number, in smaller type than the
    body, or repeated (digits aside) on at least half of the pages."""
    if not line.margin:
        return False
    if _PAGE_NUMBER.match(line.text) or line.size < body:
        return True
    return n_pages > 1 and len(pages_of[_shape(line.text)]) * 2 >= n_pages


def _is_heading(line: _PdfLine, body: float) -> bool:
    return line.size >= body * _HEADING_SCALE and len(line.text) <= _HEADING_MAX_CHARS


def _hyphenated(line: str, following: str) -> bool:
    """Whether the hyphen ending ``line`` only breaks a word for the line end: English (wordfreq's
    table) uses the joined word more than the hyphenated one ("infestation", "development"), not
    less ("gold-themed", "well-known", "long-term")."""
    from wordfreq import zipf_frequency

    head, tail = re.search(r"(\w+)-$", line), re.match(r"\w+", following)
    if head is None or tail is None:
        return False
    first, second = head.group(1), tail.group(0)
    return zipf_frequency(first + second, "en") > zipf_frequency(f"{first}-{second}", "en")


def _line_pitch(lines: list[_PdfLine]) -> float:
    """The usual distance from one line's top to the next one's, within a paragraph."""
    steps = [b.top - a.top for a, b in zip(lines, lines[1:]) if a.page == b.page and b.top > a.top]
    return float(sorted(steps)[len(steps) // 2]) if steps else 0.0


def _new_paragraph(previous: _PdfLine, line: _PdfLine, pitch: float, full: float) -> bool:
    """More space above the line than between the lines of a paragraph; across a page, a previous
    line that ends a sentence short of the full width (a paragraph's last line)."""
    if line.page != previous.page:
        return previous.text[-1:] in '.!?:"\u201d' and previous.right < 0.9 * full
    return line.top - previous.top > 1.3 * pitch or line.top < previous.top
