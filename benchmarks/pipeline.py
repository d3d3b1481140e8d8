"""The ingest pipeline's own ceiling, and ingest on Ray, side by side in one run.

1. Ceiling: the pipeline (load, chunk, write) with a zero-cost embedder (a test double
   returning fixed unit vectors, the real tokenizer for chunking), on Milvus Lite and on
   the server; then where the time goes, the stages run one after another under cProfile.
2. The fastest backend here, bare (its encode on the same chunks, nothing else) and inside a
   whole ingest: how much of the model's speed the pipeline keeps.
3. Ray: the same ingest single-process, with ``--ray local`` and on a two-node Ray cluster on
   this machine (two ``ray start``), and the per-actor throughput (what multiplies on a cluster).

    python benchmarks/pipeline.py --uri http://127.0.0.1:19531 --copies 4

Tests never assert speed; this prints ratios measured in one run, with the CPU flags.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FILES = [DATA / "paul_graham_essay.txt", DATA / "uber_2021.pdf"]
RAY = Path(sys.executable).with_name("ray")


class FreeEmbedder:
    """A zero-cost embedder: the real model's name, space and tokenizer (so the chunks are
    the ones the model would get), fixed unit vectors instead of its work."""

    def __init__(self, real) -> None:
        self.name, self.dim, self.space = real.name, real.dim, real.space
        self.tokenizer, self.max_tokens = real.tokenizer, real.max_tokens
        self.quantize, self.backend = real.quantize, real.backend
        self.busy_seconds = 0.0
        self._vector = np.full(real.dim, 1 / np.sqrt(real.dim), dtype=np.float32)

    def token_spans(self, texts):
        return self.tokenizer.token_spans(texts)

    async def embed(self, texts, *, query=False):
        return np.tile(self._vector, (len(texts), 1))


def corpus(folder: Path, copies: int) -> list[Path]:
    """``copies`` copies of the essay and the 10-K under distinct names (distinct documents)."""
    paths = []
    for k in range(copies):
        for f in FILES:
            target = folder / f"{f.stem}-{k}{f.suffix}"
            shutil.copy(f, target)
            paths.append(target)
    return paths


def drop(uri: str, name: str) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    if client.has_collection(name):
        client.drop_collection(name)
    client.close()


async def ingest_rate(uri: str, embedder, settings, paths) -> tuple[float, int]:
    """Chunks per second of a whole ingest into a fresh collection, and how many chunks."""
    from ragtide.ingest import ingest
    from ragtide.store import MilvusStore

    name = f"bench_{uuid.uuid4().hex[:8]}"
    store = MilvusStore(uri, name)
    try:
        started = time.perf_counter()
        report = await ingest(store, embedder, settings, paths)
        seconds = time.perf_counter() - started
    finally:
        await store.close()
        drop(uri, name)
    assert report.ok, report.failed
    return report.chunks / seconds, report.chunks


def profile(uri: str, free: FreeEmbedder, settings, paths) -> tuple[dict[str, float], str]:
    """The stages one after another, in one thread: seconds each, and cProfile's top functions."""
    from ragtide.ingest.chunking import Chunker
    from ragtide.ingest.pipeline import caps_of, read
    from ragtide.store import MilvusStore, Row

    chunker = Chunker(free, settings.chunk_tokens, settings.chunk_overlap)
    spent: dict[str, float] = {}
    profiler = cProfile.Profile()

    async def run() -> None:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        store = MilvusStore(uri, name)
        await store.open(free.name, free.dim, create=True, **free.space)
        t = time.perf_counter()
        profiler.enable()
        docs = [read(p, caps_of(settings)) for p in paths]
        spent["load"] = time.perf_counter() - t
        t = time.perf_counter()
        chunks = [c for d in docs for c in chunker.split(d)]
        spent["chunk"] = time.perf_counter() - t
        t = time.perf_counter()
        vectors = await free.embed([c.text for c in chunks])
        rows = [Row(c, v, "v", 1) for c, v in zip(chunks, vectors)]
        for i in range(0, len(rows), 128):
            await store.write(rows[i : i + 128])
        spent["write"] = time.perf_counter() - t
        profiler.disable()
        await store.close()
        drop(uri, name)

    asyncio.run(run())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(18)
    return spent, out.getvalue()


def bare_rate(real, settings, paths) -> float:
    """The model alone on the same chunks: encode, nothing else."""
    from ragtide.ingest.chunking import Chunker
    from ragtide.ingest.pipeline import caps_of, read

    chunker = Chunker(real, settings.chunk_tokens, settings.chunk_overlap)
    texts = [c.text for p in paths for c in chunker.split(read(p, caps_of(settings)))]
    real.encode(texts[:64])  # warm
    started = time.perf_counter()
    for i in range(0, len(texts), 128):
        real.encode(texts[i : i + 128])
    return len(texts) / (time.perf_counter() - started)


