"""Load generator for the benchmarks: run as its own process so it never shares the server's
interpreter. asyncio + httpx, N concurrent clients on loopback, bounded by count and time.

    python -m qa.loadgen URL QUESTIONS.json --clients 8 --requests 400 [--seconds 60] [--faq]

Prints one JSON object: latencies (ms) percentiles, requests per second, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

import httpx
import numpy as np


def _workload(questions: list[str], n: int, faq: bool, seed: int) -> list[str]:
    rng = random.Random(seed)
    if not faq:
        return [questions[i % len(questions)] for i in range(n)]
    popular, rest = questions[:20], questions[20:] or questions
    return [rng.choice(popular) if rng.random() < 0.8 else rng.choice(rest) for _ in range(n)]


async def run(url: str, questions: list[str], clients: int, requests: int, seconds: float, faq: bool) -> dict:
    work = _workload(questions, requests, faq, seed=7)
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    next_item = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:

        async def client() -> None:
            nonlocal next_item
            while time.monotonic() < deadline:
                if requests and next_item >= len(work):
                    return
                question = work[next_item % len(work)]
                next_item += 1
                started = time.perf_counter()
                try:
                    response = await http.post("/ask", json={"question": question, "top_k": 3})
                    if response.status_code != 200:
                        errors.append(str(response.status_code))
                except httpx.HTTPError as error:
                    errors.append(type(error).__name__)
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) if latencies else np.zeros(1)
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 2) if elapsed else 0.0,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("questions", help="JSON file with a list of questions")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--requests", type=int, default=0, help="0 = until --seconds")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--faq", action="store_true", help="80%% of requests among the first 20 questions")
    args = parser.parse_args()
    with open(args.questions, encoding="utf-8") as handle:
        questions = json.load(handle)
    if not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        sys.exit("the load generator only targets loopback addresses")
    result = asyncio.run(run(args.url, questions, args.clients, args.requests, args.seconds, args.faq))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
