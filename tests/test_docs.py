"""The docs' figures tables are written from the commands' JSON reports (docs/tables.py), never by
hand: a page whose table differs from its report fails here."""

from __future__ import annotations

import json
import re
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


def test_the_files_view_of_an_eval_report_keeps_one_row_a_file(tmp_path: Path, monkeypatch) -> None:
    """`<!-- table: eval.json files -->` (the README's): the header and one row per question file,
    without the rows per kind, the footers and the legend of the full report."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import tables
    finally:
        sys.path.pop(0)
    report = (ROOT / "docs" / "figures" / "eval.json").read_text(encoding="utf-8")
    names = sorted(json.loads(report)["sets"])
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "eval.json").write_text(report, encoding="utf-8")
    monkeypatch.setattr(tables, "FIGURES", figures)
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- table: eval.json files -->\n<!-- end table -->\n<!-- table: eval.json -->\n<!-- end table -->\n"
    )
    assert tables.rewrite(page)
    files_view, full = page.read_text().split("<!-- table: eval.json -->")
    rows = files_view.split("```")[1].strip("\n").splitlines()
    assert rows[0].startswith("set / kind") and [row.split()[0] for row in rows[1:]] == names
    assert "  answerable" in full and "hit@1     answered" in full  # the full report keeps them


def test_every_link_between_the_pages_leads_to_a_file() -> None:
    """A relative link in the README or docs/ (a page, an image) names a file of the repository."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in pages
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8"))
        if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists()
    ]
    assert len(pages) > 5 and not broken
