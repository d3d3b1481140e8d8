"""Retrieval and answer quality through ragtide's own ingest and search, per retrieval mode.

    python benchmarks/quality.py                 # SciFact test, Uber val, the dev question set
    python benchmarks/quality.py --sweep         # also: fusion settings measured on the dev sets

Datasets (``../shared/data``): SciFact (BEIR, test split for the figures, train split for
choosing fusion settings), LlamaIndex's Uber 10-K retrieval eval (val), and the dev question
set in ``tests/data/devset.json`` over the essay and the 10-K. Each dataset is ingested once
into a Milvus Lite file under ``--work`` (default: a fresh temporary folder), then every mode
asks every query. ``--sweep`` fetches each leg's top 200 once through ragtide's dense and
lexical search and fuses them offline for each setting (ragtide's score fusion, and
reciprocal rank fusion for comparison), so settings are compared on the same candidates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from pathlib import Path

from ragtide import RAG
from ragtide.eval import Benchmark, evaluate, load_beir, load_llamaindex, load_questions, run_benchmark, run_questions
from ragtide.query import PhraseBoost
from ragtide.store import Fusion

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MODES = ("dense", "lexical", "hybrid")


async def benchmark_figures(uri: str, bench: Benchmark, collection: str, modes, top_k: int = 100) -> dict:
    out = {}
    async with RAG(uri=uri, collection=collection, sentence_vectors=False) as rag:  # retrieval alone
        for mode in modes:
            result = await run_benchmark(rag, bench, top_k, mode)
            out[mode] = result
    return out


async def devset_figures(uri: str, modes) -> dict:
    questions = load_questions(ROOT / "tests" / "data" / "devset.json")
    out = {}
    async with RAG(uri=uri, collection="devset") as rag:
        await rag.aingest([DATA / "paul_graham_essay.txt", DATA / "uber_2021.pdf"])
        for mode in modes:
            result = await run_questions(rag, questions, mode=mode)
            result["chunks"] = (await rag.astatus()).chunks
            out[mode] = result
    return out


async def realset_figures(uri: str) -> dict:
    """The second dev set (real documents of other kinds), default mode, per part."""
    questions = load_questions(ROOT / "tests" / "data" / "realset.json")
    out = {}
    async with RAG(uri=uri, collection="realset") as rag:
        await rag.aingest([ROOT / "tests" / "data" / "realdocs"])
        # The halves first, then the parts written after methods were chosen, as the set
        # lists them (see its "about").
        parts = dict.fromkeys(["tune", "test", *(q.half for q in questions)])
        for half in parts:
            out[half] = await run_questions(rag, [q for q in questions if q.half == half])
    return out


# -- the sweep ---------------------------------------------------------------------------


async def legs(rag, queries: dict[str, str], n: int) -> dict[str, dict[str, list]]:
    """Each query's dense and lexical top ``n`` chunks (source, id, text, score), best first."""
    qids = list(queries)
    out: dict[str, dict[str, list]] = {q: {} for q in qids}
    for mode in ("dense", "lexical"):
        hits = await asyncio.gather(*(rag.aretrieve(queries[q], top_k=n, mode=mode) for q in qids))
        for q, sources in zip(qids, hits):
            out[q][mode] = [(s.source, s.id, s.text, s.score) for s in sources]
    return out


def fuse(
    question: str, dense: list, lexical: list, *, candidates: int, k: int = 0, weight: float = 0.6, phrase: float = 0.0
) -> list:
    """The legs' top ``candidates`` fused as a hybrid search does: by ragtide's score fusion
    (``weight`` the dense share) and its phrase boost (``phrase`` its weight), or by
    reciprocal rank fusion with this ``k`` (equal shares)."""
    items = {item[1]: item for item in dense[:candidates] + lexical[:candidates]}
    if not k:
        fused = Fusion(candidates, weight).fuse(
            [i[1::2] for i in dense[:candidates]], [i[1::2] for i in lexical[:candidates]], candidates
        )
        ranked = [items[i] for i, _ in fused]
        scores = PhraseBoost(phrase).rescore(question, [item[2] for item in ranked], [score for _, score in fused])
        return [ranked[i] for i in sorted(range(len(ranked)), key=lambda i: -scores[i])]
    scores: dict[str, float] = {}
    for leg in (dense, lexical):
        for rank, item in enumerate(leg[:candidates], 1):
            scores[item[1]] = scores.get(item[1], 0.0) + 1 / (k + rank)
    return [items[i] for i in sorted(scores, key=lambda i: -scores[i])]


def doc_run(chunks: list, top_k: int = 100) -> dict[str, float]:
    scores: dict[str, float] = {}
    for rank, (source, *_) in enumerate(chunks):
        scores.setdefault(source, -rank)
    return dict(list(scores.items())[:top_k])


