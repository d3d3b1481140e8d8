"""Ingest on a Ray cluster: the stages of :mod:`.pipeline`, run by Ray Data.

    files ─ parse and chunk (Ray tasks) ─ embed (an actor pool, one model each) ─ write (actors) ─ driver

Each stage scales on its own: parse tasks wherever the files can be read, embedding
actors wherever there are cores or GPUs, writers beside Milvus. The rules are the
single-process ones, from the same code: a document's version is the hash of its content
and how it is chunked; an unchanged document is skipped before it is chunked; chunk ids
come from the document's key, so a retried batch (a worker died) upserts the same rows
again; and the driver counts each document's acknowledged chunks, removing its older
version only once the new one is whole. A run that dies (driver or workers) leaves
documents the next run sees as incomplete and stores again, exactly once.

Files are local paths every worker can read (a shared filesystem), or URIs of object
storage that pyarrow reads (``s3://``, ``gs://``, ``abfs://``, ``hdfs://``, ``file://``).
Milvus Lite is refused: one process owns its file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import numpy as np

from .._loop import LoopThread
from ..documents import Chunk, Document
from ..embedding import Embedder, Space, SpanTokenizer, embedder_for
from ..errors import ConfigError, LoaderError, RagtideError
from ..sentences import Embedding, SentenceVectors, Units, units_of
from ..settings import Settings
from ..store import MAX_VARCHAR, MilvusStore, Row, Store, is_lite
from . import removal
from .chunking import Chunker
from .loaders import Caps, discover
from .metadata import Value, checked
from .pipeline import caps_of, metadata_key, over_document_limit, prepared, read, version_of
from .report import IngestReport, Outcome, Progress, ProgressCallback, ProgressKind

T = TypeVar("T")

LOCAL = "local"
"""The address that starts a Ray runtime in this process instead of joining a cluster."""

_FILES_PER_TASK = 4
_ROW_BYTES = 1024  # about what a chunk weighs between the stages, before its vector
_WRITERS = 2
_TASK_CPUS = 0.25  # parse and write wait on files and Milvus more than they compute


@dataclass(frozen=True)
class RayOptions:
    """How to use the cluster. ``address``: ``local``, ``auto`` (the cluster this machine
    belongs to), ``host:port`` or ``ray://host:10001``. ``embed_actors``: models loaded at
    once (0: as many as the cluster's CPUs allow at ``actor_cpus`` each, leaving one CPU for
    parsing and writing); ``actor_cpus``: cores, and so threads, per model."""

    address: str = LOCAL
    embed_actors: int = 0
    actor_cpus: int = 2
    batch: int = 128
    """Chunks per model call and per write (128, as in the single-process pipeline; a GPU
    actor wants more)."""
    actor_gpus: float = 0.0
    """GPUs per embedding actor (with ``embed_device="cuda"``): Ray hides GPUs from an
    actor that did not ask for one."""

    def actors(self, cluster_cpus: float) -> tuple[int, float]:
        """How many embedding actors, and the CPUs each reserves, on a cluster of ``cluster_cpus``.
        Asking for more than the cluster has is refused: Ray would wait for them forever."""
        spare = max(cluster_cpus - 1, _TASK_CPUS * 2)
        cpus = min(float(self.actor_cpus), spare)
        actors = self.embed_actors or max(1, int(spare // cpus))
        if actors * cpus > spare:
            raise ConfigError(
                f"--ray-actors {actors} x --ray-actor-cpus {cpus:g} needs {actors * cpus:g} CPUs; the Ray "
                f"cluster has {cluster_cpus:g}, and parsing and writing need one: ask for fewer"
            )
        return actors, cpus


@dataclass(frozen=True)
class _Job:
    """What every worker needs to know of the run (pickled once, sent to each)."""

    settings: Settings  # with the model resolved: every actor loads the one the collection records
    tenant: str
    model: str
    dim: int
    space: Space
    caps: Caps
    max_doc_chunks: int | None
    metadata: Mapping[str, Value]
    metadata_key: str
    units: Units | None = None  # each chunk's answer units, whose vectors are stored with it


def check_target(uri: str) -> None:
    """Refuse a Milvus Lite file: only the process that opened it can write it."""
    if is_lite(uri):
        raise ConfigError(
            f"--ray needs a Milvus server, cluster or Zilliz Cloud URI: {uri} is a Milvus Lite "
            "file, which only the process that opened it can write"
        )


async def ingest_on_ray(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    inputs: Sequence[str],
    ray: RayOptions,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prune: bool = False,
    on_progress: ProgressCallback | None = None,
    metadata: Mapping[str, Any] | None = None,
    units: Units | None = None,
) -> IngestReport:
    """Ingest files or object-storage URIs into ``store``'s collection on Ray: what
    :func:`.pipeline.ingest` does, with the same report. ``embedder`` is the model every
    actor loads (its name, space and tokenizer; it embeds nothing here)."""
    check_target(settings.uri)
    started = time.perf_counter()
    emit = on_progress or (lambda _: None)
    user = checked(metadata or {})
    Chunker(embedder, settings.chunk_tokens, settings.chunk_overlap)  # bad chunk settings fail here, once
    info = await store.open(embedder.name, embedder.dim, create=True, **embedder.space)
    job = _Job(
        settings.replace(embed_model=embedder.name, embed_quantize=embedder.quantize, embed_backend=embedder.backend),
        store.tenant or "",
        embedder.name,
        embedder.dim,
        embedder.space,
        caps_of(settings),
        settings.max_doc_chunks,
        user,
        metadata_key(user),
        units if info.sentences else None,
    )
    files, report = await asyncio.to_thread(_listing, inputs, include, exclude)
    total = len(files) + len(report.failed)
    emit(Progress("start", total, 0, 0))
    run = _Run(store, report, emit, total)
    if files:
        ray_module, joined = await asyncio.to_thread(_join, ray.address)
        try:
            dataset = await asyncio.to_thread(_dataset, ray_module, files, job, embedder.tokenizer, ray)
            batches = iter(dataset.iter_batches(batch_size=None, batch_format="numpy"))
            while (rows := await asyncio.to_thread(next, batches, None)) is not None:
                await run.take(rows)
        finally:
            if joined:
                await asyncio.to_thread(ray_module.shutdown)
    await run.finish()
    if prune:
        local = [p for p in inputs if not _is_uri(p)]
        report.deleted = await removal.prune(store, local, {key for key, _ in files})
    report.seconds = time.perf_counter() - started
    return report


def _is_uri(item: str) -> bool:
    return "://" in str(item)


def _listing(
    inputs: Sequence[str], include: Sequence[str], exclude: Sequence[str]
) -> tuple[list[tuple[str, str]], IngestReport]:
    """(key, where to read it) of every file to ingest: local files as :func:`discover` finds
    them, object-storage files by listing their URIs; and a report naming what cannot be read."""
    report = IngestReport()
    local = [p for p in inputs if not _is_uri(p)]
    found = discover(local, include, exclude)
    report.skipped = [str(p) for p in found.skipped]
    report.failed.update(found.problems)
    files = [(str(p), str(p)) for p in found.files]
    for uri in (p for p in inputs if _is_uri(p)):
        try:
            files.extend((u, u) for u in _remote_files(str(uri), include, exclude))
        except (OSError, ValueError) as e:  # pyarrow's errors for a bad URI, missing bucket or credentials
            report.failed[str(uri)] = f"cannot list ({e})"
    return files, report


def _remote_files(uri: str, include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """The files under ``uri`` (or ``uri`` itself), by the same globs and hiding rules as local files."""
    from fnmatch import fnmatch

    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    scheme = uri.split("://", 1)[0]
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.NotFound:
        raise FileNotFoundError(f"no such file or folder: {uri}")
    if info.type == fs.FileType.File:
        entries = [info]
        base = PurePosixPath(path).parent
    else:
        entries = [e for e in filesystem.get_file_info(fs.FileSelector(path, recursive=True)) if e.is_file]
        base = PurePosixPath(path)

    def wanted(relative: PurePosixPath) -> bool:
        if any(part.startswith(".") for part in relative.parts):
            return False
        names = (relative.name, str(relative))
        if include and not any(fnmatch(n, g) for n in names for g in include):
            return False
        return not any(fnmatch(n, g) for n in names for g in exclude)

    keep = [e.path for e in entries if wanted(PurePosixPath(e.path).relative_to(base))]
    return sorted(f"{scheme}://{p}" if scheme != "file" else f"file://{p}" for p in keep)


def _join(address: str) -> tuple[Any, bool]:
    """Ray, and whether this run joined it (or started it, for ``local``) and so leaves it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray Data: pip install 'ragtide[ray]'") from None
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    joined = not ray.is_initialized()
    if joined:
        _init(ray, address)
    # Ray Data reports each dataset's start and end, and its tuning hints, on the terminal;
    # ragtide reports progress itself. Ray Data resets its own logger as a dataset starts,
    # not those below it.
    for name in ("progress", "execution.streaming_executor", "execution.operators.actor_pool_map_operator"):
        logging.getLogger(f"ray.data._internal.{name}").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="ray.data")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return ray, joined


