"""`ragtide serve` over HTTP against the same engine in process, in one run.

    python benchmarks/serve.py [--uri http://127.0.0.1:19531]     # default: a fresh Milvus Lite file

Ingests the essay, then asks the same distinct questions (full answers: retrieval and the
extractive answer) in process (`aquery`) and over HTTP (`POST /v1/query` to a
`ragtide serve` in its own process): one client in sequence for p50/p99, then 1, 8 and 64
concurrent clients for questions per second. Milvus Lite admits one process at a time,
so on Lite the in-process phase runs first and closes before the service starts. Last,
with a stub OpenAI-compatible LLM (tests/llm_server.py), the time to the first streamed
token event, in process and over HTTP.

``--questions``: ``synthetic`` (benchmarks/query.py's "What did the author say about X
(variant i)?", vague on purpose) or ``dev`` (the dev set's questions about the essay, each
made distinct with a number: "... on? [3]"). An answer weighs 4 candidate sentences by meaning,
8 when the question's words find none clearly (all the synthetic questions, 1 of the dev
set's 46).

The sentences an answer weighs have their vectors stored with their chunk at ingest
(``sentence_vectors``), so an answer embeds nothing but its question. With
``--no-sentence-vectors`` the essay is ingested without them: an answer embeds the
sentences it weighs and keeps their vectors (``ragtide.embedding.SENTENCES_KEPT``), and as
the passages repeat across these questions later phases find most of them kept;
``--cold-sentences`` keeps none in the in-process phase, the cost of questions over passages
not asked about before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from ragtide import RAG

ROOT = Path(__file__).resolve().parents[1]
ESSAY = ROOT.parent / "shared" / "data" / "paul_graham_essay.txt"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from llm_server import StubLLM  # noqa: E402
from query import questions as synthetic_questions  # noqa: E402

CLIENTS = (1, 8, 64)
DEVSET = ROOT / "tests" / "data" / "devset.json"


def dev_questions(n: int) -> list[str]:
    # Distinct, so no layer answers from a cache; marked with a number, not a word: "(variant
    # 3)" names something no passage mentions, and the answer says so without weighing any
    # sentence (as every answer of this benchmark did from 2026-12-03's eighth session to its
    # eleventh).
    essay = [q["q"] for q in json.loads(DEVSET.read_text())["questions"] if "essay" in q["doc"]]
    return [f"{essay[i % len(essay)]} [{i}]" for i in range(n)]


QUESTIONS: dict[str, Callable[[int], list[str]]] = {"synthetic": synthetic_questions, "dev": dev_questions}


def summary(latencies: list[float]) -> dict:
    lat = sorted(latencies)
    return {
        "p50_ms": round(1000 * statistics.median(lat), 2),
        "p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 2),
    }


async def measure(ask, questions: Callable[[int], list[str]], sequential: int, per_client: int) -> dict:
    for q in questions(4):
        await ask(q)  # warm up
    latencies = {}
    for q in questions(sequential):
        t = time.perf_counter()
        await ask(q)
        latencies[q] = time.perf_counter() - t
    out = summary(list(latencies.values())) | {"latencies": latencies, "throughput_qps": {}}
    for clients in CLIENTS:
        qs = questions(clients * per_client)

        async def client(k: int) -> None:
            for q in qs[k::clients]:
                await ask(q)

        t = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        out["throughput_qps"][clients] = round(len(qs) / (time.perf_counter() - t), 1)
    return out


async def in_process(
    uri: str,
    collection: str,
    questions: Callable[[int], list[str]],
    sequential: int,
    per_client: int,
    llm: StubLLM,
    sentence_vectors: bool,
) -> dict:
    # Passed only when off, so that this script also measures commits from before the setting.
    options = {} if sentence_vectors else {"sentence_vectors": False}
    async with RAG(uri=uri, collection=collection, **options) as rag:
        await rag.aingest([ESSAY])
        result = await measure(lambda q: rag.aquery(q), questions, sequential, per_client)
    firsts = []
    async with RAG(uri=uri, collection=collection, llm_base_url=llm.url, llm_model="stub") as rag:
        for q in questions(20):
            t = time.perf_counter()
            answer = await rag.aquery(q, stream=True)
            async for _ in answer:
                firsts.append(time.perf_counter() - t)
                break
            async for _ in answer:
                pass
    result["first_token_ms"] = summary(firsts)["p50_ms"]
    return result


def start_service(uri: str, collection: str, port: int, upload_dir: str, llm: StubLLM | None) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if llm:
        env |= {"RAGTIDE_LLM_BASE_URL": llm.url, "RAGTIDE_LLM_MODEL": "stub"}
    log = open(Path(upload_dir).parent / f"serve-{port}-{int(time.time())}.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ragtide.cli",
            "serve",
            "--uri",
            uri,
            "--collection",
            collection,
            "--port",
            str(port),
            "--upload-dir",
            upload_dir,
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit(f"ragtide serve did not become ready; its log: {log.name}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=60)


async def over_http(url: str, questions: Callable[[int], list[str]], sequential: int, per_client: int) -> dict:
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def ask(q: str) -> None:
            reply = await client.post("/v1/query", json={"question": q})
            reply.raise_for_status()

        return await measure(ask, questions, sequential, per_client)


async def first_event_over_http(url: str, questions: Callable[[int], list[str]]) -> float:
    firsts = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for q in questions(20):
            t = time.perf_counter()
            async with client.stream("POST", "/v1/query", json={"question": q, "stream": True}) as reply:
                async for line in reply.aiter_lines():
                    if line.startswith("event: token"):
                        firsts.append(time.perf_counter() - t)
                        break
    return summary(firsts)["p50_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", help="Milvus URI (default: a fresh Milvus Lite file)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--per-client", type=int, default=16)
    parser.add_argument("--questions", choices=sorted(QUESTIONS), default="synthetic")
    parser.add_argument("--no-sentence-vectors", action="store_true", help="ingest without sentence vectors")
    parser.add_argument("--cold-sentences", action="store_true", help="in process, keep no sentence vectors in memory")
    args = parser.parse_args()
    questions = QUESTIONS[args.questions]
    if args.cold_sentences:
        import ragtide.embedding

        ragtide.embedding.SENTENCES_KEPT = 0
    flags = " ".join(f for f in ("avx2", "avx512f", "amx_bf16") if f in Path("/proc/cpuinfo").read_text().split())
    print(
        f"# benchmarks/serve.py, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, CPU flags: {flags}; "
        f"{args.questions} questions"
        + ("; no sentence vectors stored at ingest" if args.no_sentence_vectors else "")
        + ("; no sentence vectors kept in process" if args.cold_sentences else "")
    )
    work = tempfile.mkdtemp(prefix="ragtide-serve-")
    uri = args.uri or f"{work}/serve.db"
    llm = StubLLM()
    try:
        inproc = asyncio.run(
            in_process(
                uri, "bench_serve", questions, args.sequential, args.per_client, llm, not args.no_sentence_vectors
            )
        )
        url = f"http://127.0.0.1:{args.port}"
        service = start_service(uri, "bench_serve", args.port, f"{work}/uploads", None)
        try:
            http = asyncio.run(over_http(url, questions, args.sequential, args.per_client))
        finally:
            stop(service)
        service = start_service(uri, "bench_serve", args.port, f"{work}/uploads", llm)
        try:
            http["first_token_ms"] = asyncio.run(first_event_over_http(url, questions))
        finally:
            stop(service)
    finally:
        llm.close()
    # Each question's own cost differs (its passages, its candidate sentences); the same
    # questions are asked both ways, so the median of per-question differences measures
    # the HTTP layer with less of that noise than a difference of medians.
    paired = [http["latencies"][q] - inproc["latencies"][q] for q in inproc["latencies"]]
    for r in (inproc, http):
        del r["latencies"]
    result = {
        "uri": uri,
        "in_process": inproc,
        "http": http,
        "p50_overhead_ms": round(http["p50_ms"] - inproc["p50_ms"], 2),
        "paired_overhead_ms": round(1000 * statistics.median(paired), 2),
        "qps_64_ratio": round(http["throughput_qps"][64] / inproc["throughput_qps"][64], 3),
    }
    for name, r in (("in process", inproc), ("HTTP", http)):
        print(
            f"{name:<10}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; "
            + ", ".join(f"{c} clients {q} q/s" for c, q in r["throughput_qps"].items())
            + f"; first streamed token (stub LLM) {r['first_token_ms']} ms"
        )
    print(
        f"HTTP p50 overhead {result['p50_overhead_ms']} ms (median per-question difference "
        f"{result['paired_overhead_ms']} ms); HTTP q/s at 64 clients = {result['qps_64_ratio']:.0%} of in process"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
