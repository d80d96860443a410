"""Write the figures tables of docs/ from the commands' JSON output kept in docs/figures/, so that no
figure in the docs is typed by hand.

    qa bench removed SQUAD_V1 --json > docs/figures/removed-held-out.json
    qa eval --json > docs/figures/eval.json
    python docs/tables.py        (make docs-tables; --check: exit 1 if a page is out of date)

A table sits in a page between two markers naming its file:

    <!-- table: removed-held-out.json -->
    ...written here...
    <!-- end table -->

A report with a "table" (every `qa bench ... --json`) gives that table; `qa eval --json` gives its
per-file report.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
FIGURES = DOCS / "figures"
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.DOTALL)


def render(report: dict) -> str:
    if "table" in report:
        return str(report["table"]).rstrip("\n")
    if "sets" in report or "used" in report:
        from qa.evaluation.evaluate import format_report

        sets = report.get("sets") or {"questions": {k: v for k, v in report.items() if k != "used"}}
        return "```\n" + format_report(sets).rstrip("\n") + "\n```"
    raise ValueError("a report with neither a table nor qa eval's metrics")


def rewrite(page: Path) -> bool:
    """Fill the page's tables from their files; whether it changed."""
    text = page.read_text(encoding="utf-8")

    def filled(match: re.Match[str]) -> str:
        source = FIGURES / match["name"]
        if not source.is_file():
            raise SystemExit(f"{page.name}: no {source.relative_to(DOCS.parent)} for its table")
        return f"{match[1]}{render(json.loads(source.read_text(encoding='utf-8')))}\n{match[4]}"

    new = BLOCK.sub(filled, text)
    if new != text:
        page.write_text(new, encoding="utf-8")
    return new != text


def main() -> None:
    check = "--check" in sys.argv[1:]
    changed = []
    for page in sorted(DOCS.glob("*.md")):
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
