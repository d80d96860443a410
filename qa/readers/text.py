"""Plain text (.txt), and the UTF-8 decoding every text format shares."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from qa.errors import CorpusError
from qa.readers.base import Metadata


def decoded(path: Path, raw: bytes) -> str:
    """The file's text: UTF-8, else the encoding ``encoding_of`` finds; a CorpusError when none fits."""
    encoding = encoding_of(raw)
    if encoding is None:
        return raw.decode("utf-8").removeprefix("\ufeff")
    if encoding == "":
        raise CorpusError(path, "not text in any encoding: neither UTF-8 nor another that fits its bytes")
    return raw.decode(encoding)


# UTF-32's marks first: UTF-32-LE's begins with UTF-16-LE's
_BYTE_ORDER_MARKS = (
    ("utf_32", (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)),
    ("utf_16", (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)),
)


def encoding_of(raw: bytes) -> str | None:
    """None for UTF-8; the UTF-16 or UTF-32 a byte-order mark names ("" when the bytes do not fit
    it, as a file cut short); else the encoding charset-normalizer finds the least garbled reading in
    (among equally good ones Windows-1252, the commonest for Western text, as cp1250 and the others
    tie with it on short texts), or "" when none fits."""
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    for encoding, marks in _BYTE_ORDER_MARKS:
        if raw.startswith(marks):  # a byte-order mark says which; bytes it does not fit are no text
            try:
                raw.decode(encoding)
                return encoding
            except UnicodeDecodeError:
                return ""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(raw))
    if not matches:
        return ""
    least = min(m.chaos for m in matches)
    best = [m for m in matches if m.chaos <= least + 1e-9]
    return next((m.encoding for m in best if m.encoding == "cp1252"), best[0].encoding)


_TEXT_TITLE = re.compile(r"\A[ \t]*(?P<title>[^\n]{1,120}?)[ \t]*\n[ \t]*\n(?P<rest>.*\S.*)\Z", re.DOTALL)


def read_text(path: Path, raw: bytes) -> tuple[str, Metadata]:
    """Plain text; a first line that reads as a title (short, not ending like a sentence, a blank
    line after it) is the title and not part of the text."""
    text = decoded(path, raw).strip()
    match = _TEXT_TITLE.match(text)
    if match and match["title"][-1] not in ".!?,;:" and any(c.isalpha() for c in match["title"]):
        return match["rest"].strip(), Metadata(title=match["title"])
    return text, Metadata()
