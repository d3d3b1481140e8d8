"""Scale: write many chunks with precomputed 384-d vectors through ragtide's store, then search.

The rows are built beforehand (chunk-sized text of ~1,000 characters, random unit vectors),
so what is timed is ragtide's store and Milvus: rows/s from the first write to the last
acknowledgement, with writes issued as the ingest pipeline issues them (batches of 128,
several at once). Then single-client search latency (top 10, Session), once right after
the writes and once Milvus has indexed every sealed segment.

    python benchmarks/scale.py --uri http://127.0.0.1:19531 --rows 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import numpy as np
from pymilvus import MilvusClient

from ragtide import Chunk, MilvusStore
from ragtide.store import Row

DIM = 384
NAME = "bench_scale"
WORDS = (
    "revenue segment driver platform quarter growth network model essay startup painting program "
    "language investor company market user product delivery mobility freight lisp server"
).split()


def make_rows(n: int, seed: int = 0) -> list[Row]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = np.array(WORDS)[rng.integers(0, len(WORDS), size=(n, 140))]
    rows = []
    for i in range(n):
        doc = i // 500
        text = " ".join(words[i])
        chunk = Chunk(
            id=f"{doc:06d}-{i:08d}",
            doc_id=f"doc-{doc:06d}",
            source=f"/data/doc-{doc:06d}.txt",
            text=text,
            index=i % 500,
            start=0,
            end=len(text),
            metadata={"type": "txt"},
        )
        rows.append(Row(chunk, vectors[i], doc_hash=f"h{doc}", n_chunks=500))
    return rows


async def latencies(store: MilvusStore, queries: np.ndarray) -> dict:
    spent = []
    for q in queries:
        t = time.perf_counter()
        hits = await store.search(q, 10)
        spent.append(time.perf_counter() - t)
        assert len(hits) == 10
    spent.sort()
    return {
        "p50_ms": round(1000 * statistics.median(spent), 2),
        "p99_ms": round(1000 * spent[int(0.99 * (len(spent) - 1))], 2),
    }


async def run(uri: str, n: int, batch: int, concurrency: int, searches: int, index_wait: float) -> dict:
    rows = make_rows(n)
    queries = make_rows(searches, seed=1)
    admin = MilvusClient(uri=uri)  # counts and index progress, outside what is timed
    admin.drop_collection(NAME)
    store = MilvusStore(uri, collection=NAME)
    await store.open("random-384", DIM)
    slots = asyncio.Semaphore(concurrency)

    async def write(part: list[Row]) -> None:
        async with slots:
            await store.write(part)

    t, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(write(rows[i : i + batch]) for i in range(0, n, batch)))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    count = admin.query(NAME, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    assert count == n, f"{count} rows in Milvus, wrote {n}"
    print(f"wrote {n} rows in {wall:.1f} s", file=sys.stderr, flush=True)
    # CPU this client spent (pymilvus building requests, mostly); the rest of the wall
    # time it waited for Milvus, which shares the machine's cores.
    out = {
        "rows": n,
        "write_s": round(wall, 2),
        "rows_per_s": round(n / wall),
        "client_cpu_s": round(cpu, 2),
        "search_right_after": await latencies(store, [q.vector for q in queries]),
    }
    print(f"searched: {out['search_right_after']}; waiting for the index", file=sys.stderr, flush=True)

    # Milvus indexes sealed segments in the background (the last, still growing one is
    # searched as it is); wait until every sealed row is indexed and that holds a while.
    t = time.perf_counter()
    steady = 0
    while time.perf_counter() - t < index_wait and steady < 3:
        await asyncio.sleep(5)
        index = admin.describe_index(NAME, "vector")
        total, indexed, pending = (index.get(k, -1) for k in ("total_rows", "indexed_rows", "pending_index_rows"))
        # Milvus 2.3.5 reports pending_index_rows oddly: 0 or total_rows once nothing is left.
        done = 0 < indexed == total and pending in (0, total)
        steady = steady + 1 if done else 0
    out["index_wait_s"] = round(time.perf_counter() - t, 1)
    out["indexed_rows"] = index.get("indexed_rows")
    print(f"index: {index}", file=sys.stderr, flush=True)
    out["search_indexed"] = await latencies(store, [q.vector for q in queries])
    await store.close()
    admin.drop_collection(NAME)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=128, help="rows per store.write call, as the pipeline writes")
    parser.add_argument("--concurrency", type=int, default=8, help="store.write calls in flight at once")
    parser.add_argument("--searches", type=int, default=500)
    parser.add_argument("--index-wait", type=float, default=300, help="seconds to wait for Milvus to index every row")
    args = parser.parse_args()
    r = asyncio.run(run(args.uri, args.rows, args.batch, args.concurrency, args.searches, args.index_wait))
    print(
        f"{r['rows']} rows in {r['write_s']} s ({r['client_cpu_s']} s of client CPU): {r['rows_per_s']} rows/s; search p50/p99 "
        f"{r['search_right_after']['p50_ms']}/{r['search_right_after']['p99_ms']} ms right after, "
        f"{r['search_indexed']['p50_ms']}/{r['search_indexed']['p99_ms']} ms once indexed "
        f"({r['indexed_rows']} rows indexed after {r['index_wait_s']} s)"
    )
    print(json.dumps({"uri": args.uri, **r}))


if __name__ == "__main__":
    main()
