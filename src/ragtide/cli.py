"""The ``ragtide`` command: ingest, query, status, delete, eval.

Errors are printed on one line naming what failed; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import RAG
from .errors import ConfigError, RagtideError
from .filters import Filter
from .ingest.distributed import RayOptions
from .ingest.metadata import parse_pairs
from .settings import Settings
from .terminal import ProgressView, print_report, show
from .vocabulary import BACKENDS, CONSISTENCY_LEVELS, MAX_HITS, MODES, QUANTIZATIONS, ROLES

if TYPE_CHECKING:
    from .engine import Conversation
    from .query import Answer

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


def _share(text: str) -> float:
    """An argparse type: a number of devices from 0 to 64, fractions allowed (0.5: two share one)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{value:g} is out of range: 0 to 64")
    return value


def _add_store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uri", help="Milvus Lite file, server URL or Zilliz URI (env RAGTIDE_URI; default ./ragtide.db)")
    p.add_argument("--token", help="Milvus token (env RAGTIDE_TOKEN)")
    p.add_argument("--collection", help="collection name (env RAGTIDE_COLLECTION; default ragtide)")
    p.add_argument(
        "--tenant", help="in a collection shared by tenants, work as this one: its documents only (default: all)"
    )


def _add_embedding_options(p: argparse.ArgumentParser, *, choose_model: bool) -> None:
    if choose_model:
        p.add_argument("--embed-model", help="sentence-transformers model name or path (env RAGTIDE_EMBED_MODEL)")
        p.add_argument(
            "--quantize",
            dest="embed_quantize",
            choices=QUANTIZATIONS,
            help="int8 weights (onnx/openvino): faster with VNNI, vectors slightly off fp32's; "
            "default: the collection's, else none (env RAGTIDE_EMBED_QUANTIZE)",
        )
    p.add_argument(
        "--embed-backend",
        choices=BACKENDS,
        help="what runs the embedding model (env RAGTIDE_EMBED_BACKEND; default: openvino on a CPU, else torch)",
    )


