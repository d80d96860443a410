"""OpenAPI fuzzing with schemathesis against a live server: no 5xx, every response valid against
the schema (status codes, content types, headers, bodies).

Bounded in `make test`; `make fuzz` sets QA_FUZZ_EXAMPLES=150 for the full run (over 1,000 requests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Server

pytestmark = pytest.mark.slow

EXAMPLES = os.environ.get("QA_FUZZ_EXAMPLES", "15")


def test_schemathesis_finds_no_failure(article_server: Server) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(cli),
            "run",
            article_server.url + "/openapi.json",
            "--max-examples",
            EXAMPLES,
            "--seed",
            "1",
            "--checks",
            "all",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    summary = result.stdout[-3000:]
    generated = re.search(r"(\d+) generated", result.stdout)
    print(f"\nschemathesis: {generated.group(0) if generated else '?'} test cases\n{summary}")
    assert result.returncode == 0, summary
    assert generated and int(generated.group(1)) >= 100
