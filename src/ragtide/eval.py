"""Retrieval evaluation on public benchmarks, through ragtide's own ingest and search.

Metrics follow pytrec_eval / trec_eval conventions: a ranking is sorted by score, ties
broken by document id (descending); gains are the qrels' relevance grades; queries
without judgments are left out; every judged query counts, with 0 if it has no hits.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .documents import Document, Page
from .errors import ConfigError
from .vocabulary import Mode

Qrels = Mapping[str, Mapping[str, int]]  # query id -> doc id -> relevance
Run = Mapping[str, Mapping[str, float]]  # query id -> doc id -> score

METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "hit@1", "hit@5", "hit@10")


def _ranked(scores: Mapping[str, float]) -> list[str]:
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def ndcg(ranking: list[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((r for r in relevant.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr(ranking: list[str], relevant: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranking[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def recall(ranking: list[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, r in relevant.items() if r > 0}
    return len(wanted & set(ranking[:k])) / len(wanted) if wanted else 0.0


def hit(ranking: list[str], relevant: Mapping[str, int], k: int) -> float:
    return 1.0 if any(relevant.get(doc, 0) > 0 for doc in ranking[:k]) else 0.0


_FUNCTIONS = {"ndcg": ndcg, "mrr": mrr, "recall": recall, "hit": hit}


def evaluate(qrels: Qrels, run: Run, metrics: tuple[str, ...] = METRICS) -> dict[str, float]:
    """Mean of each metric over the judged queries."""
    judged = [q for q, rel in qrels.items() if any(r > 0 for r in rel.values())]
    if not judged:
        raise ConfigError("qrels: no query has a relevant document")
    totals = dict.fromkeys(metrics, 0.0)
    for q in judged:
        ranking = _ranked(run.get(q, {}))
        for metric in metrics:
            name, k = metric.split("@")
            totals[metric] += _FUNCTIONS[name](ranking, qrels[q], int(k))
    return {m: totals[m] / len(judged) for m in metrics}


@dataclass(frozen=True)
class Benchmark:
    name: str
    corpus: dict[str, str]  # doc id -> text
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(directory: str | Path, split: str = "test") -> Benchmark:
    """A BEIR dataset: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (CRLF tolerated)."""
    root = Path(directory)
    qrels_path = root / "qrels" / f"{split}.tsv"
    for path in (root / "corpus.jsonl", root / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise ConfigError(
                f"{path}: not found (expected a BEIR directory with corpus.jsonl, queries.jsonl, qrels/{split}.tsv)"
            )
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines()):
        fields = line.strip().split("\t")
        if n == 0 and fields[0] == "query-id" or len(fields) < 3:
            continue
        qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    corpus = {}
    for line in _jsonl(root / "corpus.jsonl"):
        # The BEIR/MTEB convention for sentence-transformers: "title text".
        corpus[str(line["_id"])] = f"{line.get('title') or ''} {line.get('text') or ''}".strip()
    queries = {str(q["_id"]): q["text"] for q in _jsonl(root / "queries.jsonl") if str(q["_id"]) in qrels}
    return Benchmark(root.name, corpus, queries, qrels)


def load_llamaindex(path: str | Path) -> Benchmark:
    """LlamaIndex's retrieval eval JSON: {"queries": {...}, "corpus": {...}, "relevant_docs": {qid: [docid]}}."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        qrels = {q: {d: 1 for d in docs} for q, docs in data["relevant_docs"].items()}
        return Benchmark(p.stem, dict(data["corpus"]), dict(data["queries"]), qrels)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{p}: not a LlamaIndex retrieval eval file ({type(e).__name__}: {e})") from None


def _jsonl(path: Path):
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    raise ConfigError(f"{path}:{n}: not valid JSON") from None


