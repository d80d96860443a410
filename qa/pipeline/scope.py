"""The part of the corpus a question is asked within (``/ask``'s ``doc_ids`` and ``metadata``):
applied inside retrieval, so the candidates, and the citations, are all from the scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from qa.corpus import Document
from qa.errors import quoted
from qa.readers.base import FIELD_NAME
from qa.store import LoadedIndex

# Document fields every document has (from front matter and what the readers find); any other
# front-matter field a document has can be filtered on too (``Document.metadata``).
ScopeField = Literal["title", "source", "published", "format", "path"]
# What a condition on a field can ask: equal to a value, one of several, at least or at most (numbers
# compared as numbers, anything else as text: ISO dates order as dates). Text compares case-blind.
Operator = Literal["eq", "in", "gte", "lte"]
OPERATORS: tuple[str, ...] = get_args(Operator)


@dataclass(frozen=True)
class Scope:
    """The part of the corpus a question is asked within: documents by id, and documents whose
    fields meet every condition. Applied inside retrieval, so the candidates, and the citations, are
    all from the scope. Hashable: it is part of the answer cache's key."""

    doc_ids: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (field, operator, values)

    @classmethod
    def of(cls, doc_ids: list[str] | None = None, metadata: dict[str, Any] | None = None) -> Scope | None:
        """None when nothing restricts the question. ``metadata`` maps a field to a value (equal to
        it) or to conditions (``{"in": [...]}``, ``{"gte": ..., "lte": ...}``); a field name or an
        operator that cannot be is a ValueError (the API's schema refuses it first)."""
        conditions = []
        for name, wanted in (metadata or {}).items():
            if not FIELD_NAME.match(name):
                raise ValueError(f"{quoted(name)} is not a field name: letters, digits, '_', '.' and '-'")
            asked = wanted if isinstance(wanted, dict) else {"eq": wanted}
            for operator, value in asked.items():
                if operator not in OPERATORS:
                    raise ValueError(
                        f"{quoted(str(operator))} is not a condition: use {', '.join(OPERATORS[1:])}"
                    )
                if value is None:
                    continue
                values = tuple(str(v) for v in value) if isinstance(value, list | tuple) else (str(value),)
                if operator == "in" and len(values) == 1:
                    operator = "eq"  # one value: the same condition, and the same cache key
                conditions.append((name, operator, values))
        scope = cls(tuple(sorted(set(doc_ids or ()))), tuple(sorted(conditions)))
        return scope if scope.doc_ids or scope.metadata else None

    def documents(self, index: LoadedIndex) -> list[str]:
        """Ids of the documents in the scope."""
        ids = self.doc_ids or tuple(index.documents)
        return [
            doc_id
            for doc_id in ids
            if doc_id in index.documents and all(_meets(index.documents[doc_id], *c) for c in self.metadata)
        ]

    def positions(self, index: LoadedIndex) -> np.ndarray:
        """Rows of the passages in the scope."""
        return np.array(
            sorted(index.positions[p] for d in self.documents(index) for p in index.by_document.get(d, [])),
            dtype=np.int64,
        )

    def to_json(self) -> dict[str, object]:
        metadata: dict[str, dict[str, object]] = {}
        for name, operator, values in self.metadata:
            metadata.setdefault(name, {})[operator] = list(values) if operator == "in" else values[0]
        return {"doc_ids": list(self.doc_ids), "metadata": metadata}

    def describe(self) -> str:
        """In words, for messages (the client's values cut short): "documents 'a', 'b' and format = 'pdf'"."""
        ids = ", ".join(quoted(i) for i in self.doc_ids[:5]) + (", …" if len(self.doc_ids) > 5 else "")
        parts = [("documents " if len(self.doc_ids) > 1 else "document ") + ids] if self.doc_ids else []
        signs = {"eq": "=", "gte": ">=", "lte": "<=", "in": "in"}
        for name, operator, values in self.metadata:
            shown = " or ".join(quoted(v) for v in values[:5]) if operator == "in" else quoted(values[0])
            parts.append(f"{name} {signs[operator]} {shown}")
        return " and ".join(parts)


def _meets(document: Document, name: str, operator: str, values: tuple[str, ...]) -> bool:
    """Whether ``document``'s field ``name`` meets the condition (a field it lacks meets none)."""
    have = getattr(document, name) if name in get_args(ScopeField) else document.metadata.get(name)
    if have is None or have == "":
        return False
    have = str(have)
    if operator in ("eq", "in"):
        return have.casefold() in {v.casefold() for v in values}
    try:
        left, right = float(have), float(values[0])
    except ValueError:
        left, right = have.casefold(), values[0].casefold()  # type: ignore[assignment]
    return left >= right if operator == "gte" else left <= right