def _init(ray: Any, address: str) -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if name.startswith("RAGTIDE_") or name in ("HF_HUB_OFFLINE", "HF_HOME", "TOKENIZERS_PARALLELISM")
    }
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["GRPC_VERBOSITY"] = "ERROR"
    try:
        ray.init(
            address=None if address == LOCAL else address,
            runtime_env={"env_vars": env},
            logging_level=logging.ERROR,
            log_to_driver=False,
            include_dashboard=False,
        )
    except (ConnectionError, RuntimeError) as e:
        what = "start a local Ray runtime" if address == LOCAL else f"join the Ray cluster at {address}"
        raise ConfigError(f"--ray {address}: cannot {what} ({e})") from None


def _dataset(ray: Any, files: list[tuple[str, str]], job: _Job, tokenizer: SpanTokenizer, options: RayOptions) -> Any:
    actors, actor_cpus = options.actors(ray.cluster_resources().get("CPU", 1.0))
    embedding = dataclasses.replace(job, settings=job.settings.replace(embed_threads=options.actor_cpus))
    items = [{"key": key, "where": where} for key, where in files]
    listing = ray.data.from_items(items, override_num_blocks=min(len(items), 10_000))
    # Blocks of about a model batch of chunks (this dataset's setting only), so a large
    # file's chunks reach every actor, not one.
    listing.context.target_max_block_size = options.batch * _ROW_BYTES
    return (
        listing.map_batches(
            _parse,
            fn_kwargs={"job": job, "tokenizer": tokenizer, "batch": options.batch},
            batch_size=_FILES_PER_TASK,
            num_cpus=_TASK_CPUS,
        )
        .map_batches(
            _Embed,
            fn_constructor_args=(embedding,),
            batch_size=options.batch,
            num_cpus=actor_cpus,
            num_gpus=options.actor_gpus or None,
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        .map_batches(
            _Write,
            fn_constructor_args=(job,),
            batch_size=options.batch,
            num_cpus=_TASK_CPUS,
            compute=ray.data.ActorPoolStrategy(size=_WRITERS),
        )
    )


# -- rows between the stages ----------------------------------------------------------
# Every stage passes on what it does not handle: a document's outcome (unchanged, failed)
# travels with the chunks to the driver. Columns are plain types; a chunk is JSON.

_COLUMNS = ("kind", "key", "doc_id", "version", "n_chunks", "action", "reason", "chunk", "count")
_COUNTS = {"n_chunks", "count"}


class _Rows:
    def __init__(self) -> None:
        self.columns: dict[str, list] = {name: [] for name in _COLUMNS}

    def add(
        self,
        kind: str,
        key: str,
        *,
        doc_id: str = "",
        version: str = "",
        n_chunks: int = 0,
        action: str = "",
        reason: str = "",
        chunk: str = "",
        count: int = 0,
    ) -> None:
        for name, value in zip(_COLUMNS, (kind, key, doc_id, version, n_chunks, action, reason, chunk, count)):
            self.columns[name].append(value)

    def __len__(self) -> int:
        return len(self.columns["kind"])

    def batch(self) -> dict[str, np.ndarray]:
        return {
            name: np.array(values, dtype=np.int64 if name in _COUNTS else object)
            for name, values in self.columns.items()
        }


def _parse(
    files: dict[str, np.ndarray], job: _Job, tokenizer: SpanTokenizer, batch: int
) -> Iterator[dict[str, np.ndarray]]:
    """Load, version and chunk a batch of files (a Ray task); chunks leave a model batch at a time."""
    rows = _Rows()
    chunker = Chunker(tokenizer, job.settings.chunk_tokens, job.settings.chunk_overlap)
    docs: list[tuple[Document, str]] = []
    for key, where in zip(files["key"], files["where"]):
        loaded = _fetch(str(key), str(where), job.caps)
        if isinstance(loaded, LoaderError):
            rows.add("failed", loaded.path, reason=loaded.reason)
            continue
        doc = prepared(loaded, job.metadata, job.tenant)
        docs.append((doc, version_of(doc, chunker, job.metadata_key, job.units is not None)))
    if not docs:
        yield rows.batch()
        return
    with _Milvus(job) as milvus:
        states = milvus.run(milvus.store.doc_states([doc.doc_id for doc, _ in docs]))
    for doc, version in docs:
        state = states.get(doc.doc_id)
        if state is not None and state.doc_hash == version and state.complete:
            rows.add("unchanged", doc.key)
            continue
        try:
            boundaries = chunker.boundaries(doc)
        except RagtideError as e:
            rows.add("failed", doc.key, reason=str(e).removeprefix(f"{doc.key}: "))
            continue
        problem = over_document_limit(len(boundaries), job.max_doc_chunks) if boundaries else "no text to index"
        if problem:
            rows.add("failed", doc.key, reason=problem)
            continue
        action = Outcome.ADDED if state is None else Outcome.UPDATED
        for chunk in chunker.chunks(doc, boundaries):
            rows.add(
                "chunk",
                doc.key,
                doc_id=doc.doc_id,
                version=version,
                n_chunks=len(boundaries),
                action=action.value,
                chunk=json.dumps(dataclasses.asdict(chunk)),
            )
            if len(rows) == batch:
                yield rows.batch()
                rows = _Rows()
    if len(rows):
        yield rows.batch()


def _fetch(key: str, where: str, caps: Caps) -> Document | LoaderError:
    """A file loaded as the single-process ingest loads it; from object storage through a
    temporary copy under the same name (its suffix says its type)."""
    if not _is_uri(where):
        return read(Path(where), caps)
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(where)
        size = filesystem.get_file_info(path).size or 0
        if caps.bytes is not None and size > caps.bytes:
            return LoaderError(key, f"too large ({size / 2**20:,.0f} MB; the limit is {caps.bytes / 2**20:,.0f} MB)")
        with tempfile.TemporaryDirectory(prefix="ragtide-") as folder:
            copy = Path(folder) / PurePosixPath(path).name
            with filesystem.open_input_stream(path) as source, open(copy, "wb") as target:
                while block := source.read(1 << 20):
                    target.write(block)
            return read(copy, caps, key=key)
    except OSError as e:
        return LoaderError(key, f"cannot read ({e})")


class _Milvus:
    """A worker's own connection to the run's collection, on a loop of its own."""

    def __init__(self, job: _Job) -> None:
        self._loop = LoopThread("ragtide-ray-worker")
        self.store = _store(job.settings, job.tenant)
        try:
            self.run(self.store.open(job.model, job.dim, create=False, **job.space))
        except BaseException:
            self.close()
            raise

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(work)

    def close(self) -> None:
        try:
            self._loop.run(self.store.close())
        finally:
            self._loop.close()

    def __enter__(self) -> _Milvus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _store(settings: Settings, tenant: str | None) -> Store:
    s = settings
    store: Store = MilvusStore(s.uri, s.collection, token=s.token, consistency=s.consistency, retry_s=s.retry_s)
    return store.scoped(tenant) if tenant else store


class _Embed:
    """An embedding actor: one model, loaded once, for every batch it is given."""

    def __init__(self, job: _Job) -> None:
        self._embedder = embedder_for(job.settings)
        self._units = job.units

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        chunks = np.flatnonzero(batch["kind"] == "chunk")
        vectors = np.zeros((len(batch["kind"]), self._embedder.dim), dtype=np.float32)
        sentences = np.full(len(batch["kind"]), "", dtype=object)
        if len(chunks):
            texts = [json.loads(batch["chunk"][i])["text"] for i in chunks]
            work = Embedding(texts, units_of(texts, self._units))
            try:
                vectors[chunks], stored = work.split(self._embedder.encode(work.distinct), MAX_VARCHAR)
            except RagtideError as e:
                batch["kind"][chunks] = "failed"
                batch["reason"][chunks] = str(e)
            else:
                sentences[chunks] = [found.encoded for found in stored]
        return {**batch, "vector": vectors, "sentences": sentences}


class _Write:
    """A writing actor: upserts chunks with their vectors; tells the driver, per document,
    how many Milvus acknowledged."""

    def __init__(self, job: _Job) -> None:
        self._milvus = _Milvus(job)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = _Rows()
        chunks = np.flatnonzero(batch["kind"] == "chunk")
        for i in np.flatnonzero(batch["kind"] != "chunk"):
            rows.add(
                str(batch["kind"][i]),
                str(batch["key"][i]),
                doc_id=str(batch["doc_id"][i]),
                version=str(batch["version"][i]),
                reason=str(batch["reason"][i]),
            )
        if not len(chunks):
            return rows.batch()
        written = [
            Row(
                Chunk(**json.loads(batch["chunk"][i])),
                batch["vector"][i],
                str(batch["version"][i]),
                int(batch["n_chunks"][i]),
                SentenceVectors(str(batch["sentences"][i])),
            )
            for i in chunks
        ]
        failure = ""
        try:
            self._milvus.run(self._milvus.store.write(written))
            self._milvus.run(self._milvus.store.confirm())
        except RagtideError as e:
            failure = str(e)
        counts: dict[str, list[int]] = {}  # doc_id -> [a row of it, how many of its chunks]
        for i in chunks:
            counts.setdefault(str(batch["doc_id"][i]), [int(i), 0])[1] += 1
        for first, count in counts.values():
            rows.add(
                "failed" if failure else "written",
                str(batch["key"][first]),
                doc_id=str(batch["doc_id"][first]),
                version=str(batch["version"][first]),
                n_chunks=int(batch["n_chunks"][first]),
                action=str(batch["action"][first]),
                reason=failure,
                count=count,
            )
        return rows.batch()


class _Run:
    """The driver's side: each document's acknowledged chunks counted; a document whose new
    version is whole has its older version removed and counts as added or updated."""

    def __init__(self, store: Store, report: IngestReport, emit: ProgressCallback, files_total: int) -> None:
        self._store, self._report, self._emit = store, report, emit
        self._total = files_total
        self._done = len(report.failed)
        self._written: dict[str, int] = {}
        self._versions: dict[str, tuple[str, str]] = {}  # doc_id -> (key, version)
        self._failed: set[str] = set()
        self._finished: set[str] = set()

    def _progress(self, kind: ProgressKind, key: str, **details: object) -> None:
        self._emit(Progress(kind, self._total, self._done, self._report.chunks, key, **details))  # type: ignore[arg-type]

    def _end(self, key: str, outcome: Outcome, reason: str = "") -> None:
        self._report.count(key, outcome, reason)
        self._done += 1
        self._progress("file", key, outcome=outcome, reason=reason)

    async def take(self, rows: dict[str, np.ndarray]) -> None:
        columns = ("kind", "key", "doc_id", "version", "n_chunks", "action", "reason", "count")
        for kind, key, doc_id, version, n_chunks, action, reason, count in zip(*(rows[c] for c in columns)):
            key, doc_id, version = str(key), str(doc_id), str(version)
            settled = doc_id in self._failed or doc_id in self._finished
            if kind == "unchanged":
                self._end(key, Outcome.UNCHANGED)
            elif kind == "failed" and not settled:
                if doc_id:  # its chunks reached the embedder or Milvus: what it wrote goes at the end
                    self._failed.add(doc_id)
                    self._versions[doc_id] = (key, version)
                self._end(key, Outcome.FAILED, str(reason))
            elif kind == "written" and not settled:
                self._versions[doc_id] = (key, version)
                self._written[doc_id] = self._written.get(doc_id, 0) + int(count)
                self._report.chunks += int(count)
                if self._written[doc_id] >= int(n_chunks):
                    await self._complete(doc_id, key, version, Outcome(str(action)))
                else:
                    self._progress(
                        "chunks", key, file_chunks_done=self._written[doc_id], file_chunks_total=int(n_chunks)
                    )

    async def _complete(self, doc_id: str, key: str, version: str, action: Outcome) -> None:
        self._finished.add(doc_id)
        try:
            if action is Outcome.UPDATED:
                await self._store.delete_stale(doc_id, version)
        except RagtideError as e:
            self._end(key, Outcome.FAILED, str(e))
            return
        self._end(key, action)

    async def finish(self) -> None:
        """Name the documents left short, and remove what failed ones wrote of their new version."""
        for doc_id, (key, _) in self._versions.items():
            if doc_id not in self._finished and doc_id not in self._failed:
                self._failed.add(doc_id)
                self._end(key, Outcome.FAILED, "not every chunk was acknowledged; ingest it again")
        for doc_id in self._failed:
            key, version = self._versions[doc_id]
            try:
                await self._store.delete_version(doc_id, version)
            except RagtideError:
                pass  # the next run sees it incomplete and stores it again