def hit_rate(rankings: dict[str, list], evidence: dict[str, tuple[str, ...]], k: int = 5) -> float:
    squash = lambda t: " ".join(t.split())  # noqa: E731
    found = sum(
        1
        for q, ranked in rankings.items()
        if any(any(squash(e) in squash(text) for e in evidence[q]) for _, _, text, *_ in ranked[:k])
    )
    return found / len(rankings)


async def sweep(work: Path, grid) -> list[str]:
    lines = []
    scifact = load_beir(DATA / "scifact", "train")
    uber = load_llamaindex(DATA / "uber_2021_retrieval_eval" / "val_dataset.json")
    questions = load_questions(ROOT / "tests" / "data" / "devset.json")
    async with RAG(uri=str(work / "scifact.db"), collection="scifact", sentence_vectors=False) as rag:
        await run_benchmark(rag, scifact, 10, "dense")  # ingests (unchanged documents are skipped)
        scifact_legs = await legs(rag, scifact.queries, 200)
    async with RAG(uri=str(work / "uber.db"), collection="uber", sentence_vectors=False) as rag:
        await run_benchmark(rag, uber, 10, "dense")
        uber_legs = await legs(rag, uber.queries, 200)
    async with RAG(uri=str(work / "devset.db"), collection="devset") as rag:
        await rag.aingest([DATA / "paul_graham_essay.txt", DATA / "uber_2021.pdf"])
        dev_queries = {str(i): q.q for i, q in enumerate(questions)}
        dev_legs = await legs(rag, dev_queries, 200)
    dev_evidence = {str(i): q.evidence for i, q in enumerate(questions)}
    lines.append(f"{'setting':<44} scifact-train nDCG@10  uber-val hit@5  devset hit@5")
    for name, setting in grid:
        cells = []
        for legs_, queries, score in (
            (
                scifact_legs,
                scifact.queries,
                lambda r: evaluate(scifact.qrels, {q: doc_run(c) for q, c in r.items()})["ndcg@10"],
            ),
            (uber_legs, uber.queries, lambda r: evaluate(uber.qrels, {q: doc_run(c) for q, c in r.items()})["hit@5"]),
            (dev_legs, dev_queries, lambda r: hit_rate(r, dev_evidence)),
        ):
            if setting is None:
                ranked = {q: legs[name] for q, legs in legs_.items()}
            else:
                ranked = {q: fuse(queries[q], legs["dense"], legs["lexical"], **setting) for q, legs in legs_.items()}
            cells.append(score(ranked))
        lines.append(f"{name:<44} {cells[0]:>21.4f}  {cells[1]:>14.4f}  {cells[2]:>12.4f}")
        print(lines[-1], flush=True)
    return lines


async def write_slice(work: Path, path: Path, queries: int = 24, neighbours: int = 5) -> None:
    """The SciFact slice of tests/test_quality.py: the first ``queries`` test queries, every
    document judged relevant to them, and each leg's top ``neighbours`` documents for them
    over the full corpus (so the slice holds the documents that compete, not easy ones)."""
    bench = load_beir(DATA / "scifact", "test")
    qids = list(bench.queries)[:queries]
    docs: dict[str, None] = {}
    async with RAG(uri=str(work / "scifact.db"), collection="scifact", sentence_vectors=False) as rag:
        await run_benchmark(rag, bench, 10, "dense")  # ingests (unchanged documents are skipped)
        for q in qids:
            docs.update(dict.fromkeys(d for d, r in bench.qrels[q].items() if r > 0))
            for mode in ("dense", "lexical"):
                hits = await rag.aretrieve(bench.queries[q], top_k=30, mode=mode)
                docs.update(dict.fromkeys(list(doc_run([(s.source, s.id) for s in hits]))[:neighbours]))
    path.write_text(json.dumps({"queries": qids, "docs": list(docs)}, indent=0) + "\n")
    print(f"{path}: {len(qids)} queries, {len(docs)} documents")


