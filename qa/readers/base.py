"""What every reader returns beside the text: the document's metadata, typed."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

# A field name filters can use (qa/pipeline/scope.py's Scope): letters, digits, '_', '.' and '-'.
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Metadata:
    """A document's metadata as its file gives it; what is missing comes from the path or the text
    (qa/corpus.py's ``read_document``)."""

    id: str | None = None
    title: str | None = None
    source: str | None = None
    published: str | None = None
    pages: tuple[int, ...] = ()  # a paged document's: the offset in the text where each page begins
    extra: tuple[tuple[str, str], ...] = ()  # other fields ("department: ops"), as text

    @classmethod
    def of(cls, fields: Mapping[object, object]) -> Metadata:
        """From front matter's ``key: value`` pairs: ``id``, ``title``, ``source`` and ``published``
        (or ``date``) as text; every other key whose value is one value (text, a number, a date, a
        yes/no) as text in ``extra``, for filters; lists and nested values are left out."""

        def text(value: object) -> str | None:
            return str(value) if value is not None and value != "" else None

        return cls(
            id=text(fields.get("id")),
            title=text(fields.get("title")),
            source=text(fields.get("source")),
            published=text(fields.get("published") or fields.get("date")),
            extra=tuple(
                sorted(
                    (str(key), str(value))
                    for key, value in fields.items()
                    if key not in ("id", "title", "source", "published", "date")
                    and isinstance(key, str)
                    and FIELD_NAME.match(key)
                    and isinstance(value, str | int | float | bool | datetime.date)
                    and str(value) != ""
                )
            ),
        )


# A reader: a file's path (for messages and the suffix) and bytes in, its text and metadata out; a
# file it cannot use is a CorpusError naming the problem.
Reader = Callable[[Path, bytes], tuple[str, Metadata]]
