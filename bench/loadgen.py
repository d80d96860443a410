"""Load generation for the benchmarks with wrk (Debian's `wrk`, a C load generator on epoll):
it costs the machine a few percent of one core, so on 2 cores the server is not starved by its
own load. Loopback only, bounded in time.

    python -m bench.loadgen URL QUESTIONS.json --clients 8 --seconds 10 [--faq]

Prints one JSON object: requests, requests per second, latency percentiles (ms), errors.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = """
local bodies = {%(bodies)s}
local popular = math.min(20, #bodies)
local faq = %(faq)s
local counter = 0
function init(args)
  math.randomseed(%(seed)d + counter + os.time())
  counter = math.random(#bodies)
end
function request()
  local i
  if faq then
    if math.random() < 0.8 then i = math.random(popular) else i = math.random(#bodies) end
  else
    counter = counter %% #bodies + 1
    i = counter
  end
  return wrk.format("POST", "/ask", {["Content-Type"] = "application/json"}, bodies[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "seconds": %%.3f, "errors": %%d, "p50_ms": %%.3f, "p95_ms": %%.3f, "p99_ms": %%.3f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def run(url: str, questions: list[str], clients: int, seconds: float, faq: bool = False) -> dict:
    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError("the load generator only targets loopback addresses")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    bodies = ",".join(f"[==[{json.dumps({'question': q, 'top_k': 3})}]==]" for q in questions)
    with tempfile.TemporaryDirectory(prefix="qa-wrk-") as tmp:
        script = Path(tmp) / "ask.lua"
        script.write_text(SCRIPT % {"bodies": bodies, "faq": "true" if faq else "false", "seed": 7})
        threads = max(1, min(2, clients))
        out = subprocess.run(
            [
                wrk,
                "-t",
                str(threads),
                "-c",
                str(clients),
                "-d",
                f"{max(1, round(seconds))}s",  # wrk takes whole seconds
                "--timeout",
                "30s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["clients"] = clients
    result["rps"] = round(result["requests"] / result["seconds"], 2) if result["seconds"] else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("questions", help="JSON file with a list of questions")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--faq", action="store_true", help="80%% of requests among the first 20 questions")
    args = parser.parse_args()
    questions = json.loads(Path(args.questions).read_text(encoding="utf-8"))
    try:
        print(json.dumps(run(args.url, questions, args.clients, args.seconds, args.faq)))
    except (ValueError, RuntimeError, subprocess.CalledProcessError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