def analyzers(work: Path, names=("standard", "english")) -> list[str]:
    """BM25 alone on SciFact test with each Milvus analyzer (no embedding: a bare
    collection of text and its BM25 vector), scored on whole documents."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    bench = load_beir(DATA / "scifact", "test")
    lines = ["analyzer   scifact-test nDCG@10 (BM25 alone)"]
    for name in names:
        client = MilvusClient(str(work / f"analyzer-{name}.db"))
        if client.has_collection("bm25"):
            client.drop_collection("bm25")
        fields = client.create_schema()
        fields.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        fields.add_field(
            "text", DataType.VARCHAR, max_length=65535, enable_analyzer=True, analyzer_params={"type": name}
        )
        fields.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        fields.add_function(
            Function(
                name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]
            )
        )
        index = client.prepare_index_params()
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("bm25", schema=fields, index_params=index)
        rows = [{"id": d, "text": t[:60000]} for d, t in bench.corpus.items() if t.strip()]
        for i in range(0, len(rows), 1000):
            client.insert("bm25", rows[i : i + 1000])
        qids = list(bench.queries)
        run = {}
        for i in range(0, len(qids), 50):
            batch = qids[i : i + 50]
            hits = client.search(
                "bm25",
                data=[bench.queries[q] for q in batch],
                anns_field="sparse",
                limit=100,
                search_params={"metric_type": "BM25"},
            )
            run.update({q: {h["id"]: h["distance"] for h in hs} for q, hs in zip(batch, hits)})
        client.close()
        lines.append(f"{name:<10} {evaluate(bench.qrels, run)['ndcg@10']:.4f}")
        print(lines[-1], flush=True)
    return lines


def grid():
    yield "dense", None
    yield "lexical", None
    for candidates in (100, 200):
        for k in (10, 60):
            yield f"rrf k={k} candidates={candidates}", {"k": k, "candidates": candidates}
    for candidates in (100, 150, 200):
        for weight in (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7):
            yield f"score dense {weight} candidates={candidates}", {"weight": weight, "candidates": candidates}
    for phrase in (0.1, 0.2, 0.3, 0.4):
        yield f"score dense 0.6 candidates=200 phrase {phrase}", {"weight": 0.6, "candidates": 200, "phrase": phrase}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="folder for the Milvus Lite files (kept; default: a temporary one)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--sweep", action="store_true", help="also compare fusion settings on the dev sets")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-quality.txt")
    parser.add_argument("--write-slice", action="store_true", help="write tests/data/scifact_slice.json and stop")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ragtide-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.write_slice:
        asyncio.run(write_slice(work, ROOT / "tests" / "data" / "scifact_slice.json"))
        return
    started = time.perf_counter()
    lines = [
        f"# make bench-quality, {time.strftime('%Y-%m-%d')}, {platform.machine()}, Milvus Lite, all-MiniLM-L6-v2",
        "",
    ]
    if args.sweep:
        lines += ["## Milvus's analyzers for BM25", ""] + analyzers(work) + [""]
        lines += ["## Fusion settings on the dev sets (SciFact train, Uber val, devset)", ""]
        lines += asyncio.run(sweep(work, grid())) + [""]
    scifact = asyncio.run(
        benchmark_figures(str(work / "scifact.db"), load_beir(DATA / "scifact", "test"), "scifact", args.modes)
    )
    uber = asyncio.run(
        benchmark_figures(
            str(work / "uber.db"),
            load_llamaindex(DATA / "uber_2021_retrieval_eval" / "val_dataset.json"),
            "uber",
            args.modes,
        )
    )
    dev = asyncio.run(devset_figures(str(work / "devset.db"), args.modes))
    real = asyncio.run(realset_figures(str(work / "realset.db")))
    lines += [
        "## Figures",
        "",
        "mode     scifact-test nDCG@10  R@100   uber-val hit@5  MRR@10  devset hit@5  answer holds fact",
    ]
    for mode in args.modes:
        s, u, d = scifact[mode]["metrics"], uber[mode]["metrics"], dev[mode]["metrics"]
        lines.append(
            f"{mode:<8} {s['ndcg@10']:>20.4f}  {s['recall@100']:.4f}  {u['hit@5']:>14.4f}  {u['mrr@10']:.4f}"
            f"  {d['hit@5']:>12.4f}  {d['answer_holds_fact']:>17.4f}"
        )
    lines += [
        "",
        f"SciFact chunks: {scifact[args.modes[0]]['chunks'] or 'already ingested'}; "
        f"devset chunks: {dev[args.modes[0]]['chunks']}; {time.perf_counter() - started:.0f} s in all",
        "",
    ]
    lines += [
        "## The second dev set (tests/data/realset.json, real documents; hybrid; tuned on 'tune'; "
        "'fresh', 'unseen' and the probes written after the methods were chosen)",
        "",
        "half   questions  hit@5   answer holds fact  unanswerable abstained  answerable wrongly abstained",
    ]
    for half, result in real.items():
        m = result["metrics"]
        lines.append(
            f"{half:<6} {result['questions']:>9}  {m['hit@5']:.4f}  {m['answer_holds_fact']:>17.4f}"
            f"  {m['abstained_unanswerable']:>22.4f}  {m['abstained_answerable']:>28.4f}"
        )
    lines.append("")
    lines += ["## Devset answers (" + args.modes[-1] + ")", ""]
    for row in dev[args.modes[-1]]["rows"]:
        mark = ("hit " if row["hit"] else "MISS") + (" holds " if row["holds"] else " NOFACT")
        lines.append(f"{mark} {row['q']}\n      {row['answer'][:300]}")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: lines.index("## Devset answers (" + args.modes[-1] + ")")]))
    print(
        json.dumps(
            {
                "scifact": {m: scifact[m]["metrics"] for m in args.modes},
                "uber": {m: uber[m]["metrics"] for m in args.modes},
                "devset": {m: dev[m]["metrics"] for m in args.modes},
                "realset": {half: result["metrics"] for half, result in real.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
