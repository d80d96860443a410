"""Word documents (.docx): paragraphs by style (python-docx)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from qa.errors import CorpusError
from qa.readers.base import Metadata


def read_word(path: Path, raw: bytes) -> tuple[str, Metadata]:
    """Word documents (python-docx): paragraphs in the Title and Heading styles become headings (by
    style, not by looks),
    list paragraphs list items, each table row a line of its cells."""
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(raw))
        blocks: list[tuple[str, str]] = []  # (kind, text)
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                for row in item.rows:
                    cells = [" ".join(c.text.split()) for c in row.cells]
                    if any(cells):
                        blocks.append(("row", " | ".join(cells)))
                continue
            text = " ".join(item.text.split())
            style = item.style.name if item.style is not None else ""
            # The Title style is the outermost heading, Heading 1 the next level down, and so on.
            heading = re.match(r"Heading (\d)", style)
            level = 1 if style == "Title" else int(heading.group(1)) + 1 if heading else 0
            if not text:
                continue
            if level:
                blocks.append(("heading", "#" * min(level, 6) + " " + text))
            elif style.startswith("List"):
                blocks.append(("item", "- " + text))
            else:
                blocks.append(("paragraph", text))
        title = document.core_properties.title
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise CorpusError(path, f"unreadable Word document ({type(error).__name__})") from error
    text = ""
    for i, (kind, block) in enumerate(blocks):
        together = i > 0 and kind in ("item", "row") and blocks[i - 1][0] == kind  # one list, one table
        text += ("\n" if together else "\n\n" if text else "") + block
    first_heading = next((b.lstrip("# ") for k, b in blocks if k == "heading"), None)
    return text, Metadata(title=(title or "").strip() or first_heading)
