"""Many tenants on one Milvus server: one collection with a partition key, against a
collection per tenant. Search latency (a tenant's own rows, top 5) and the server's memory.

    python benchmarks/tenants.py --uri http://127.0.0.1:19531 --pid PID [--tenants 10 1000] [--per-collection 10 100]
        [--workers 8]

``--pid``: the Milvus server's process (make milvus-up prints it); its resident memory and
its children's are read from /proc. Each tenant holds ``--rows`` chunks of 384-d random vectors (the
default model's size). Latency is the median and 95th percentile of 200 searches, one at a
time, each for a random tenant: with the partition key, a filter ``tenant == "t17"``, as
ragtide's scoped store sends it; per collection, a plain search of that tenant's
collection. Memory is the server's RSS after the data is loaded, less its RSS before.
``--workers``: collections set up at once (create, insert, flush, load), as a deployment
creating many tenants would; setup is the wall time of all of them.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient

DIM = 384


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and every process under it (the server runs under a wrapper)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


def vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def schema(partition_key: bool):
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    if partition_key:
        s.add_field("tenant", DataType.VARCHAR, max_length=64, is_partition_key=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    return s


def index():
    params = MilvusClient.prepare_index_params()
    params.add_index("vector", metric_type="COSINE", index_type="HNSW", params={"M": 16, "efConstruction": 200})
    return params


def timed_searches(search, tenants: int, rng: np.random.Generator) -> tuple[float, float]:
    times = []
    for _ in range(200):
        t = int(rng.integers(tenants))
        q = vectors(1, rng)[0].tolist()
        start = time.perf_counter()
        search(t, q)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * len(times)) - 1]


def partition_key(client: MilvusClient, tenants: int, rows: int, pid: int, rng) -> str:
    name = f"bench_pk_{tenants}"
    if client.has_collection(name):
        client.drop_collection(name)
    before = rss_mb(pid)
    started = time.perf_counter()
    client.create_collection(name, schema=schema(True), index_params=index())
    for t in range(tenants):
        v = vectors(rows, rng)
        client.insert(name, [{"id": f"{t}-{i}", "tenant": f"t{t}", "vector": v[i].tolist()} for i in range(rows)])
    client.flush(name)
    client.load_collection(name)
    setup = time.perf_counter() - started
    p50, p95 = timed_searches(
        lambda t, q: client.search(name, [q], limit=5, filter=f'tenant == "t{t}"', output_fields=["id"]),
        tenants,
        rng,
    )
    grown = rss_mb(pid) - before
    client.drop_collection(name)
    return f"partition key     {tenants:>7}  {p50:>8.1f}  {p95:>8.1f}  {grown:>10.0f}  {setup:>8.1f}"


def per_collection(client: MilvusClient, tenants: int, rows: int, pid: int, rng, workers: int) -> str:
    names = [f"bench_t{tenants}_{t}" for t in range(tenants)]
    for name in names:
        if client.has_collection(name):
            client.drop_collection(name)
    data = [vectors(rows, rng) for _ in names]

    def setup_one(t: int) -> None:
        client.create_collection(names[t], schema=schema(False), index_params=index())
        client.insert(names[t], [{"id": f"{i}", "vector": data[t][i].tolist()} for i in range(rows)])
        client.flush(names[t])
        client.load_collection(names[t])

    before = rss_mb(pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for done, _ in enumerate(pool.map(setup_one, range(tenants)), 1):
            if done % 100 == 0:
                print(f"# {done} collections ready after {time.perf_counter() - started:.0f} s", flush=True)
    setup = time.perf_counter() - started
    p50, p95 = timed_searches(
        lambda t, q: client.search(names[t], [q], limit=5, output_fields=["id"]),
        tenants,
        rng,
    )
    grown = rss_mb(pid) - before
    for name in names:
        client.drop_collection(name)
    return f"collection each   {tenants:>7}  {p50:>8.1f}  {p95:>8.1f}  {grown:>10.0f}  {setup:>8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", default="http://127.0.0.1:19531")
    parser.add_argument("--pid", type=int, required=True, help="the Milvus server's process id")
    parser.add_argument("--tenants", type=int, nargs="*", default=[10, 1000])
    parser.add_argument("--per-collection", type=int, nargs="*", default=[10, 100])
    parser.add_argument("--workers", type=int, default=1, help="collections set up at once")
    parser.add_argument("--rows", type=int, default=100, help="chunks per tenant")
    args = parser.parse_args()
    client = MilvusClient(args.uri)
    rng = np.random.default_rng(7)
    flags = " ".join(f for f in ("avx2", "avx512f", "amx_bf16") if f in Path("/proc/cpuinfo").read_text())
    print(
        f"# benchmarks/tenants.py, {time.strftime('%Y-%m-%d')}, Milvus {client.get_server_version()} standalone, "
        f"{platform.machine()}, CPU flags: {flags}; {args.rows} chunks of {DIM}-d a tenant, top 5, "
        f"{args.workers} collection(s) set up at once"
    )
    print("layout           tenants  p50 (ms)  p95 (ms)  memory (MB)  setup (s)")
    for n in args.tenants:
        print(partition_key(client, n, args.rows, args.pid, rng), flush=True)
    for n in args.per_collection:
        print(per_collection(client, n, args.rows, args.pid, rng, args.workers), flush=True)


if __name__ == "__main__":
    main()
