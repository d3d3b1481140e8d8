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
from .errors import ConfigError, RagtideError
from .ingest import IngestReport, Progress
from .settings import MAX_HITS, Settings

EXIT_FAILED_FILES = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _count(low: int, high: int):
    """An argparse type: an integer in [low, high], refused with the limit named."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value:,} is out of range: {low} to {high:,}")
        return value

    return parse


def _add_store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uri", help="Milvus Lite file, server URL or Zilliz URI (env RAGTIDE_URI; default ./ragtide.db)")
    p.add_argument("--token", help="Milvus token (env RAGTIDE_TOKEN)")
    p.add_argument("--collection", help="collection name (env RAGTIDE_COLLECTION; default ragtide)")


def _add_embedding_options(p: argparse.ArgumentParser, *, choose_model: bool) -> None:
    if choose_model:
        p.add_argument("--embed-model", help="sentence-transformers model name or path (env RAGTIDE_EMBED_MODEL)")
        p.add_argument("--quantize", dest="embed_quantize", choices=["none", "int8"],
                       help="int8 weights (onnx/openvino): faster with VNNI, vectors slightly off fp32's; "
                            "default: the collection's, else none (env RAGTIDE_EMBED_QUANTIZE)")
    p.add_argument("--embed-backend", choices=["torch", "onnx", "openvino"],
                   help="what runs the embedding model (env RAGTIDE_EMBED_BACKEND; default: openvino on a CPU, else torch)")


def _add_retrieval_options(p: argparse.ArgumentParser, top_k_help: str = "passages to retrieve (default 5)") -> None:
    p.add_argument("--top-k", type=_count(1, MAX_HITS), help=top_k_help)
    p.add_argument("--mode", choices=["dense", "lexical", "hybrid"],
                   help="retrieval: dense vectors, BM25 full text, or both fused (default: hybrid where the collection has a full-text index)")
    p.add_argument("--rerank", dest="rerank_model", metavar="MODEL",
                   help="rerank the fused candidates with this sentence-transformers CrossEncoder (env RAGTIDE_RERANK_MODEL)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragtide", description="Ask questions of your documents, answered with citations.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="load, chunk, embed and store documents")
    p.add_argument("paths", nargs="+", help="files or directories (.txt .md .html .htm .pdf)")
    _add_store_options(p)
    _add_embedding_options(p, choose_model=True)
    p.add_argument("--chunk-tokens", type=_count(1, 100_000), help="chunk size in model tokens (default: the model's limit)")
    p.add_argument("--overlap", type=_count(0, 100_000), dest="chunk_overlap", help="tokens shared by consecutive chunks (default 32)")
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip files matching (repeatable)")
    p.add_argument("--prune", action="store_true", help="delete documents whose files are gone")
    p.add_argument("--max-file-mb", type=float, help="refuse larger files (env RAGTIDE_MAX_FILE_MB; default 100)")

    p = sub.add_parser("query", help="answer a question from the ingested documents")
    p.add_argument("question")
    _add_store_options(p)
    _add_embedding_options(p, choose_model=False)
    _add_retrieval_options(p)
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

    p = sub.add_parser("serve", help="run the HTTP service and its web page (needs ragtide[server])")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=_count(1, 65535), default=8000)
    _add_store_options(p)
    _add_embedding_options(p, choose_model=False)
    p.add_argument("--upload-dir", help="where uploaded files and job records are kept (default: ragtide-uploads "
                                        "beside a Milvus Lite file, else in the current folder)")
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (env RAGTIDE_LLM_BASE_URL)")
    p.add_argument("--llm-model", help="model name at that endpoint (env RAGTIDE_LLM_MODEL)")
    p.add_argument("--rerank", dest="rerank_model", metavar="MODEL", help="cross-encoder reranking model (name or path)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback address without API keys")

    p = sub.add_parser("eval", help="measure retrieval quality on a benchmark")
    esub = p.add_subparsers(dest="format", required=True)
    for name, helptext in (("beir", "a BEIR directory (corpus.jsonl, queries.jsonl, qrels/)"),
                           ("llamaindex", "a LlamaIndex retrieval eval JSON (queries, corpus, relevant_docs)")):
        e = esub.add_parser(name, help=helptext)
        e.add_argument("path")
        _add_store_options(e)
        _add_embedding_options(e, choose_model=True)
        e.add_argument("--chunk-tokens", type=_count(1, 100_000))
        e.add_argument("--overlap", type=_count(0, 100_000), dest="chunk_overlap")
        _add_retrieval_options(e, "documents ranked per query (default 100)")
        e.set_defaults(top_k=100)
        e.add_argument("--json", action="store_true")
        if name == "beir":
            e.add_argument("--split", default="test")
    return parser


def _serve(args: argparse.Namespace) -> int:
    try:
        from .server import ServerConfig, serve
    except ImportError as e:
        raise ConfigError(f"ragtide serve needs the server extra: pip install 'ragtide[server]' ({e})") from None
    from .store import is_lite

    settings = Settings.load(**_settings(args, "llm_base_url", "llm_model", "rerank_model"))
    keys = tuple(k.strip() for k in os.environ.get("RAGTIDE_API_KEYS", "").split(",") if k.strip())
    if args.upload_dir:
        upload_dir = Path(args.upload_dir)
    elif is_lite(settings.uri):
        upload_dir = Path(settings.uri).expanduser().resolve().parent / "ragtide-uploads"
    else:
        upload_dir = Path("ragtide-uploads")
    config = ServerConfig(api_keys=keys, upload_dir=upload_dir.resolve(), max_upload_mb=settings.max_file_mb, settings=settings)
    serve(config, args.host, args.port, insecure=args.insecure)
    return 0


def _settings(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    common = ("uri", "token", "collection", "embed_backend", "embed_quantize")
    return {n: getattr(args, n, None) for n in (*common, *names)}


def _quiet_libraries() -> None:
    """pymilvus logs every failed RPC with a traceback, and milvus-lite its own errors; the
    CLI reports each failure in one line instead. pymilvus configures its loggers when it
    is imported, so they are quietened after that."""
    from .store.lite import import_pymilvus

    import_pymilvus(lite=False)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("pymilvus"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger().addHandler(logging.NullHandler())  # milvus-lite logs to the root logger


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # milvus-lite's server logs a refused request on the terminal too (glog, ERROR and up);
    # ragtide already reports it in one line.
    os.environ.setdefault("LOG_LEVEL", "FATAL")
    # gRPC logs a notice on stderr whenever a library forks (OpenVINO's telemetry does, on import).
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    args = _parser().parse_args(argv)
    try:
        _quiet_libraries()
        command = {"ingest": _ingest, "query": _query, "status": _status, "delete": _delete, "eval": _eval,
                   "serve": _serve}[args.command]
        return command(args)
    except RagtideError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; what was acknowledged is stored, and the next run completes the rest", file=sys.stderr)
        return EXIT_INTERRUPTED


def _ingest(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    with RAG(**_settings(args, "embed_model", "chunk_tokens", "chunk_overlap", "max_file_mb")) as rag:
        with _ProgressView(console) as view:
            report = rag.ingest(args.paths, include=args.include, exclude=args.exclude, prune=args.prune, on_progress=view.update)
        _print_report(report)
    return EXIT_FAILED_FILES if report.failed else 0


class _ProgressView:
    """Rich bars on a terminal, with one bar per large file in progress; plain lines otherwise."""

    _LARGE = 512  # chunks: a file worth its own progress
    _EVERY_S = 10.0  # plain lines about a large file, at most this often

    def __init__(self, console) -> None:
        self._console = console
        self._live = console.is_terminal
        self._progress = None
        self._started = time.perf_counter()
        self._file_tasks: dict[str, Any] = {}
        self._last_line: dict[str, float] = {}

    def __enter__(self) -> "_ProgressView":
        if self._live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=self._console, transient=False,
            )
            self._progress.start()
            self._files = self._progress.add_task("files", total=None, rate="")
            self._chunks = self._progress.add_task("chunks written", total=None, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, event: Progress) -> None:
        rate = event.chunks_done / max(time.perf_counter() - self._started, 1e-6)
        if self._progress is not None:
            self._progress.update(self._files, total=event.files_total, completed=event.files_done)
            self._progress.update(self._chunks, completed=event.chunks_done, rate=f"{rate:.0f} chunks/s")
            self._update_file_bar(event)
        elif event.kind == "file":
            chunks = f", {event.file_chunks_total:,} chunks" if event.file_chunks_total else ""
            outcome = event.outcome + (f": {_one_line(event.reason)}" if event.reason else "")
            print(f"[{event.files_done}/{event.files_total}] {_show(event.path)}: {outcome}{chunks} "
                  f"(run: {event.chunks_done:,} chunks written, {rate:.0f}/s)", file=sys.stderr, flush=True)
        elif event.kind in ("chunked", "chunks") and event.file_chunks_total >= self._LARGE:
            now = time.perf_counter()
            if now - self._last_line.get(event.path, 0.0) >= self._EVERY_S:
                self._last_line[event.path] = now
                print(f"      {_show(event.path)}: {event.file_chunks_done:,} of {event.file_chunks_total:,} chunks written",
                      file=sys.stderr, flush=True)

    def _update_file_bar(self, event: Progress) -> None:
        if event.file_chunks_total < self._LARGE:
            return
        task = self._file_tasks.get(event.path)
        if event.kind == "file":
            if task is not None:
                self._progress.remove_task(self._file_tasks.pop(event.path))
            return
        if task is None:
            name = _show(event.path)
            task = self._file_tasks[event.path] = self._progress.add_task(
                f"  {name if len(name) <= 40 else '...' + name[-37:]}", total=event.file_chunks_total, rate="")
        self._progress.update(task, completed=event.file_chunks_done)


def _print_report(report: IngestReport) -> None:
    # Plain prints: one line per file, never wrapped, easy to grep.
    for path in report.skipped:
        print(f"skipped: {_show(path)}: unsupported file type", file=sys.stderr)
    for path, reason in report.failed.items():
        print(f"error: {_show(path)}: {reason}", file=sys.stderr)
    print(report.summary(), flush=True)


def _show(path: str) -> str:
    """A path relative to the working directory when it lies below it, on one line."""
    try:
        shown = str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        shown = path
    return _one_line(shown)


def _one_line(text: str) -> str:
    """Control characters (a newline in a file name) shown escaped, never printed raw."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _query(args: argparse.Namespace) -> int:
    with RAG(**_settings(args, "llm_base_url", "llm_model", "rerank_model")) as rag:
        live = sys.stdout.isatty() and not args.json
        answer = rag.query(args.question, top_k=args.top_k, filter=args.filter, consistency=args.consistency,
                           mode=args.mode, stream=live)
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
            print(f"Retrieval: {answer.retrieval}")
            for note in answer.notes:
                print(f"note: {note}", file=sys.stderr)
        if answer.error:
            print(f"warning: {answer.error}; answered from the passages instead", file=sys.stderr)
            return EXIT_FAILED_FILES
    return 0


def _status(args: argparse.Namespace) -> int:
    with RAG(**_settings(args)) as rag:
        info = rag.status()
        names = rag.collections()
    uri = rag.settings.uri
    print(f"Milvus: {uri}")
    if not names and not rag._database_exists():
        print(f"no Milvus Lite database at {uri} (nothing ingested there yet)")
        return 0
    print(f"collections: {', '.join(names) if names else '(none)'}")
    if info is None:
        print(f"collection {rag.settings.collection!r}: does not exist (ingest documents first)")
        return 0
    weights = ", int8 weights" if info.quantize == "int8" else ""
    made = f", created with {info.embedded_with}" if info.embedded_with else ""
    print(f"collection {info.name!r}: {info.documents} documents, {info.chunks} chunks, "
          f"model {info.model} ({info.dim}-d{weights}{made})")
    print(f"retrieval: {', '.join(info.modes)}" + (" (hybrid by default)" if info.lexical else ""))
    if info.note:
        print(f"note: {info.note}")
    if info.incomplete:
        print(f"{len(info.incomplete)} document(s) only partly stored (not counted above; searches may see part of them):")
        for source, what in sorted(info.incomplete.items()):
            print(f"  {_show(source)}: {what}")
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
