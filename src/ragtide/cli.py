"""The ``ragtide`` command: ingest, query, status, delete, eval.

Errors are printed on one line naming what failed; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .engine import RAG
from .errors import RagtideError
from .ingest import IngestReport, Progress

EXIT_FAILED_FILES = 1
EXIT_ERROR = 2


def _add_store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uri", help="Milvus Lite file, server URL or Zilliz URI (env RAGTIDE_URI; default ./ragtide.db)")
    p.add_argument("--token", help="Milvus token (env RAGTIDE_TOKEN)")
    p.add_argument("--collection", help="collection name (env RAGTIDE_COLLECTION; default ragtide)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragtide", description="Ask questions of your documents, answered with citations.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="load, chunk, embed and store documents")
    p.add_argument("paths", nargs="+", help="files or directories (.txt .md .html .htm .pdf)")
    _add_store_options(p)
    p.add_argument("--embed-model", help="sentence-transformers model name or path (env RAGTIDE_EMBED_MODEL)")
    p.add_argument("--chunk-tokens", type=int, help="chunk size in model tokens (default: the model's limit)")
    p.add_argument("--overlap", type=int, dest="chunk_overlap", help="tokens shared by consecutive chunks (default 32)")
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip files matching (repeatable)")
    p.add_argument("--prune", action="store_true", help="delete documents whose files are gone")

    p = sub.add_parser("query", help="answer a question from the ingested documents")
    p.add_argument("question")
    _add_store_options(p)
    p.add_argument("--top-k", type=int, help="passages to retrieve (default 5)")
    p.add_argument("--filter", help='Milvus filter expression, e.g. \'metadata["type"] == "pdf"\' or \'source like "/home/me/papers/%%"\'')
    p.add_argument("--consistency", choices=["Strong", "Session", "Bounded", "Eventually"])
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (env RAGTIDE_LLM_BASE_URL)")
    p.add_argument("--llm-model", help="model name at that endpoint (env RAGTIDE_LLM_MODEL)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("status", help="show collections, counts and the embedding model")
    _add_store_options(p)

    p = sub.add_parser("delete", help="delete a document (by path or id) or every document under a directory")
    p.add_argument("--doc", required=True, metavar="PATH_OR_ID")
    _add_store_options(p)

    p = sub.add_parser("eval", help="measure retrieval quality on a benchmark")
    esub = p.add_subparsers(dest="format", required=True)
    for name, helptext in (("beir", "a BEIR directory (corpus.jsonl, queries.jsonl, qrels/)"),
                           ("llamaindex", "a LlamaIndex retrieval eval JSON (queries, corpus, relevant_docs)")):
        e = esub.add_parser(name, help=helptext)
        e.add_argument("path")
        _add_store_options(e)
        e.add_argument("--embed-model")
        e.add_argument("--chunk-tokens", type=int)
        e.add_argument("--overlap", type=int, dest="chunk_overlap")
        e.add_argument("--top-k", type=int, default=100, help="hits per query (default 100)")
        e.add_argument("--json", action="store_true")
        if name == "beir":
            e.add_argument("--split", default="test")
    return parser


def _settings(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {n: getattr(args, n, None) for n in ("uri", "token", "collection", *names)}


def main(argv: Sequence[str] | None = None) -> int:
    # pymilvus logs every failed RPC with a traceback; the CLI reports it in one line instead.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = _parser().parse_args(argv)
    try:
        return {"ingest": _ingest, "query": _query, "status": _status, "delete": _delete, "eval": _eval}[args.command](args)
    except RagtideError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _ingest(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    with RAG(**_settings(args, "embed_model", "chunk_tokens", "chunk_overlap")) as rag:
        with _ProgressView(console) as view:
            report = rag.ingest(args.paths, include=args.include, exclude=args.exclude, prune=args.prune, on_progress=view.update)
        _print_report(report)
    return EXIT_FAILED_FILES if report.failed else 0


class _ProgressView:
    """Rich bars on a terminal; one plain line per finished file otherwise."""

    def __init__(self, console) -> None:
        self._console = console
        self._live = console.is_terminal
        self._progress = None
        self._started = time.perf_counter()

    def __enter__(self) -> "_ProgressView":
        if self._live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=self._console, transient=False,
            )
            self._progress.start()
            self._files = self._progress.add_task("files", total=None, rate="")
            self._chunks = self._progress.add_task("chunks", total=None, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, event: Progress) -> None:
        rate = event.chunks_done / max(time.perf_counter() - self._started, 1e-6)
        if self._progress is not None:
            self._progress.update(self._files, total=event.files_total, completed=event.files_done)
            self._progress.update(self._chunks, completed=event.chunks_done, rate=f"{rate:.0f} chunks/s")
        elif event.kind == "file":
            print(f"[{event.files_done}/{event.files_total}] {_show(event.path)} ({event.chunks_done} chunks, {rate:.0f}/s)",
                  file=sys.stderr, flush=True)


def _print_report(report: IngestReport) -> None:
    # Plain prints: one line per file, never wrapped, easy to grep.
    for path in report.skipped:
        print(f"skipped: {_show(path)}: unsupported file type", file=sys.stderr)
    for path, reason in report.failed.items():
        print(f"error: {_show(path)}: {reason}", file=sys.stderr)
    print(report.summary(), flush=True)


def _show(path: str) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _query(args: argparse.Namespace) -> int:
    with RAG(**_settings(args, "llm_base_url", "llm_model")) as rag:
        live = sys.stdout.isatty() and not args.json
        answer = rag.query(args.question, top_k=args.top_k, filter=args.filter, consistency=args.consistency, stream=live)
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            for delta in answer:
                print(delta, end="", flush=True)
            print("\n")
            if answer.sources:
                print("Sources:")
            for n, source in enumerate(answer.sources, 1):
                page = f", page {source.page}" if source.page is not None else ""
                print(f"  [{n}] {_show(source.source)}{page}  (score {source.score:.3f})")
        if answer.error:
            print(f"warning: {answer.error}; answered from the passages instead", file=sys.stderr)
            return EXIT_FAILED_FILES
    return 0


def _status(args: argparse.Namespace) -> int:
    with RAG(**_settings(args)) as rag:
        info = rag.status()
        names = rag.collections()
    print(f"Milvus: {rag.settings.uri}")
    print(f"collections: {', '.join(names) if names else '(none)'}")
    if info is None:
        print(f"collection {rag.settings.collection!r}: does not exist (ingest documents first)")
        return 0
    print(f"collection {info.name!r}: {info.documents} documents, {info.chunks} chunks, model {info.model} ({info.dim}-d)")
    return 0


def _delete(args: argparse.Namespace) -> int:
    with RAG(**_settings(args)) as rag:
        n = rag.delete(args.doc)
    print(f"deleted {n} document(s)")
    if n == 0:
        print(f"error: no document matches {args.doc!r}", file=sys.stderr)
        return EXIT_FAILED_FILES
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .eval import run_eval

    result = run_eval(args)
    table = result.pop("table")
    print(json.dumps(result, ensure_ascii=False) if args.json else table)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
