"""The way one question takes through the code, from the ``/ask`` route to the response.

A stop is a call from one file of ``qa/`` into a function of another (properties and dunder methods
left out: they read data, they are not steps), counted once per distinct call (a loop over
candidates is one stop). The rooms of the way are the API, the engine and the question's stages
(``WAY``); the rest are libraries they read (the index, the word statistics, the models). A climb back
is a call from a room of the way into one the question entered before it: going back instead of on.
For docs/architecture.md.

    python tools/trace_question.py [QUESTION]
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from qa.api.app import create_app  # noqa: E402
from qa.config import Settings  # noqa: E402

PACKAGE = str(ROOT / "qa") + os.sep
WAY = (
    "api/",
    "engine.py",
    "pipeline/",
    "answer.py",
    "ranking.py",
    "retrieve.py",
)  # the last three: before the stages
# Functions read as attributes (@property, @cached_property) are data, not stops.
PROPERTIES = {
    line.split("def ", 1)[1].split("(")[0]
    for path in (ROOT / "qa").rglob("*.py")
    for before, line in zip(path.read_text().splitlines(), path.read_text().splitlines()[1:])
    if before.strip() in ("@property", "@cached_property", "@functools.cached_property") and "def " in line
}


def trace(question: str) -> dict[str, object]:
    edges: list[tuple[str, str, str]] = []
    recording = threading.Event()

    def profile(frame, event, arg):  # type: ignore[no-untyped-def]
        if event != "call" or not recording.is_set():
            return
        callee = frame.f_code.co_filename
        caller = frame.f_back.f_code.co_filename if frame.f_back else ""
        name = frame.f_code.co_name
        if name.startswith("__") or name in PROPERTIES:
            return
        if callee.startswith(PACKAGE) and caller.startswith(PACKAGE) and callee != caller:
            edges.append((caller[len(PACKAGE) :], callee[len(PACKAGE) :], frame.f_code.co_name))

    threading.setprofile(profile)  # every thread started from now on: the route runs in a worker
    sys.setprofile(profile)
    try:
        with TestClient(create_app(Settings(cache_size=0))) as client:
            client.post("/ask", json={"question": question})  # warm: the models' first call
            recording.set()
            response = client.post("/ask", json={"question": question})
            recording.clear()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    seen: set[tuple[str, str, str]] = set()
    way: list[tuple[str, str, str]] = []
    for edge in edges:
        if edge not in seen:
            seen.add(edge)
            way.append(edge)
    entered: list[str] = ["api/routes/ask.py"]  # the files in the order the question first enters them
    climbs = []
    for caller, callee, function in way:
        if caller not in entered:
            entered.append(caller)
        on_the_way = caller.startswith(WAY) and callee.startswith(WAY)
        if on_the_way and callee in entered and entered.index(callee) < entered.index(caller):
            climbs.append(f"{caller} -> {callee}:{function}")
        if callee not in entered:
            entered.append(callee)
    files = {f for edge in way for f in edge[:2]}
    return {
        "question": question,
        "stops": len(way),
        "files": len(files),
        "climbs_back": len(climbs),
        "way": [f"{a} -> {b}:{f}" for a, b, f in way],
        "climbs": climbs,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(trace(" ".join(sys.argv[1:]) or "Who leads the task force?"), indent=1))
