"""The docs' figures tables are written from the commands' JSON reports (docs/tables.py), never by
hand: a page whose table differs from its report fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_figures_tables_in_docs_match_their_reports() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "tables.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_table_is_written_between_its_markers_from_its_report(tmp_path: Path, monkeypatch) -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import tables
    finally:
        sys.path.pop(0)
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "speed.json").write_text('{"table": "| a | b |\\n|---|---|\\n| 1 | 2 |", "p50": 3}')
    monkeypatch.setattr(tables, "FIGURES", figures)
    page = tmp_path / "page.md"
    page.write_text("Before.\n\n<!-- table: speed.json -->\n| old | table |\n<!-- end table -->\n\nAfter.\n")
    assert tables.rewrite(page)
    assert page.read_text() == (
        "Before.\n\n<!-- table: speed.json -->\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- end table -->\n\nAfter.\n"
    )
    assert not tables.rewrite(page)  # written once, nothing to change