async def run_benchmark(rag, bench: Benchmark, top_k: int = 100, mode: str | None = None) -> dict[str, Any]:
    """Ingest the corpus as documents, ask every query, score documents by their best chunk."""
    docs = [
        Document(key=doc_id, text=text, pages=(Page(None, 0, len(text)),))
        for doc_id, text in bench.corpus.items()
        if text.strip()
    ]
    started = time.perf_counter()
    report = await rag.aingest(docs)
    ingest_seconds = time.perf_counter() - started
    # Several chunks of one document may rank; fetch enough to fill top_k distinct documents.
    chunk_k = min(top_k * 3, 1024)
    started = time.perf_counter()
    qids = list(bench.queries)
    hits = await asyncio.gather(*(rag.aretrieve(bench.queries[q], top_k=chunk_k, mode=mode) for q in qids))
    search_seconds = time.perf_counter() - started
    run: dict[str, dict[str, float]] = {}
    for qid, sources in zip(qids, hits):
        scores: dict[str, float] = {}
        for s in sources:
            if s.source not in scores:  # best-first: the first chunk of a document is its best
                scores[s.source] = s.score
        run[qid] = dict(list(scores.items())[:top_k])
    metrics = evaluate({q: bench.qrels[q] for q in qids}, run)
    return {
        "dataset": bench.name,
        "mode": mode or (await rag.astatus()).default_mode,
        "embedding": (await rag.embedder()).runs_on,
        "metrics": {k: round(v, 4) for k, v in metrics.items()},
        "corpus_size": len(docs),
        "queries": len(qids),
        "chunks": report.chunks,
        "timings": {
            "ingest_s": round(ingest_seconds, 2),
            "search_s": round(search_seconds, 2),
            "queries_per_s": round(len(qids) / search_seconds, 1) if search_seconds else None,
        },
    }


def run_eval(bench: Benchmark, *, top_k: int = 100, mode: Mode | None = None, **options: Any) -> dict[str, Any]:
    """Measure retrieval on ``bench`` (what ``ragtide eval`` prints): its corpus ingested into
    a collection named after it unless ``options`` name one; ``options`` as for :class:`RAG`."""
    from .engine import RAG

    options["collection"] = (
        options.get("collection") or f"eval_{''.join(c if c.isalnum() else '_' for c in bench.name)}"
    )
    if options.get("sentence_vectors") is None:  # retrieval alone: no answer reads them
        options["sentence_vectors"] = False
    with RAG(**options) as rag:
        result = asyncio.run(run_benchmark(rag, bench, top_k, mode))
        info = rag.status()
        s = rag.settings
    result["model"] = info.model if info else s.embed_model
    result["chunk_tokens"] = s.chunk_tokens or "model limit"
    result["chunk_overlap"] = s.chunk_overlap
    result["top_k"] = top_k
    rows = [
        f"{bench.name}: {result['corpus_size']} documents ({result['chunks']} chunks embedded this run), "
        f"{result['queries']} queries, model {result['model']} on {result['embedding']}, retrieval {result['mode']}"
    ]
    rows += [f"  {name:<11} {value:.4f}" for name, value in result["metrics"].items()]
    rows.append(f"  ingest {result['timings']['ingest_s']} s, search {result['timings']['search_s']} s")
    result["table"] = "\n".join(rows)
    return result


# -- question answering: does retrieval find the evidence, does the answer hold the fact ----


@dataclass(frozen=True)
class Question:
    """A question with the evidence a retrieved passage must hold and the facts the answer must hold.

    ``expect`` is a list of groups: every group must be in the answer, any one
    alternative of a group will do (["$17.5 billion", "17,455"]). A question with no
    evidence is one the documents cannot answer: the answer should say so. ``half`` is the
    part of a split set it belongs to ("tune" or "test").
    """

    q: str
    evidence: tuple[str, ...]  # where the document states it: any one will do
    expect: tuple[tuple[str, ...], ...]
    doc: str = ""
    half: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.evidence)


