"""Why LlamaIndex's own gathered ``aquery`` x1000 takes 3.9 s in the notebook's table and
9.0 s in ragtide's variant (``benchmarks/tutorial.py``): one difference at a time,
LlamaIndex's ``MilvusVectorStore`` alone, on the same server, alternating, medians.

The two tables differ in the stored nodes (the notebook's 16-digit ids, ``n{i}_text``,
``[0.5] * 767 + [random()]`` and a SOURCE relationship; the variant's 160-character texts
and random normal vectors), in the queries (the notebook repeats one vector; the
variant's are distinct), and in how the rows got there just before the queries (the
notebook adds 1,000 nodes in one call and queries later; the variant queries right after
1,000 one-node ``async_add`` calls gathered at once).

    .venv-llamaindex/bin/python benchmarks/llamaindex_baseline.py --uri http://127.0.0.1:19531
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import time

import numpy as np
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery
from llama_index.vector_stores.milvus import MilvusVectorStore

DIM = 768
N = 1000
rng = np.random.default_rng(0)

# (stored nodes, how they were added, queries, seconds between the adds and the queries)
CASES = [
    ("notebook", "one add", "same", 0),  # the notebook's table
    ("notebook", "one add", "distinct", 0),
    ("variant", "one add", "same", 0),
    ("variant", "one add", "distinct", 0),
    ("variant", "1,000 add calls in sequence", "distinct", 0),
    ("variant", "1,000 async_add gathered", "distinct", 0),  # the variant's table
    ("variant", "1,000 async_add gathered", "distinct", 20),
]


def nodes(kind: str) -> list[TextNode]:
    if kind == "notebook":
        return [
            TextNode(
                id_="".join(str(random.randint(0, 9)) for _ in range(16)),
                text=f"n{i}_text",
                embedding=[0.5] * (DIM - 1) + [random.random()],
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"n{i + 1}")},
            )
            for i in range(N)
        ]
    vectors = rng.standard_normal((N, DIM)).astype("float32")
    return [TextNode(id_=f"v-{i}", text=f"node {i} " * 20, embedding=v.tolist()) for i, v in enumerate(vectors)]


def queries(kind: str) -> list[VectorStoreQuery]:
    if kind == "same":
        return [VectorStoreQuery(query_embedding=[0.5] * (DIM - 1) + [0.6], similarity_top_k=3) for _ in range(N)]
    return [
        VectorStoreQuery(query_embedding=v.tolist(), similarity_top_k=3)
        for v in rng.standard_normal((N, DIM)).astype("float32")
    ]


async def gathered_queries(uri: str, case: tuple) -> float:
    kind, how, query_kind, pause = case
    store = MilvusVectorStore(
        uri=uri,
        dim=DIM,
        collection_name="llamaindex_baseline",
        embedding_field="embedding",
        id_field="id",
        similarity_metric="COSINE",
        consistency_level="Strong",
        overwrite=True,
    )
    batch = nodes(kind)
    if how == "one add":
        store.add(batch)
    elif how.endswith("in sequence"):
        for node in batch:
            store.add([node])
    else:
        await asyncio.gather(*(store.async_add([node]) for node in batch))
    await asyncio.sleep(pause)
    asked = queries(query_kind)
    gc.collect()
    t = time.perf_counter()
    results = await asyncio.gather(*(store.aquery(q) for q in asked))
    elapsed = time.perf_counter() - t
    assert all(len(r.ids) == 3 for r in results)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs: dict[tuple, list[float]] = {case: [] for case in CASES}
    for _ in range(args.repeat):
        for case in CASES:
            runs[case].append(asyncio.run(gathered_queries(args.uri, case)))
    print(f"LlamaIndex MilvusVectorStore, gathered aquery x{N}, {args.uri}, medians of {args.repeat}")
    print(f"{'stored nodes':<10} {'added by':<28} {'queries':<9} {'pause':>5}  {'seconds':>7}")
    for (kind, how, query_kind, pause), times in runs.items():
        print(f"{kind:<10} {how:<28} {query_kind:<9} {pause:>4}s  {statistics.median(times):>7.2f}")


if __name__ == "__main__":
    main()
