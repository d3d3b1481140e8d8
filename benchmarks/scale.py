"""Scale: write many chunks with precomputed 384-d vectors through ragtide's store, then search.

The rows are built beforehand (chunk-sized text of ~1,000 characters, random unit vectors),
so what is timed is ragtide's store and Milvus: rows/s from the first write to the last
acknowledgement, with writes issued as the ingest pipeline issues them (batches of 128,
several at once). Then single-client search latency (top 10, Session), once right after
the writes and once Milvus has indexed every row.

    python benchmarks/scale.py --uri http://127.0.0.1:19531 --rows 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import numpy as np
from pymilvus import MilvusClient

from ragtide import Chunk, MilvusStore
from ragtide.store import Row

DIM = 384
NAME = "bench_scale"
WORDS = ("revenue segment driver platform quarter growth network model essay startup painting program "
         "language investor company market user product delivery mobility freight lisp server").split()


def make_rows(n: int, seed: int = 0) -> list[Row]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = np.array(WORDS)[rng.integers(0, len(WORDS), size=(n, 140))]
    rows = []
    for i in range(n):
        doc = i // 500
        text = " ".join(words[i])
        chunk = Chunk(id=f"{doc:06d}-{i:08d}", doc_id=f"doc-{doc:06d}", source=f"/data/doc-{doc:06d}.txt", text=text,
                      index=i % 500, start=0, end=len(text), metadata={"type": "txt"})
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
    return {"p50_ms": round(1000 * statistics.median(spent), 2), "p99_ms": round(1000 * spent[int(0.99 * (len(spent) - 1))], 2)}


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

    t = time.perf_counter()
    await asyncio.gather(*(write(rows[i:i + batch]) for i in range(0, n, batch)))
    wall = time.perf_counter() - t
    count = admin.query(NAME, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    assert count == n, f"{count} rows in Milvus, wrote {n}"
    out = {"rows": n, "write_s": round(wall, 2), "rows_per_s": round(n / wall),
           "search_right_after": await latencies(store, [q.vector for q in queries])}

    t = time.perf_counter()
    while time.perf_counter() - t < index_wait:
        index = admin.describe_index(NAME, "vector")
        if index.get("pending_index_rows", 0) == 0 and index.get("indexed_rows", 0) >= n:
            break
        await asyncio.sleep(2)
    out["index_wait_s"] = round(time.perf_counter() - t, 1)
    out["indexed_rows"] = index.get("indexed_rows")
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
    print(f"{r['rows']} rows in {r['write_s']} s: {r['rows_per_s']} rows/s; search p50/p99 "
          f"{r['search_right_after']['p50_ms']}/{r['search_right_after']['p99_ms']} ms right after, "
          f"{r['search_indexed']['p50_ms']}/{r['search_indexed']['p99_ms']} ms once indexed "
          f"({r['indexed_rows']} rows indexed after {r['index_wait_s']} s)")
    print(json.dumps({"uri": args.uri, **r}))


if __name__ == "__main__":
    main()
