"""The ingestion pipeline: load -> chunk -> embed -> write, as concurrent stages.

Stages are joined by bounded queues, so parsing, the embedder and Milvus work at
the same time and memory stays bounded however large the input. A document counts
as ingested only once Milvus acknowledged every one of its chunks; only then are its
old chunks removed, so an interrupted run never loses what was there before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..documents import Chunk, Document, digest
from ..embedding import Embedder
from ..errors import LoaderError, RagtideError
from ..sentences import Embedding, SentenceVectors, Units, units_of
from ..settings import Settings
from ..store import MAX_VARCHAR, Row, Store
from . import removal
from .chunking import Chunker
from .loaders import Caps, discover, load
from .metadata import Value, checked, stamp
from .report import IngestReport, Outcome, Progress, ProgressCallback, ProgressKind

Input = str | os.PathLike[str] | Document

_EMBED_BATCH = 128  # chunks per model call: large enough to keep the model busy
_LOADERS = 2


@dataclass(eq=False)  # identity: one per document in flight
class _Pending:
    """A document whose chunks are on their way to Milvus."""

    doc: Document
    action: Outcome  # added or updated
    version: str  # the hash its rows record: its content and how it was chunked
    chunks: int  # how many chunks this version has
    remaining: int
    error: str | None = None


async def ingest(
    store: Store,
    embedder: Embedder,
    settings: Settings,
    inputs: Sequence[Input],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prune: bool = False,
    on_progress: ProgressCallback | None = None,
    max_chunks: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    units: Units | None = None,
) -> IngestReport:
    """Ingest ``inputs`` into ``store``'s collection, creating it if need be. With
    ``max_chunks``, documents that would take the run past that many chunks fail, named;
    ``metadata`` is attached to every document (see :mod:`.metadata`); ``units``: each
    chunk's answer units, whose vectors are stored with it where the collection keeps them."""
    user = checked(metadata or {})
    chunker = Chunker(embedder, settings.chunk_tokens, settings.chunk_overlap)
    creating = None
    if await store.stored_model() is None:
        # Creating a collection on a server takes seconds (schema, index, load):
        # parse and embed meanwhile; the pipeline writes nothing before it exists.
        creating = asyncio.create_task(store.open(embedder.name, embedder.dim, create=True, **embedder.space))
    else:
        info = await store.open(embedder.name, embedder.dim, create=True, **embedder.space)
        if not info.sentences:
            units = None  # a collection made before they were stored
    pipeline = Pipeline(
        store,
        embedder,
        chunker,
        on_progress=on_progress,
        creating=creating,
        caps=caps_of(settings),
        max_doc_chunks=settings.max_doc_chunks,
        max_run_chunks=max_chunks,
        metadata=user,
        units=units,
    )
    return await pipeline.run(inputs, include=include, exclude=exclude, prune=prune)


