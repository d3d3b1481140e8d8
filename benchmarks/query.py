"""Retrieval-only query latency and throughput through ragtide's engine (`aretrieve`).

Ingests the essay (once per backend), then asks questions: one client in sequence for
p50/p99 latency, then 1, 8 and 64 concurrent clients for questions per second. The
questions include embedding them with the default model, as a user's would.

    python benchmarks/query.py --uri http://127.0.0.1:19531
    python benchmarks/query.py --uri /tmp/bench/query.db
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
TOPICS = ["painting", "Lisp", "Viaweb", "Y Combinator", "the IBM 1401", "RISD", "Interleaf", "Florence",
          "microcomputers", "essays", "startups", "Robert Morris", "Hacker News", "Arc", "angel investing", "Cambridge"]


def questions(n: int) -> list[str]:
    # Distinct questions, so no layer can answer from a cache.
    return [f"What did the author say about {TOPICS[i % len(TOPICS)]} (variant {i})?" for i in range(n)]


async def run(uri: str, sequential: int, per_client: int) -> dict:
    async with RAG(uri=uri, collection="bench_query") as rag:
        await rag.aingest([ESSAY])
        await rag.aretrieve("warm up")
        latencies = []
        for q in questions(sequential):
            t = time.perf_counter()
            await rag.aretrieve(q)
            latencies.append(time.perf_counter() - t)
        latencies.sort()
        out = {"uri": uri, "p50_ms": round(1000 * statistics.median(latencies), 2),
               "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2), "throughput_qps": {}}
        for clients in (1, 8, 64):
            qs = questions(clients * per_client)

            async def client(k: int) -> None:
                for q in qs[k::clients]:
                    await rag.aretrieve(q)

            t = time.perf_counter()
            await asyncio.gather(*(client(k) for k in range(clients)))
            out["throughput_qps"][clients] = round(len(qs) / (time.perf_counter() - t), 1)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--per-client", type=int, default=16)
    args = parser.parse_args()
    result = asyncio.run(run(args.uri, args.sequential, args.per_client))
    print(f"{result['uri']}: one client p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; "
          + ", ".join(f"{c} clients {q} q/s" for c, q in result["throughput_qps"].items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
