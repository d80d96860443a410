"""Plain text (.txt), and the UTF-8 decoding every text format shares."""

from __future__ import annotations

import re
from pathlib import Path

from qa.errors import CorpusError
from qa.readers.base import Metadata


def decoded(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise CorpusError(path, f"not valid UTF-8 (byte {error.start})") from error


_TEXT_TITLE = re.compile(r"\A[ \t]*(?P<title>[^\n]{1,120}?)[ \t]*\n[ \t]*\n(?P<rest>.*\S.*)\Z", re.DOTALL)


def read_text(path: Path, raw: bytes) -> tuple[str, Metadata]:
    """Plain text; a first line that reads as a title (short, not ending like a sentence, a blank
    line after it) is the title and not part of the text."""
    text = decoded(path, raw).strip()
    match = _TEXT_TITLE.match(text)
    if match and match["title"][-1] not in ".!?,;:" and any(c.isalpha() for c in match["title"]):
        return match["rest"].strip(), Metadata(title=match["title"])
    return text, Metadata()
