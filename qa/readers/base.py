"""What every reader returns beside the text: the document's metadata, typed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Metadata:
    """A document's metadata as its file gives it; what is missing comes from the path or the text
    (qa/corpus.py's ``read_document``)."""

    id: str | None = None
    title: str | None = None
    source: str | None = None
    published: str | None = None
    pages: tuple[int, ...] = ()  # a paged document's: the offset in the text where each page begins

    @classmethod
    def of(cls, fields: Mapping[object, object]) -> Metadata:
        """From front matter's ``key: value`` pairs: ``id``, ``title``, ``source`` and ``published``
        (or ``date``) as text; other keys are not metadata the service uses."""

        def text(value: object) -> str | None:
            return str(value) if value is not None and value != "" else None

        return cls(
            id=text(fields.get("id")),
            title=text(fields.get("title")),
            source=text(fields.get("source")),
            published=text(fields.get("published") or fields.get("date")),
        )


# A reader: a file's path (for messages and the suffix) and bytes in, its text and metadata out; a
# file it cannot use is a CorpusError naming the problem.
Reader = Callable[[Path, bytes], tuple[str, Metadata]]
