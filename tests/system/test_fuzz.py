"""OpenAPI fuzzing with schemathesis against a live server: no 5xx, every response valid against
the schema (status codes, content types, headers, bodies).

Bounded in `make test`; `make fuzz` sets QA_FUZZ_EXAMPLES=150 for the full run (over 2,000 requests
from schemathesis, and 1,500 raw JSON bodies with lone surrogates and non-finite numbers).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import hypothesis
import pytest
from hypothesis import strategies as st

from tests.conftest import Server

pytestmark = pytest.mark.slow

EXAMPLES = os.environ.get("QA_FUZZ_EXAMPLES", "15")


def test_schemathesis_finds_no_failure(article_server: Server) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(cli),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
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


# JSON that schema-driven generation does not write: lone surrogates (\ud800 escapes), NaN,
# Infinity and numbers beyond float range, in known and unknown fields, nested anywhere.
_scalars = st.one_of(
    st.text(st.characters(codec=None), max_size=40),  # surrogates included
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(),
    st.none(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
_bodies = st.fixed_dictionaries(
    {},
    optional={
        "question": _values | st.text(st.characters(codec=None), min_size=1, max_size=60),
        "top_k": _values,
        "explain": _values,
    },
).flatmap(
    lambda known: st.dictionaries(st.text(st.characters(codec=None), max_size=8), _values, max_size=2).map(
        lambda extra: {**extra, **known}
    )
)


def _raw(body: dict, huge: bool) -> bytes:
    text = json.dumps(body, ensure_ascii=True, allow_nan=True)  # \udxxx escapes, NaN, Infinity
    return (text.replace("Infinity", "1e309", 1) if huge else text).encode("ascii")


def test_raw_json_bodies_never_get_a_server_error(article_server: Server) -> None:
    statuses: list[int] = []

    @hypothesis.settings(max_examples=10 * int(EXAMPLES), deadline=None, database=None)
    @hypothesis.given(body=_bodies, huge=st.booleans())
    def post(body: dict, huge: bool) -> None:
        response = httpx.post(
            article_server.url + "/ask",
            content=_raw(body, huge),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        statuses.append(response.status_code)
        assert response.status_code < 500, (body, response.text)
        response.json()  # every answer, errors included, is JSON

    post()
    print(f"\nraw JSON bodies: {len(statuses)} requests, {sum(s >= 500 for s in statuses)} server errors")
    assert len(statuses) >= 10 * int(EXAMPLES)
