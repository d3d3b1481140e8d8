"""The tutorial's low-level benchmark: ragtide's drop-in against LlamaIndex's MilvusVectorStore.

Two tables, each with both stores on the same Milvus in the same run, alternating, each
in its own virtualenv (LlamaIndex's pins pymilvus < 3):

- "notebook": the notebook "RAG with Milvus and LlamaIndex Async API" as written: nodes
  with 16-digit random ids, text ``n{i}_text``, embedding ``[0.5] * 767 + [random()]``
  and a SOURCE relationship; adds of 10, 100, 1000 into one store; 1,000 nodes added in
  one call before searching; every query the same vector ``[0.5] * 767 + [0.6]``, top 3.
- "variant": ragtide's harder variant: distinct random vectors for nodes and queries,
  texts of 160 characters, a fresh store per size.

Both: one node per add call, COSINE, consistency Strong.

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
TABLES = ("notebook", "variant")
DIM = 768


def notebook_worker(impl: str, uri: str, sizes: list[int], sync_query_max: int) -> dict:
    """The notebook's own node and query construction and order of work."""
    import random

    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery

    if impl == "ragtide":
        from ragtide.llama_index import MilvusVectorStore
    else:
        from llama_index.vector_stores.milvus import MilvusVectorStore

    def init_vector_store():
        return MilvusVectorStore(
            uri=uri,
            dim=DIM,
            collection_name="test_collection",
            embedding_field="embedding",
            id_field="id",
            similarity_metric="COSINE",
            consistency_level="Strong",
            overwrite=True,
        )

    def random_id() -> str:
        return "".join(str(random.randint(0, 9)) for _ in range(16))

    def produce_nodes(num_adding: int) -> list:
        return [
            TextNode(
                id_=random_id(),
                text=f"n{i}_text",
                embedding=[0.5] * (DIM - 1) + [random.random()],
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"n{i + 1}")},
            )
            for i in range(num_adding)
        ]

    def query() -> VectorStoreQuery:
        return VectorStoreQuery(query_embedding=[0.5] * (DIM - 1) + [0.6], similarity_top_k=3)

    out: dict[str, float] = {}
    stores = []
    loop = asyncio.new_event_loop()  # one loop for every async phase, as in the notebook

    def new_store():
        stores.append(init_vector_store())
        return stores[-1]

    def gathered(calls):
        async def gather():
            return await asyncio.gather(*calls)

        return loop.run_until_complete(gather())

    def timed(key: str, work):
        gc.collect()
        t = time.perf_counter()
        result = work()
        out[key] = time.perf_counter() - t
        return result

    store = new_store()
    for n in sizes:
        nodes = produce_nodes(n)
        timed(f"async add|{n}", lambda: gathered([store.async_add([x]) for x in nodes]))
    store = new_store()
    for n in sizes:
        nodes = produce_nodes(n)
        timed(f"sync add|{n}", lambda: [store.add([x]) for x in nodes])
    store = new_store()
    store.add(produce_nodes(1000))
    for n in sizes:
        results = timed(f"async query|{n}", lambda: gathered([store.aquery(query=query()) for _ in range(n)]))
        assert all(len(r.ids) == 3 for r in results)
    for n in sizes:
        m = min(n, sync_query_max)
        timed(f"sync query|{n}", lambda: [store.query(query=query()) for _ in range(m)])
        out[f"sync query|{n}"] *= n / m  # scaled to n calls when capped
    for s in stores:
        if hasattr(s, "close"):
            s.close()
    loop.close()
    return out


def variant_worker(impl: str, uri: str, sizes: list[int], sync_query_max: int) -> dict:
    """ragtide's variant: distinct random vectors, longer texts, a fresh store per size."""
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
            return MilvusVectorStore(
                uri=uri,
                dim=768,
                collection_name=f"bench_{impl}",
                embedding_field="embedding",
                id_field="id",
                similarity_metric="COSINE",
                consistency_level="Strong",
                overwrite=True,
            )

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
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES))
    parser.add_argument("--worker", choices=list(VENVS))
    parser.add_argument("--table", choices=TABLES)
    args = parser.parse_args()
    if args.worker:
        work = notebook_worker if args.table == "notebook" else variant_worker
        print(json.dumps(work(args.worker, args.uri, args.n, args.sync_query_max)))
        return 0
    runs: dict[tuple[str, str], list[dict]] = {(t, impl): [] for t in args.tables for impl in VENVS}
    for r in range(args.repeat):
        for table, impl in runs:  # alternating, on the same Milvus
            uri = args.uri if "://" in args.uri else str(Path(args.uri).with_name(f"{impl}.db"))
            cmd = [
                str(VENVS[impl] / "bin" / "python"),
                __file__,
                "--worker",
                impl,
                "--table",
                table,
                "--uri",
                uri,
                "--n",
                *map(str, args.n),
                "--sync-query-max",
                str(args.sync_query_max),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            runs[table, impl].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"run {r + 1}/{args.repeat} {table} {impl}: done", file=sys.stderr, flush=True)
    median = {key: {k: statistics.median(run[k] for run in rs) for k in rs[0]} for key, rs in runs.items()}
    rows = []
    for table in args.tables:
        print(f"{table}: Milvus {args.uri}; medians of {args.repeat}; seconds")
        print(f"{'work':<12} {'n':>5} {'LlamaIndex':>11} {'ragtide':>9} {'speed-up':>9}")
        for n in args.n:
            for work in WORK:
                key = f"{work}|{n}"
                li, rt = median[table, "llamaindex"][key], median[table, "ragtide"][key]
                rows.append(
                    {
                        "table": table,
                        "work": work,
                        "n": n,
                        "llamaindex_s": round(li, 4),
                        "ragtide_s": round(rt, 4),
                        "speedup": round(li / rt, 2),
                    }
                )
                print(f"{work:<12} {n:>5} {li:>11.3f} {rt:>9.3f} {li / rt:>8.1f}x")
    print(json.dumps({"uri": args.uri, "repeat": args.repeat, "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
