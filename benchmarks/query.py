"""Retrieval-only query latency and throughput through ragtide's engine (`aretrieve`).

Ingests the essay (once per backend), then asks questions: one client in sequence for
p50/p99 latency, then 1, 8 and 64 concurrent clients for questions per second. The
questions include embedding them with the default model, as a user's would.

    python benchmarks/query.py --uri http://127.0.0.1:19531
    python benchmarks/query.py --uri /tmp/bench/query.db

Each retrieval mode the collection supports (dense; lexical and hybrid where the backend
has full-text search) is measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from ragtide import RAG

ESSAY = Path(__file__).resolve().parents[2] / "shared" / "data" / "paul_graham_essay.txt"
TOPICS = [
    "painting",
    "Lisp",
    "Viaweb",
    "Y Combinator",
    "the IBM 1401",
    "RISD",
    "Interleaf",
    "Florence",
    "microcomputers",
    "essays",
    "startups",
    "Robert Morris",
    "Hacker News",
    "Arc",
    "angel investing",
    "Cambridge",
]


def questions(n: int) -> list[str]:
    # Distinct questions, so no layer can answer from a cache.
    return [f"What did the author say about {TOPICS[i % len(TOPICS)]} (variant {i})?" for i in range(n)]


async def run(uri: str, sequential: int, per_client: int) -> dict:
    """Every retrieval mode the collection supports, measured side by side in one run:
    the sequential questions alternate between modes, so both see the same machine."""
    async with RAG(uri=uri, collection="bench_query") as rag:
        await rag.aingest([ESSAY])
        modes = (await rag.astatus()).modes
        for mode in modes:
            await rag.aretrieve("warm up", mode=mode)
        latencies: dict[str, list[float]] = {m: [] for m in modes}
        for q in questions(sequential):
            for mode in modes:
                t = time.perf_counter()
                await rag.aretrieve(q, mode=mode)
                latencies[mode].append(time.perf_counter() - t)
        out = {"uri": uri, "modes": {}}
        for mode in modes:
            lat = sorted(latencies[mode])
            result = out["modes"][mode] = {
                "p50_ms": round(1000 * statistics.median(lat), 2),
                "p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 2),
                "throughput_qps": {},
            }
            for clients in (1, 8, 64):
                qs = questions(clients * per_client)

                async def client(k: int) -> None:
                    for q in qs[k::clients]:
                        await rag.aretrieve(q, mode=mode)

                t = time.perf_counter()
                await asyncio.gather(*(client(k) for k in range(clients)))
                result["throughput_qps"][clients] = round(len(qs) / (time.perf_counter() - t), 1)
        if "hybrid" in out["modes"]:
            out["hybrid_p50_over_dense"] = round(out["modes"]["hybrid"]["p50_ms"] / out["modes"]["dense"]["p50_ms"], 2)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--per-client", type=int, default=16)
    args = parser.parse_args()
    result = asyncio.run(run(args.uri, args.sequential, args.per_client))
    for mode, r in result["modes"].items():
        print(
            f"{result['uri']} {mode}: one client p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; "
            + ", ".join(f"{c} clients {q} q/s" for c, q in r["throughput_qps"].items())
        )
    if "hybrid_p50_over_dense" in result:
        print(f"hybrid p50 / dense p50: {result['hybrid_p50_over_dense']}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