def load_questions(path: str | Path) -> list[Question]:
    """A question set: {"questions": [{"q", "evidence", "expect": [[alternatives]], "doc"?}]}."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return [
            Question(
                item["q"],
                _strings(item["evidence"]),
                tuple(tuple(g) for g in item["expect"]),
                item.get("doc", ""),
                item.get("half", ""),
            )
            for item in data["questions"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{p}: not a question set ({type(e).__name__}: {e})") from None


def _strings(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _squash(text: str) -> str:
    return " ".join(text.split())


def holds(text: str, question: Question) -> bool:
    """Whether ``text`` holds every expected fact of ``question`` (whitespace-insensitive)."""
    flat = _squash(text)
    return all(any(_squash(alt) in flat for alt in group) for group in question.expect)


async def run_questions(rag, questions: list[Question], *, top_k: int = 5, mode: str | None = None) -> dict[str, Any]:
    """Ask every question (concurrently, as users would) and score retrieval and answers:
    on answerable questions, whether a passage holds the evidence and the answer the fact
    (and how many were wrongly abstained from); on the others, how many were abstained from."""
    answers = await asyncio.gather(*(rag.aquery(q.q, top_k=top_k, mode=mode) for q in questions))
    return _scored(questions, answers, top_k, mode)


def _scored(questions: list[Question], answers: list[Any], top_k: int, mode: str | None) -> dict[str, Any]:
    rows = []
    for question, answer in zip(questions, answers):
        abstained = bool(getattr(answer, "abstained", False))
        if not question.answerable:
            rows.append({"q": question.q, "answerable": False, "abstained": abstained, "answer": answer.text})
            continue
        found = next(
            (i for i, s in enumerate(answer.sources) if any(_squash(e) in _squash(s.text) for e in question.evidence)),
            None,
        )
        rows.append(
            {
                "q": question.q,
                "answerable": True,
                "abstained": abstained,
                "hit": found is not None,
                "rank": None if found is None else found + 1,
                "holds": holds(answer.text, question),
                "answer": answer.text,
                "retrieval": answer.retrieval,
            }
        )
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    n = len(answerable) or 1
    metrics = {
        f"hit@{top_k}": round(sum(r["hit"] for r in answerable) / n, 4),
        "answer_holds_fact": round(sum(r["holds"] for r in answerable) / n, 4),
    }
    if unanswerable:
        metrics["abstained_unanswerable"] = round(sum(r["abstained"] for r in unanswerable) / len(unanswerable), 4)
        metrics["abstained_answerable"] = round(sum(r["abstained"] for r in answerable) / n, 4)
    return {
        "questions": len(rows),
        "mode": answerable[0]["retrieval"] if answerable else mode,
        "metrics": metrics,
        "rows": rows,
    }


@dataclass(frozen=True)
class Exchange:
    """A conversation: a first question, then follow-ups that lean on it ("When was it
    finished?"), each with the evidence and facts of a :class:`Question`."""

    first: str
    follow_ups: tuple[Question, ...]
    half: str = ""


def load_exchanges(path: str | Path) -> list[Exchange]:
    """A follow-up set: {"exchanges": [{"half"?, "turns": [{"q"}, {"q", "evidence", "expect"}, ...]}]}."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        out = []
        for item in data["exchanges"]:
            first, *rest = item["turns"]
            follow_ups = tuple(
                Question(t["q"], _strings(t["evidence"]), tuple(tuple(g) for g in t["expect"]), t.get("doc", ""))
                for t in rest
            )
            out.append(Exchange(first["q"], follow_ups, item.get("half", "")))
        return out
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{p}: not a follow-up set ({type(e).__name__}: {e})") from None


async def run_exchanges(
    rag, exchanges: list[Exchange], *, history: bool = True, top_k: int = 5, mode: str | None = None
) -> dict[str, Any]:
    """Hold every conversation (concurrently; each one's turns in order) and score its
    follow-ups as :func:`run_questions` scores questions; ``history=False`` asks each
    follow-up alone, as a service that reads only the last message would."""

    async def converse(exchange: Exchange) -> list[Any]:
        turns: list[dict[str, str]] = []
        answers = []
        for k, question in enumerate((exchange.first, *(q.q for q in exchange.follow_ups))):
            answer = await rag.aquery(question, top_k=top_k, mode=mode, history=turns if history else None)
            turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
            if k:
                answers.append(answer)
        return answers

    answered = await asyncio.gather(*(converse(e) for e in exchanges))
    questions = [q for e in exchanges for q in e.follow_ups]
    result = _scored(questions, [a for answers in answered for a in answers], top_k, mode)
    for row, answer in zip(result["rows"], [a for answers in answered for a in answers]):
        row["searched"] = answer.searched
        row["condense_s"] = answer.timings.get("condense")
    return result