class Pipeline:
    """One ingest run. Use :meth:`run`; :func:`ingest` builds it.

    ``creating`` is the task creating a brand-new collection, if that is what the run
    writes to: its documents are all new, and writes wait until it exists.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        chunker: Chunker,
        *,
        on_progress: ProgressCallback | None = None,
        creating: asyncio.Task | None = None,
        caps: Caps = Caps(),
        max_doc_chunks: int | None = None,
        max_run_chunks: int | None = None,
        metadata: Mapping[str, Value] | None = None,
        units: Units | None = None,
    ) -> None:
        self._units = units
        self._metadata = dict(metadata or {})
        self._metadata_key = metadata_key(self._metadata)
        self._store = store
        self._caps = caps
        self._max_doc_chunks = max_doc_chunks
        self._max_run_chunks = max_run_chunks
        self._planned = 0  # chunks of the documents chunked so far
        self._open: dict[int, _Pending] = {}  # documents chunked and not yet finished
        self._creating = creating
        self._embedder = embedder
        self._chunker = chunker
        self._on_progress = on_progress or (lambda _: None)
        self._report = IngestReport()
        self._files_total = 0
        self._files_done = 0
        self._chunks_done = 0
        self._partial: list[_Pending] = []

    async def run(
        self,
        inputs: Iterable[Input],
        *,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        prune: bool = False,
    ) -> IngestReport:
        started = time.perf_counter()
        embed_before = self._embedder.busy_seconds
        report = self._report
        docs = [item for item in inputs if isinstance(item, Document)]
        paths = [item for item in inputs if not isinstance(item, Document)]
        found = discover(paths, include, exclude)
        report.skipped = [str(p) for p in found.skipped]
        report.failed.update(found.problems)
        work: list[Path | Document] = [*found.files, *docs]
        self._files_total = len(work)
        self._emit("start")

        loaded: asyncio.Queue = asyncio.Queue(maxsize=4)
        chunked: asyncio.Queue = asyncio.Queue(maxsize=_EMBED_BATCH * 4)
        stages = [
            asyncio.create_task(self._load_stage(work, loaded)),
            asyncio.create_task(self._chunk_stage(loaded, chunked)),
            asyncio.create_task(self._embed_stage(chunked)),
        ]
        # If the collection cannot be made, stop at once; but never cut its creation short,
        # which could leave it without its index.
        creating = [asyncio.shield(self._creating)] if self._creating is not None else []
        try:
            await asyncio.gather(*stages, *creating)
        except asyncio.CancelledError:
            # Stopped from outside (a cancelled job, Ctrl-C): what the unfinished documents
            # wrote of their new versions goes, so none is left half-written.
            self._partial.extend(p for p in self._open.values() if p.remaining < p.chunks)
            await asyncio.shield(self._remove_partial_writes())
            raise
        finally:
            for task in stages:
                task.cancel()
            if self._creating is not None:
                await asyncio.gather(*creating, return_exceptions=True)
        await self._remove_partial_writes()
        if prune:
            report.deleted = await removal.prune(self._store, paths, {str(p) for p in found.files})
        report.seconds = time.perf_counter() - started
        report.embed_seconds = self._embedder.busy_seconds - embed_before
        return report

    def _emit(self, kind: ProgressKind, path: str = "", **details: object) -> None:
        self._on_progress(Progress(kind, self._files_total, self._files_done, self._chunks_done, path, **details))  # type: ignore[arg-type]

    def _finish(self, key: str, outcome: Outcome, reason: str = "", pending: _Pending | None = None) -> None:
        self._report.count(key, outcome, reason)
        self._files_done += 1
        if pending is not None:
            self._open.pop(id(pending), None)
        if pending is None:
            self._emit("file", key, outcome=outcome, reason=reason)
        else:
            done = pending.chunks - pending.remaining
            self._emit(
                "file", key, outcome=outcome, reason=reason, file_chunks_done=done, file_chunks_total=pending.chunks
            )

    def _too_many(self, chunks: int) -> str:
        """Why a document of ``chunks`` chunks may not be stored, or ""."""
        if too_long := over_document_limit(chunks, self._max_doc_chunks):
            return too_long
        if self._max_run_chunks is not None and self._planned + chunks > self._max_run_chunks:
            return f"{chunks:,} more chunks would pass this ingest's limit of {self._max_run_chunks:,}"
        return ""

    # -- stages --------------------------------------------------------------------

    async def _load_stage(self, work: list[Path | Document], out: asyncio.Queue) -> None:
        """Parse files in worker threads, a few at a time, in input order."""
        slots = asyncio.Semaphore(_LOADERS)
        caps = self._caps

        async def one(item: Path | Document) -> Document | LoaderError:
            if isinstance(item, Document):
                return item
            async with slots:
                return await asyncio.to_thread(read, item, caps)

        window: list[asyncio.Task] = []
        for item in work:
            window.append(asyncio.create_task(one(item)))
            if len(window) > _LOADERS * 2:
                await out.put(await window.pop(0))
        for task in window:
            await out.put(await task)
        await out.put(None)

    async def _chunk_stage(self, inp: asyncio.Queue, out: asyncio.Queue) -> None:
        """Skip unchanged documents, chunk the rest."""
        while (item := await inp.get()) is not None:
            if isinstance(item, LoaderError):
                self._finish(item.path, Outcome.FAILED, item.reason)
                continue
            doc = prepared(item, self._metadata, self._store.tenant)
            version = version_of(doc, self._chunker, self._metadata_key, self._units is not None)
            try:
                state = None if self._creating else (await self._store.doc_states([doc.doc_id])).get(doc.doc_id)
                if state is not None and state.doc_hash == version and state.complete:
                    self._finish(doc.key, Outcome.UNCHANGED)
                    continue
                boundaries = await asyncio.to_thread(self._chunker.boundaries, doc)
            except RagtideError as e:
                self._finish(doc.key, Outcome.FAILED, _without_key(str(e), doc.key))
                continue
            if not boundaries:
                self._finish(doc.key, Outcome.FAILED, "no text to index")
                continue
            too_many = self._too_many(len(boundaries))
            if too_many:
                self._finish(doc.key, Outcome.FAILED, too_many)
                continue
            self._planned += len(boundaries)
            action = Outcome.ADDED if state is None else Outcome.UPDATED
            pending = _Pending(doc, action, version, len(boundaries), remaining=len(boundaries))
            self._open[id(pending)] = pending
            self._emit("chunked", doc.key, file_chunks_total=pending.chunks)
            # Made one at a time as the queue takes them: a huge file's chunks never sit in memory at once.
            for chunk in self._chunker.chunks(doc, boundaries):
                if pending.error is not None:
                    break
                await out.put((pending, chunk))
        await out.put(None)

    async def _embed_stage(self, inp: asyncio.Queue) -> None:
        """Embed chunks in large batches across documents; writes run in the background."""
        writes: set[asyncio.Task] = set()
        finished = False
        while not finished and (item := await inp.get()) is not None:
            batch = [item]
            # Take what else is ready, without waiting: the queue fills while the model works.
            while len(batch) < _EMBED_BATCH:
                try:
                    item = inp.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    finished = True
                    break
                batch.append(item)
            batch = [(pending, chunk) for pending, chunk in batch if pending.error is None]
            if not batch:
                continue
            try:
                vectors, sentences = await embedded([chunk for _, chunk in batch], self._embedder, self._units)
            except RagtideError as e:
                for pending, _ in batch:
                    self._fail(pending, str(e))
                continue
            rows = [
                Row(chunk, vector, pending.version, pending.chunks, stored)
                for (pending, chunk), vector, stored in zip(batch, vectors, sentences)
            ]
            task = asyncio.create_task(self._write([pending for pending, _ in batch], rows))
            writes.add(task)
            task.add_done_callback(writes.discard)
            if len(writes) >= 4:  # bound the rows held in memory awaiting Milvus
                await asyncio.wait(writes, return_when=asyncio.FIRST_COMPLETED)
        if writes:
            await asyncio.gather(*writes)

    async def _write(self, owners: list[_Pending], rows: list[Row]) -> None:
        try:
            if self._creating is not None:
                await self._creating
            await self._store.write(rows)
        except RagtideError as e:
            for pending in owners:
                self._fail(pending, str(e))
            return
        self._chunks_done += len(rows)
        self._report.chunks += len(rows)
        for pending in owners:
            pending.remaining -= 1
        for pending in dict.fromkeys(owners):  # each document once, in order
            if pending.error is not None:
                continue
            if pending.remaining == 0:
                await self._complete(pending)
            else:
                self._emit(
                    "chunks",
                    pending.doc.key,
                    file_chunks_done=pending.chunks - pending.remaining,
                    file_chunks_total=pending.chunks,
                )

    async def _complete(self, pending: _Pending) -> None:
        doc = pending.doc
        try:
            await self._store.confirm()
        except RagtideError as e:
            self._fail(pending, str(e))  # its old version, if any, stays whole
            return
        try:
            if pending.action is Outcome.UPDATED:
                await self._store.delete_stale(doc.doc_id, pending.version)
        except RagtideError as e:
            self._finish(doc.key, Outcome.FAILED, str(e), pending)
            return
        self._finish(doc.key, pending.action, pending=pending)

    def _fail(self, pending: _Pending, reason: str) -> None:
        if pending.error is None:
            pending.error = reason
            self._finish(pending.doc.key, Outcome.FAILED, reason, pending)
            if pending.remaining < pending.chunks:
                self._partial.append(pending)

    async def _remove_partial_writes(self) -> None:
        """Remove what failed documents wrote of their new version, so the old one (if any)
        stays whole. Best effort: if Milvus is gone, the next run sees the document as
        incomplete and redoes it."""
        for pending in self._partial:
            try:
                await self._store.delete_version(pending.doc.doc_id, pending.version)
            except RagtideError:
                pass


async def embedded(
    chunks: Sequence[Chunk], embedder: Embedder, units: Units | None
) -> tuple[np.ndarray, list[SentenceVectors]]:
    """The vectors of ``chunks``, and of their answer units (none without ``units``), in one model call."""
    texts = [chunk.text for chunk in chunks]
    work = Embedding(texts, await asyncio.to_thread(units_of, texts, units))
    return work.split(await embedder.embed(work.distinct), MAX_VARCHAR)


def over_document_limit(chunks: int, limit: int | None) -> str:
    """Why a document of ``chunks`` chunks is refused by the limit per document, or ""."""
    if limit is not None and chunks > limit:
        return f"{chunks:,} chunks (the limit per document is {limit:,}: split it, or raise RAGTIDE_MAX_DOC_CHUNKS)"
    return ""


def caps_of(settings: Settings) -> Caps:
    """The limits on one file that ``settings`` set."""
    s = settings
    return Caps(int(s.max_file_mb * 2**20), s.max_doc_pages, s.max_doc_chars, s.max_ocr_pages)


def read(path: Path, caps: Caps, key: str = "") -> Document | LoaderError:
    """Load one file within the run's caps, stamped with its size; ``key`` names it instead
    of its path (a copy of a file from object storage)."""
    name = key or str(path)
    try:
        doc = load(path, max_bytes=caps.bytes, max_pages=caps.pages, max_chars=caps.chars, max_ocr_pages=caps.ocr_pages)
        doc = dataclasses.replace(doc, metadata={**doc.metadata, **stamp(path.stat().st_size)})
        return dataclasses.replace(doc, key=key) if key else doc
    except LoaderError as e:
        return LoaderError(name, e.reason) if key else e
    except OSError as e:  # the file went away after it was read
        return LoaderError(name, f"cannot read ({e.strerror or e})")


def metadata_key(metadata: Mapping[str, Value]) -> str:
    """The run's metadata as part of each document's version: changing it stores them again."""
    return json.dumps(dict(metadata), sort_keys=True) if metadata else ""


def prepared(doc: Document, metadata: Mapping[str, Value], tenant: str | None) -> Document:
    """``doc`` with what the run adds to every document: its metadata and the tenant it is for."""
    if metadata:
        doc = dataclasses.replace(doc, metadata={**doc.metadata, **metadata})
    return dataclasses.replace(doc, tenant=tenant) if tenant else doc


def version_of(doc: Document, chunker: Chunker, metadata_key: str, sentences: bool = False) -> str:
    """The version a document's rows record. How it is chunked is part of it (a changed
    --chunk-tokens chunks it again), and whether its sentences' vectors are stored."""
    marks = [metadata_key, "sentences" if sentences else ""]
    return digest(doc.content_hash, chunker.fingerprint, *filter(None, marks))


def _without_key(message: str, key: str) -> str:
    """The reason alone: reports and progress name the document already."""
    prefix = f"{key}: "
    return message[len(prefix) :] if message.startswith(prefix) else message