def cli_ingest(args: list[str], env: dict) -> tuple[float, int]:
    command = [sys.executable, "-m", "ragtide.cli", "ingest", *args]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    chunks = int(done.stdout.split(";")[1].split()[0])
    return chunks / seconds, chunks


def ray_cluster(env: dict) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--num-cpus=2", "--disable-usage-stats"]
    subprocess.run(
        [str(RAY), "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(RAY), "start", f"--address=127.0.0.1:{port}", *common], env=env, check=True, capture_output=True
    )
    return f"127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True, help="the Milvus server")
    parser.add_argument("--copies", type=int, default=4, help="copies of the essay and the 10-K")
    parser.add_argument("--ray", action="store_true", help="also measure ingest on Ray (minutes)")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragtide import Embedder
    from ragtide.embedding.backends import cpu_flags
    from ragtide.settings import Settings

    flags = cpu_flags()
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    cores = len(os.sched_getaffinity(0))
    print(f"{time.strftime('%Y-%m-%d')}; {cores} cores; CPU flags: {', '.join(simd) or 'unknown'}")
    settings = Settings.load()
    real = Embedder()
    free = FreeEmbedder(real)
    results: dict[str, object] = {"cores": cores, "cpu_flags": simd}
    with tempfile.TemporaryDirectory() as folder:
        paths = corpus(Path(folder), args.copies)
        lite = str(Path(folder) / "bench.db")
        ceiling_lite, chunks = asyncio.run(ingest_rate(lite, free, settings, paths))
        ceiling_server, _ = asyncio.run(ingest_rate(args.uri, free, settings, paths))
        bare = bare_rate(real, settings, paths[:2])
        whole, whole_chunks = asyncio.run(ingest_rate(args.uri, real, settings, paths[:2]))
        print(f"\ncorpus: {len(paths)} files ({args.copies} copies of the essay and the 10-K), {chunks} chunks")
        print(
            f"zero-cost embedder, whole pipeline: Milvus Lite {ceiling_lite:,.0f} chunks/s; server {ceiling_server:,.0f} chunks/s"
        )
        print(
            f"{real.backend} bare on these chunks: {bare:,.1f} chunks/s; ceiling / bare: Lite {ceiling_lite / bare:.1f}x, server {ceiling_server / bare:.1f}x"
        )
        print(
            f"whole ingest with {real.backend} (essay + 10-K, {whole_chunks} chunks, server): {whole:,.1f} chunks/s = {whole / bare:.0%} of bare"
        )
        spent, top = profile(args.uri, free, settings, paths)
        total = sum(spent.values())
        print("\nwhere the time goes (the stages one after another, zero-cost embedder, server):")
        for stage, seconds in spent.items():
            print(f"  {stage:<6} {seconds:6.2f} s  {seconds / total:4.0%}  ({chunks / seconds:,.0f} chunks/s alone)")
        print(top)
        results |= {
            "chunks": chunks,
            "ceiling_lite": ceiling_lite,
            "ceiling_server": ceiling_server,
            "bare": bare,
            "whole": whole,
            "stages": spent,
        }
        if args.ray:
            env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_BACKEND_LOG_LEVEL": "error"}
            two = paths[:2]
            rates = {}
            for label, extra in (("single process", []), ("--ray local", ["--ray", "local"])):
                name = f"bench_{uuid.uuid4().hex[:8]}"
                rates[label] = cli_ingest([*map(str, two), *extra, "--uri", args.uri, "--collection", name], env)
                drop(args.uri, name)
            address = ray_cluster(env)
            try:
                name = f"bench_{uuid.uuid4().hex[:8]}"
                rates["two Ray nodes"] = cli_ingest(
                    [
                        *map(str, two),
                        "--ray",
                        address,
                        "--ray-actors",
                        "2",
                        "--ray-actor-cpus",
                        "1",
                        "--uri",
                        args.uri,
                        "--collection",
                        name,
                    ],
                    env,
                )
                drop(args.uri, name)
            finally:
                subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True)
            one_thread = Embedder(threads=1)
            actor = bare_rate(one_thread, settings, two)
            print("\ningest of the essay + 10-K, whole command (model load and Ray start included):")
            base = rates["single process"][0]
            for label, (rate, n) in rates.items():
                print(f"  {label:<15} {rate:6.1f} chunks/s  ({n} chunks)  {rate / base:.2f}x")
            print(f"one embedding actor of 1 core ({one_thread.backend}, bare): {actor:.1f} chunks/s")
            results |= {"ray": {k: v[0] for k, v in rates.items()}, "actor_1_core": actor}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
