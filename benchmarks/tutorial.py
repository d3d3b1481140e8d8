"""The tutorial's low-level benchmark: ragtide's drop-in against LlamaIndex's MilvusVectorStore.

One node per add call, top_k 3, 768-d random vectors, COSINE, consistency Strong, as in
"RAG with Milvus and LlamaIndex Async API". Both run on the same Milvus in the same run,
alternating, each in its own virtualenv (LlamaIndex's pins pymilvus < 3):

    python benchmarks/tutorial.py --uri http://127.0.0.1:19531 --repeat 3
    python benchmarks/tutorial.py --uri /tmp/bench/lite.db --repeat 1 --n 100 1000

Each timed phase starts after a full garbage collection, so that neither side pays
for the garbage of the setup before it (a full collection here costs ~0.1 s, as
much as a whole phase). Prints a table of medians with ratios and a final JSON line. Sequential Strong queries
cost ~0.2 s each on a server, so `sync query` runs at most --sync-query-max calls.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENVS = {"ragtide": ROOT / ".venv", "llamaindex": ROOT / ".venv-llamaindex"}
WORK = ("sync add", "async add", "sync query", "async query")


def worker(impl: str, uri: str, sizes: list[int], sync_query_max: int) -> dict:
    """Runs inside one implementation's virtualenv; prints seconds per (work, n)."""
    import numpy as np
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery

    if impl == "ragtide":
        from ragtide.llama_index import MilvusVectorStore
    else:
        from llama_index.vector_stores.milvus import MilvusVectorStore

    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    for n in sizes:
        vectors = rng.standard_normal((n, 768)).astype("float32")
        nodes = [TextNode(id_=f"{n}-{i}", text=f"node {i} " * 20, embedding=v.tolist()) for i, v in enumerate(vectors)]
        queries = [VectorStoreQuery(query_embedding=v.tolist(), similarity_top_k=3) for v in vectors]

        def make():
            return MilvusVectorStore(uri=uri, dim=768, collection_name=f"bench_{impl}", embedding_field="embedding",
                                     id_field="id", similarity_metric="COSINE", consistency_level="Strong", overwrite=True)

        store = make()
        gc.collect()
        t = time.perf_counter()
        for node in nodes:
            store.add([node])
        out[f"sync add|{n}"] = time.perf_counter() - t

        store = make()

        async def gathered():
            # One event loop for both phases, as in the notebook: LlamaIndex's store binds
            # its async client to the first loop it sees.
            gc.collect()
            t = time.perf_counter()
            await asyncio.gather(*(store.async_add([node]) for node in nodes))
            out[f"async add|{n}"] = time.perf_counter() - t
            gc.collect()
            t = time.perf_counter()
            results = await asyncio.gather(*(store.aquery(q) for q in queries))
            out[f"async query|{n}"] = time.perf_counter() - t
            assert all(len(r.ids) == 3 for r in results)

        asyncio.run(gathered())

        m = min(n, sync_query_max)
        gc.collect()
        t = time.perf_counter()
        for q in queries[:m]:
            assert len(store.query(q).ids) == 3
        out[f"sync query|{n}"] = (time.perf_counter() - t) * n / m  # scaled to n calls when capped
        if hasattr(store, "close"):
            store.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sync-query-max", type=int, default=100)
    parser.add_argument("--worker", choices=list(VENVS))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.uri, args.n, args.sync_query_max)))
        return 0
    runs: dict[str, list[dict]] = {impl: [] for impl in VENVS}
    for r in range(args.repeat):
        for impl, venv in VENVS.items():  # alternating, on the same Milvus
            uri = args.uri if "://" in args.uri else str(Path(args.uri).with_name(f"{impl}.db"))
            cmd = [str(venv / "bin" / "python"), __file__, "--worker", impl, "--uri", uri, "--n", *map(str, args.n),
                   "--sync-query-max", str(args.sync_query_max)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            runs[impl].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"run {r + 1}/{args.repeat} {impl}: done", file=sys.stderr, flush=True)
    median = {impl: {k: statistics.median(run[k] for run in rs) for k in rs[0]} for impl, rs in runs.items()}
    print(f"Milvus: {args.uri}; medians of {args.repeat}; seconds")
    print(f"{'work':<12} {'n':>5} {'LlamaIndex':>11} {'ragtide':>9} {'speed-up':>9}")
    rows = []
    for n in args.n:
        for work in WORK:
            key = f"{work}|{n}"
            li, rt = median["llamaindex"][key], median["ragtide"][key]
            rows.append({"work": work, "n": n, "llamaindex_s": round(li, 4), "ragtide_s": round(rt, 4), "speedup": round(li / rt, 2)})
            print(f"{work:<12} {n:>5} {li:>11.3f} {rt:>9.3f} {li / rt:>8.1f}x")
    print(json.dumps({"uri": args.uri, "repeat": args.repeat, "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