def _add_retrieval_options(p: argparse.ArgumentParser, top_k_help: str = "passages to retrieve (default 5)") -> None:
    p.add_argument("--top-k", type=_count(1, MAX_HITS), help=top_k_help)
    p.add_argument(
        "--mode",
        choices=MODES,
        help="retrieval: dense vectors, BM25 full text, or both fused (default: hybrid where the collection has a full-text index)",
    )
    p.add_argument(
        "--rerank",
        dest="rerank_model",
        metavar="MODEL",
        help="rerank the fused candidates with this sentence-transformers CrossEncoder (env RAGTIDE_RERANK_MODEL)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ragtide", description="Ask questions of your documents, answered with citations."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="load, chunk, embed and store documents")
    p.add_argument(
        "paths",
        nargs="+",
        help="files or folders: text of any kind, Markdown, reStructuredText, HTML, PDF, Word, PowerPoint, Excel, "
        "OpenDocument, EPUB, CSV/TSV, JSON, e-mail, and any of them gzipped",
    )
    _add_store_options(p)
    _add_embedding_options(p, choose_model=True)
    p.add_argument(
        "--chunk-tokens", type=_count(1, 100_000), help="chunk size in model tokens (default: the model's limit)"
    )
    p.add_argument(
        "--overlap",
        type=_count(0, 100_000),
        dest="chunk_overlap",
        help="tokens shared by consecutive chunks (default 32)",
    )
    p.add_argument(
        "--no-sentence-vectors",
        dest="sentence_vectors",
        action="store_false",
        default=None,
        help="store no sentence vectors: ingest embeds half as much, answers embed their sentences "
        "(env RAGTIDE_SENTENCE_VECTORS)",
    )
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip files matching (repeatable)")
    p.add_argument("--prune", action="store_true", help="delete documents whose files are gone")
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='attach to every document, for filters (metadata["KEY"] == VALUE); numbers and true/false are typed',
    )
    p.add_argument("--max-file-mb", type=float, help="refuse larger files (env RAGTIDE_MAX_FILE_MB; default 100)")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the ingest on Ray Data: 'local' starts a Ray runtime here, 'auto' joins this machine's "
        "cluster, or host:port / ray://host:10001 (needs ragtide[ray] and a Milvus server; paths may be "
        "s3://, gs:// or other pyarrow URIs)",
    )
    p.add_argument(
        "--ray-actors", type=_count(1, 10_000), help="embedding models loaded at once (default: as the CPUs allow)"
    )
    p.add_argument("--ray-actor-cpus", type=_count(1, 1024), help="cores (threads) per embedding model (default 2)")
    p.add_argument("--ray-batch", type=_count(1, 100_000), help="chunks per model call and per write (default 128)")
    p.add_argument(
        "--ray-actor-gpus", type=_share, help="GPUs per embedding model, with RAGTIDE_EMBED_DEVICE=cuda (default 0)"
    )

    p = sub.add_parser("query", help="answer a question from the ingested documents")
    p.add_argument("question")
    _add_store_options(p)
    _add_embedding_options(p, choose_model=False)
    _add_retrieval_options(p)
    p.add_argument(
        "--filter",
        help='restrict the search: fields source, doc_id, page, chunk_index, metadata["key"]; == != < <= > >= in like '
        'and or not, e.g. \'metadata["type"] == "pdf" and page >= 40\' or \'source like "/home/me/papers/%%"\'',
    )
    p.add_argument(
        "--raw-filter",
        metavar="EXPR",
        help="a Milvus boolean expression passed on unchecked (trusted local use; instead of --filter)",
    )
    p.add_argument("--consistency", choices=CONSISTENCY_LEVELS)
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (env RAGTIDE_LLM_BASE_URL)")
    p.add_argument("--llm-model", help="model name at that endpoint (env RAGTIDE_LLM_MODEL)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("chat", help="a conversation: ask, then ask follow-ups (the model loaded once)")
    _add_store_options(p)
    _add_embedding_options(p, choose_model=False)
    _add_retrieval_options(p)
    p.add_argument("--filter", help="restrict the search, as for query")
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (env RAGTIDE_LLM_BASE_URL)")
    p.add_argument("--llm-model", help="model name at that endpoint (env RAGTIDE_LLM_MODEL)")

    p = sub.add_parser("list", help="the documents: format, pages, sections, chunks, size, when ingested")
    _add_store_options(p)
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
    p.add_argument(
        "--upload-dir",
        help="where uploaded files and job records are kept (default: ragtide-uploads "
        "beside a Milvus Lite file, else in the current folder)",
    )
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (env RAGTIDE_LLM_BASE_URL)")
    p.add_argument("--llm-model", help="model name at that endpoint (env RAGTIDE_LLM_MODEL)")
    p.add_argument(
        "--rerank", dest="rerank_model", metavar="MODEL", help="cross-encoder reranking model (name or path)"
    )
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback address without API keys")

    p = sub.add_parser("keys", help="the service's API keys file: add, list, revoke (keys carry a tenant and a role)")
    ksub = p.add_subparsers(dest="action", required=True)
    for name, helptext in (
        ("add", "make a key (shown once) for a tenant and role"),
        ("list", "the keys: id, tenant, role, created, revoked"),
        ("revoke", "refuse a key from its next request"),
    ):
        k = ksub.add_parser(name, help=helptext)
        k.add_argument("--file", help="the keys file (env RAGTIDE_API_KEYS_FILE)")
        if name == "add":
            k.add_argument("--tenant", help="whose documents the key sees (default: the whole collection)")
            k.add_argument("--role", choices=ROLES, default="write", help="read, write (default) or admin")
        if name == "revoke":
            k.add_argument("id", help="the key's id, as list shows it")

    p = sub.add_parser("eval", help="measure retrieval quality on a benchmark")
    esub = p.add_subparsers(dest="format", required=True)
    for name, helptext in (
        ("beir", "a BEIR directory (corpus.jsonl, queries.jsonl, qrels/)"),
        ("llamaindex", "a LlamaIndex retrieval eval JSON (queries, corpus, relevant_docs)"),
    ):
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

    values = _settings(args, "llm_base_url", "llm_model", "rerank_model")
    if values.pop("tenant", None):
        raise ConfigError("--tenant: the service's tenants come from its keys (RAGTIDE_API_KEYS=key:tenant:role)")
    settings = Settings.load(**values)
    if args.upload_dir:
        upload_dir = Path(args.upload_dir)
    elif is_lite(settings.uri):
        upload_dir = Path(settings.uri).expanduser().resolve().parent / "ragtide-uploads"
    else:
        upload_dir = Path("ragtide-uploads")
    # An upload's files are refused past the size ingest refuses them at.
    config = ServerConfig.load(upload_dir=upload_dir.resolve(), settings=settings, max_upload_mb=settings.max_file_mb)
    serve(config, args.host, args.port, insecure=args.insecure)
    return 0


def _keys(args: argparse.Namespace) -> int:
    from .server import keys

    file = args.file or os.environ.get("RAGTIDE_API_KEYS_FILE")
    if not file:
        raise ConfigError("--file: which keys file (or set RAGTIDE_API_KEYS_FILE)")
    path = Path(file)
    if args.action == "add":
        secret, key = keys.add(path, args.tenant, args.role)
        print(secret)
        print(
            f"key {key.id}: tenant {key.tenant or '(none)'}, role {key.role}; shown once, keep it now",
            file=sys.stderr,
        )
    elif args.action == "revoke":
        key = keys.revoke(path, args.id)
        print(f"key {key.id} revoked: refused from its next request")
    else:
        for key in keys.read_file(path):
            state = "revoked" if key.revoked else "active"
            print(f"{key.id}  {key.tenant or '-':<20} {key.role:<6} {key.created or '-':<21} {state}")
    return 0


def _settings(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    common = ("uri", "token", "collection", "tenant", "embed_backend", "embed_quantize")
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
        command = {
            "ingest": _ingest,
            "query": _query,
            "chat": _chat,
            "status": _status,
            "list": _list,
            "delete": _delete,
            "eval": _eval,
            "serve": _serve,
            "keys": _keys,
        }[args.command]
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
    with RAG(
        **_settings(args, "embed_model", "chunk_tokens", "chunk_overlap", "sentence_vectors", "max_file_mb")
    ) as rag:
        with ProgressView(console) as view:
            report = rag.ingest(
                args.paths,
                include=args.include,
                exclude=args.exclude,
                prune=args.prune,
                on_progress=view.update,
                metadata=parse_pairs(args.meta),
                ray=_ray_options(args),
            )
        print_report(report)
    return EXIT_FAILED_FILES if report.failed else 0


def _ray_options(args: argparse.Namespace) -> RayOptions | None:
    tuning = {
        "embed_actors": args.ray_actors,
        "actor_cpus": args.ray_actor_cpus,
        "batch": args.ray_batch,
        "actor_gpus": args.ray_actor_gpus,
    }
    given = {name: value for name, value in tuning.items() if value is not None}
    if args.ray is None:
        if given:
            raise ConfigError("--ray-actors, --ray-actor-cpus, --ray-actor-gpus and --ray-batch go with --ray")
        return None
    return RayOptions(args.ray, **given)


def _query(args: argparse.Namespace) -> int:
    with RAG(**_settings(args, "llm_base_url", "llm_model", "rerank_model")) as rag:
        live = sys.stdout.isatty() and not args.json
        answer = rag.query(
            args.question,
            top_k=args.top_k,
            filter=Filter.raw(args.raw_filter) if args.raw_filter else args.filter,
            consistency=args.consistency,
            mode=args.mode,
            stream=live,
        )
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            for delta in answer:
                print(delta, end="", flush=True)
            print("\n")
            _print_sources(answer)
            print(f"Retrieval: {answer.retrieval}")
            for note in answer.notes:
                print(f"note: {note}", file=sys.stderr)
        if answer.error:
            print(f"warning: {answer.error}; answered from the passages instead", file=sys.stderr)
            return EXIT_FAILED_FILES
    return 0


def _print_sources(answer: Answer) -> None:
    if answer.support is not None and answer.support < 1:
        flagged = f"; citation(s) {', '.join(map(str, answer.flagged))} flagged" if answer.flagged else ""
        print(f"Support: {answer.support:.0%} of its sentences backed by their citations{flagged}")
    if answer.sources:
        print("Closest sources:" if answer.abstained else "Sources:")
    for n, source in enumerate(answer.sources, 1):
        print(f"  [{n}] {source.cite(show(source.source))}  (score {source.score:.3f})")


CHAT_HELP = (
    "Ask about your documents; follow-ups are read with the conversation. "
    "/sources: the last answer's passages; /mode dense|lexical|hybrid; /new: a new conversation; /quit (or Ctrl-D)."
)


def _chat(args: argparse.Namespace) -> int:
    """An interactive conversation: one model load, then questions until /quit. Ctrl-C stops
    the answer being written and returns to the prompt; at the prompt it ends the session."""
    with RAG(**_settings(args, "llm_base_url", "llm_model", "rerank_model")) as rag:
        chat = rag.conversation()
        mode: str | None = args.mode
        last: Answer | None = None
        print(CHAT_HELP, file=sys.stderr)
        while True:
            try:
                line = input("> ").strip()
            except (EOFError, KeyboardInterrupt):
                print(file=sys.stderr)
                return 0
            command, _, rest = line.partition(" ")
            if not line:
                continue
            if command in ("/quit", "/exit", "/q"):
                return 0
            if command == "/new":
                chat.clear()
                print("(a new conversation)", file=sys.stderr)
            elif command == "/sources":
                for n, source in enumerate(last.sources if last else [], 1):
                    print(f"[{n}] {source.cite(show(source.source))}\n    {' '.join(source.text.split())[:600]}")
            elif command == "/mode":
                if rest.strip() not in MODES:
                    print(f"/mode takes one of {', '.join(MODES)}", file=sys.stderr)
                    continue
                mode = rest.strip()
                print(f"(retrieval: {mode})", file=sys.stderr)
            elif command.startswith("/"):
                print(CHAT_HELP, file=sys.stderr)
            else:
                last = _chat_turn(chat, line, args, mode) or last
        return 0


def _chat_turn(chat: Conversation, question: str, args: argparse.Namespace, mode: str | None) -> Answer | None:
    try:
        answer = chat.ask(question, top_k=args.top_k, filter=args.filter, mode=mode, stream=True)
        for delta in answer:
            print(delta, end="", flush=True)
        print("\n")
        _print_sources(answer)
        print()
        if answer.error:
            print(f"warning: {answer.error}; answered from the passages instead", file=sys.stderr)
        return answer
    except KeyboardInterrupt:
        print("\n(stopped)", file=sys.stderr)
    except RagtideError as e:
        print(f"error: {e}", file=sys.stderr)
    return None


def _list(args: argparse.Namespace) -> int:
    with RAG(**_settings(args)) as rag:
        documents = rag.catalog()
    if args.json:
        print(json.dumps({"documents": [d.to_dict() for d in documents]}, ensure_ascii=False))
        return 0
    if not documents:
        print("no documents (ingest some first)")
        return 0
    print(f"{'format':<9} {'pages':>5} {'sections':>8} {'chunks':>6} {'size':>9}  {'ingested':<25} document")
    for d in documents:
        size = f"{d.size / 1024:,.0f} KB" if d.size is not None else "-"
        pages = str(d.pages) if d.pages is not None else "-"
        sections = str(d.sections) if d.sections is not None else "-"
        print(
            f"{d.format or '-':<9} {pages:>5} {sections:>8} {d.chunks:>6} {size:>9}  "
            f"{d.ingested or '-':<25} {show(d.source)}"
        )
    print(f"{len(documents)} document(s)")
    return 0


def _status(args: argparse.Namespace) -> int:
    with RAG(**_settings(args)) as rag:
        info = rag.status()
        names = rag.collections()
    uri = rag.settings.uri
    print(f"Milvus: {uri}")
    if not names and not rag.has_database():
        print(f"no Milvus Lite database at {uri} (nothing ingested there yet)")
        return 0
    print(f"collections: {', '.join(names) if names else '(none)'}")
    if info is None:
        print(f"collection {rag.settings.collection!r}: does not exist (ingest documents first)")
        return 0
    weights = ", int8 weights" if info.quantize == "int8" else ""
    made = f", created with {info.embedded_with}" if info.embedded_with else ""
    print(
        f"collection {info.name!r}: {info.documents} documents, {info.chunks} chunks, "
        f"model {info.model} ({info.dim}-d{weights}{made})"
    )
    print(f"retrieval: {', '.join(info.modes)}" + (" (hybrid by default)" if info.lexical else ""))
    if info.note:
        print(f"note: {info.note}")
    if not info.sentences:
        print(
            "note: made before sentence vectors were stored at ingest, so each answer embeds the sentences it "
            "weighs; ingest into a new --collection for answers about twice as fast under load"
        )
    if info.incomplete:
        print(
            f"{len(info.incomplete)} document(s) only partly stored (not counted above; searches may see part of them):"
        )
        for source, what in sorted(info.incomplete.items()):
            print(f"  {show(source)}: {what}")
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
    from .eval import load_beir, load_llamaindex, run_eval

    bench = load_beir(args.path, args.split) if args.format == "beir" else load_llamaindex(args.path)
    options = _settings(args, "embed_model", "chunk_tokens", "chunk_overlap", "rerank_model")
    result = run_eval(bench, top_k=args.top_k, mode=args.mode, **options)
    table = result.pop("table")
    print(json.dumps(result, ensure_ascii=False) if args.json else table)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
