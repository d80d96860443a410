"""FAQ lists: CSV (question, answer columns) or JSON lines (question, answer fields)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from qa.errors import CorpusError
from qa.readers.base import Metadata
from qa.readers.text import decoded

_FAQ_FIELDS = ("question", "answer")


def read_faq(path: Path, raw: bytes) -> tuple[str, Metadata]:
    """An FAQ list: CSV with question and answer columns, or JSON lines with question and answer
    fields. Each question becomes a section heading and its answer the section: the answer is what
    is cited, the question what retrieval matches it by."""
    content = decoded(path, raw)
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(content))
        names = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
        if not all(field in names for field in _FAQ_FIELDS):
            raise CorpusError(path, "an FAQ file needs a header row with question and answer columns")
        for n, row in enumerate(reader, start=2):
            if None in row:  # csv puts the fields past the header's under None: an unquoted comma
                raise CorpusError(
                    path, f"line {n} has more fields than the header: put a field that holds commas in quotes"
                )
            rows.append((n, {f: row.get(names[f]) for f in _FAQ_FIELDS}))
    else:
        for n, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise CorpusError(path, f"line {n} is not JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise CorpusError(path, f"line {n}: expected an object with question and answer")
            rows.append((n, row))
    sections = []
    for n, row in rows:
        question, answer = (row.get(f) for f in _FAQ_FIELDS)
        if not any(isinstance(v, str) and v.strip() for v in (question, answer)):
            continue  # a blank row
        if not (
            isinstance(question, str) and question.strip() and isinstance(answer, str) and answer.strip()
        ):
            raise CorpusError(path, f"line {n}: needs both a question and an answer (text)")
        sections.append(f"## {' '.join(question.split())}\n\n{answer.strip()}")
    return "\n\n".join(sections), Metadata()
