"""Write the figures tables of docs/ from the commands' JSON output kept in docs/figures/, so that no
figure in the docs is typed by hand.

    qa bench removed SQUAD_V1 --json > docs/figures/removed-held-out.json
    qa eval --json > docs/figures/eval.json
    python docs/tables.py        (make docs-tables; --check: exit 1 if a page is out of date)

A table sits in a page (of docs/, or the README) between two markers naming its file:

    <!-- table: removed-held-out.json -->
    ...written here...
    <!-- end table -->

A report with a "table" (every `qa bench ... --json`) gives that table; `qa eval --json` gives its
per-file report, each kind of question on a row of its own, or one row a file with
`<!-- table: eval.json files -->`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
FIGURES = DOCS / "figures"
BLOCK = re.compile(
    r"(<!-- table: (?P<name>[\w.-]+)(?: (?P<view>files))? -->\n)(?P<body>.*?)(<!-- end table -->)", re.DOTALL
)
PAGES = [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md"]


def render(report: dict, view: str | None = None) -> str:
    if "table" in report:
        return str(report["table"]).rstrip("\n")
    if "sets" in report or "used" in report:
        from qa.evaluation.evaluate import format_report

        sets = report.get("sets") or {"questions": {k: v for k, v in report.items() if k != "used"}}
        lines = format_report(sets).rstrip("\n").splitlines()
        if view == "files":  # the header and a row a file: no row per kind, no footer, no legend
            lines = [
                line for line in lines[: lines.index("") if "" in lines else None] if not line.startswith(" ")
            ]
        return "```\n" + "\n".join(lines) + "\n```"
    raise ValueError("a report with neither a table nor qa eval's metrics")


def rewrite(page: Path) -> bool:
    """Fill the page's tables from their files; whether it changed."""
    text = page.read_text(encoding="utf-8")

    def filled(match: re.Match[str]) -> str:
        source = FIGURES / match["name"]
        if not source.is_file():
            raise SystemExit(f"{page.name}: no {source.relative_to(DOCS.parent)} for its table")
        report = json.loads(source.read_text(encoding="utf-8"))
        return f"{match[1]}{render(report, match['view'])}\n{match[5]}"

    new = BLOCK.sub(filled, text)
    if new != text:
        page.write_text(new, encoding="utf-8")
    return new != text


def main() -> None:
    check = "--check" in sys.argv[1:]
    changed = []
    for page in PAGES:
        before = page.read_text(encoding="utf-8")
        if rewrite(page):
            changed.append(page.name)
            if check:
                page.write_text(before, encoding="utf-8")
    if changed:
        print(("out of date: " if check else "written: ") + ", ".join(changed))
    if check and changed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
