"""The vector store: a :class:`Store` protocol and its Milvus implementation.

:class:`MilvusStore` talks to Milvus Lite, a Milvus server or Zilliz Cloud through one
pymilvus ``AsyncMilvusClient``. Concurrent small writes are merged into one upsert and
concurrent searches with the same parameters into one multi-vector search (see
:mod:`ragtide.batching`); searches never ship vectors back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from . import _wire
from .batching import Batcher
from .documents import Chunk, Source
from .errors import ConfigError, StoreError
from .settings import CONSISTENCY_LEVELS

# Fields every search returns; the vector is deliberately not among them.
OUTPUT_FIELDS = ["doc_id", "source", "page", "chunk_index", "text", "metadata"]
_SCHEMA_VERSION = 1
_MAX_TEXT = 65535  # Milvus VARCHAR limit, in bytes


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection remembers about how it was built."""

    name: str
    model: str
    dim: int
    chunks: int = 0
    documents: int = 0


@dataclass(frozen=True)
class DocState:
    """What the store holds of one document: its content hash and how many chunks carry it."""

    doc_hash: str
    chunks: int  # rows carrying doc_hash
    expected: int  # how many chunks that version has

    @property
    def complete(self) -> bool:
        return self.chunks == self.expected


@dataclass
class Row:
    """A chunk with its vector, as written to Milvus."""

    chunk: Chunk
    vector: np.ndarray
    doc_hash: str
    n_chunks: int

    def to_entity(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "id": c.id,
            "doc_id": c.doc_id,
            "doc_hash": self.doc_hash,
            "n_chunks": self.n_chunks,
            "source": varchar(c.source),
            "page": -1 if c.page is None else c.page,
            "chunk_index": c.index,
            "start": c.start,
            "end": c.end,
            "text": varchar(_clip_utf8(c.text, _MAX_TEXT)),
            "metadata": c.metadata,
            "vector": self.vector,
        }

    @property
    def nbytes(self) -> int:
        return self.vector.nbytes + len(self.chunk.text) + 256


class Store(Protocol):
    """What the engine needs from a vector store."""

    async def open(self, model: str, dim: int, *, create: bool = True) -> CollectionInfo: ...
    async def write(self, rows: Sequence[Row]) -> None: ...
    async def search(
        self, vector: np.ndarray, top_k: int, *, filter: str = "", consistency: str | None = None
    ) -> list[Source]: ...
    async def doc_states(self, doc_ids: Sequence[str]) -> dict[str, DocState]: ...
    async def delete_stale(self, doc_id: str, doc_hash: str) -> None: ...
    async def delete_docs(self, doc_ids: Sequence[str]) -> int: ...
    async def documents(self, filter: str = "") -> dict[str, str]: ...
    async def info(self) -> CollectionInfo | None: ...
    async def stored_model(self) -> tuple[str, int] | None: ...
    async def collections(self) -> list[str]: ...
    async def close(self) -> None: ...


class varchar(str):
    """A long string on its way into a VARCHAR field.

    pymilvus (3.0.2, and 2.6) checks a row's VARCHAR value by iterating it as though it
    were a list of strings: an isinstance and a len call per character, ~35 us for a
    1,000-character chunk and over a third of the client's time per written row. This
    str iterates as its whole self, so the check still runs (on the whole string) once.
    """

    __slots__ = ()

    def __iter__(self):
        yield str(self)


def quote(value: str) -> str:
    """A string literal for a Milvus boolean expression."""
    return json.dumps(value, ensure_ascii=False)


def _clip_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def is_lite(uri: str) -> bool:
    return uri.endswith(".db")


@dataclass(frozen=True)
class _SearchKey:
    limit: int
    filter: str
    consistency: str
    output_fields: tuple[str, ...]
    anns_field: str
    params: str  # search params as JSON, so the key is hashable


class MilvusCollection:
    """One Milvus collection through one ``AsyncMilvusClient``: the I/O under every store.

    Concurrent writes are merged into one upsert (flushed at ``max_batch_bytes`` or after
    ``max_delay`` seconds); concurrent searches with the same parameters into one request
    with many query vectors. Transient gRPC failures are retried with bounded backoff,
    and Session reads stay Session even after deletes (see :meth:`read_kwargs`). The
    client is bound to the event loop that first uses it.
    """

    def __init__(
        self,
        uri: str,
        name: str,
        *,
        token: str = "",
        consistency: str = "Session",
        timeout: float = 60.0,
        connect_timeout: float = 15.0,
        max_batch_bytes: int = 2 << 20,
        max_delay: float = 0.003,
        write: str = "upsert",
    ) -> None:
        if consistency not in CONSISTENCY_LEVELS:
            raise ConfigError(f"consistency: {consistency!r} is not one of {', '.join(CONSISTENCY_LEVELS)}")
        if write not in ("upsert", "insert"):
            raise ConfigError(f"write: {write!r} is not 'upsert' or 'insert'")
        self.uri = uri
        self.name = name
        self._write = write
        self.consistency = consistency
        self.lite = is_lite(uri)
        self._token = token
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_delay = max_delay
        self._client = None
        self._sync_client = None
        self._blocking = threading.Lock()  # one blocking call at a time skips the queue
        self._fields: list[dict[str, Any]] | bool | None = None  # see _send_rows
        # Milvus Lite applies writes one at a time; queueing them here keeps
        # concurrent writers from tripping over each other.
        self._writer: Batcher[tuple[dict[str, Any], int], None] = Batcher(
            self._write_many,
            max_items=4096,
            max_bytes=max_batch_bytes,
            max_delay=max_delay,
            max_in_flight=1 if self.lite else 3,
            size=lambda entry: entry[1],
        )
        self._searchers: dict[_SearchKey, Batcher[np.ndarray, list[dict[str, Any]]]] = {}
        # Milvus 2.3 answers deletes with timestamp 0, which pymilvus then uses as the
        # session's "last write": Session reads would silently become Eventually. After
        # a delete we read Strong until a later write restores a real timestamp.
        self._op_seq = 0
        self._strong_after: int | None = None
        self._seq_lock = threading.Lock()

    async def client(self):
        if self._client is not None:
            return self._client
        AsyncMilvusClient = _import_pymilvus(self.lite).AsyncMilvusClient
        if self.lite:
            Path(self.uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        try:
            client = AsyncMilvusClient(uri=self.uri, token=self._token, timeout=self._connect_timeout)
            await asyncio.wait_for(client.list_collections(timeout=self._connect_timeout), self._connect_timeout)
        except asyncio.TimeoutError:
            raise StoreError(
                f"cannot reach Milvus at {self.uri} (no answer in {self._connect_timeout:.0f} s); "
                "is the server running and the URI right?"
            ) from None
        except Exception as e:
            raise StoreError(f"cannot open Milvus at {self.uri}: {_reason(e)}") from None
        self._client = client
        return client

    async def call(self, method: str, *args, **kwargs):
        """Call ``AsyncMilvusClient.<method>``, retrying transient failures with bounded, jittered backoff."""
        return await self._retrying(method, getattr(await self.client(), method), *args, **kwargs)

    async def _retrying(self, label: str, fn, *args, **kwargs):
        for attempt in itertools.count():
            try:
                return await fn(*args, **kwargs)
            except Exception as e:
                delay = _backoff(attempt, e)
                if delay is None:
                    raise self._failed(label, e) from e
                await asyncio.sleep(delay)

    def _failed(self, method: str, error: Exception) -> StoreError:
        return StoreError(f"Milvus {method} on {self.name!r} at {self.uri} failed: {_reason(error)}")

    # -- blocking fast path ----------------------------------------------------------
    # A sync caller's one-at-a-time request gains nothing from the batchers, yet pays two
    # thread hops and grpc.aio's overhead (~0.4 ms a call). When nothing else is under
    # way it goes straight to Milvus on the caller's thread through a sync client, which
    # shares pymilvus's session timestamps with the async one. Concurrent callers, and
    # every write on Milvus Lite (whose writes must stay serialised), take the batchers.

    def connect_blocking(self) -> None:
        """Connect the sync client now rather than on the first blocking call."""
        if not self.lite:
            self._blocking_client()

    def _blocking_client(self):
        if self._sync_client is None:
            MilvusClient = _import_pymilvus(self.lite).MilvusClient
            try:
                self._sync_client = MilvusClient(uri=self.uri, token=self._token, timeout=self._connect_timeout)
            except Exception as e:
                raise StoreError(f"cannot open Milvus at {self.uri}: {_reason(e)}") from None
        return self._sync_client

    def _call_blocking(self, method: str, *args, **kwargs):
        return self._retrying_blocking(method, getattr(self._blocking_client(), method), *args, **kwargs)

    def _retrying_blocking(self, label: str, fn, *args, **kwargs):
        for attempt in itertools.count():
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                delay = _backoff(attempt, e)
                if delay is None:
                    raise self._failed(label, e) from e
                time.sleep(delay)

    def write_now(self, entities: Sequence[dict[str, Any]]) -> bool:
        """Write from a blocking caller's thread if the write can skip the queue; else return False."""
        if self.lite or self._writer.busy or not self._blocking.acquire(blocking=False):
            return False
        try:
            seq = self._next_seq()
            self._retrying_blocking(self._write, self._send_rows_blocking, list(entities))
            self._wrote(seq)
        finally:
            self._blocking.release()
        return True

    def search_now(self, vector: np.ndarray, limit: int, **options: Any) -> list[dict[str, Any]] | None:
        """:meth:`search` from a blocking caller's thread, or None if it should queue with the others."""
        key, params = self._search_key(limit, **options)
        batcher = self._searchers.get(key)
        if self.lite or (batcher is not None and batcher.busy) or not self._blocking.acquire(blocking=False):
            return None
        try:
            return self._call_blocking("search", self.name, data=[_as_vector(vector)], **self._search_kwargs(key, params))[0]
        finally:
            self._blocking.release()

    async def exists(self) -> bool:
        return bool(await self.call("has_collection", self.name))

    async def close(self) -> None:
        await self._writer.drain()
        for batcher in self._searchers.values():
            await batcher.drain()
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
        if self._sync_client is not None:
            sync_client, self._sync_client = self._sync_client, None
            sync_client.close()

    # -- writes --------------------------------------------------------------------

    async def write(self, entities: Sequence[dict[str, Any]], sizes: Sequence[int] | None = None) -> None:
        """Write entities; concurrent calls share requests. Returns once Milvus acknowledged."""
        await self.write_soon(entities, sizes)

    def write_soon(self, entities: Sequence[dict[str, Any]], sizes: Sequence[int] | None = None) -> asyncio.Future:
        """:meth:`write` as a future, without a coroutine per call; call it on the store's loop."""
        sizes = sizes or [_entity_bytes(e) for e in entities]
        if len(entities) == 1:  # the common drop-in case
            return self._writer.enqueue((entities[0], sizes[0]))
        return asyncio.gather(*(self._writer.enqueue((e, n)) for e, n in zip(entities, sizes)))

    async def _write_many(self, entries: list[tuple[dict[str, Any], int]]) -> list[None]:
        seq = self._next_seq()
        await self._retrying(self._write, self._send_rows, [e for e, _ in entries])
        self._wrote(seq)
        return [None] * len(entries)

    # Rows go out as a request built by ragtide._wire when the collection's schema is a
    # plain one, through the stub of pymilvus's own connection and with pymilvus's own
    # bookkeeping (the session timestamp); otherwise, or when the rows do not fit, or
    # Milvus refuses the request, through pymilvus's public insert/upsert, whose checks
    # and messages then apply.

    async def prepare_writes(self) -> None:
        """Learn the collection's schema now rather than on the first write."""
        self._learn(await self.call("describe_collection", self.name, timeout=self._timeout))

    def _learn(self, description: dict[str, Any]) -> None:
        self._fields = _wire.plain_fields(description) or False

    async def _send_rows(self, rows: list[dict[str, Any]]) -> None:
        client = await self.client()
        if self._fields is None:
            self._learn(await client.describe_collection(self.name, timeout=self._timeout))
        request = self._encoded(rows)
        if request is not None:
            try:
                handler = await client._get_connection()
                response = await _wire.rpc(handler, self._write)(request, timeout=self._timeout)
            except Exception as e:
                if self._column_path_failed(e):
                    raise
            else:
                if self._accepted(response, handler):
                    return
        await getattr(client, self._write)(self.name, rows, timeout=self._timeout)

    def _send_rows_blocking(self, rows: list[dict[str, Any]]) -> None:
        client = self._blocking_client()
        if self._fields is None:
            self._learn(client.describe_collection(self.name, timeout=self._timeout))
        request = self._encoded(rows)
        if request is not None:
            try:
                handler = client._get_connection()
                response = _wire.rpc(handler, self._write)(request, timeout=self._timeout)
            except Exception as e:
                if self._column_path_failed(e):
                    raise
            else:
                if self._accepted(response, handler):
                    return
        getattr(client, self._write)(self.name, rows, timeout=self._timeout)

    def _encoded(self, rows: list[dict[str, Any]]):
        if not self._fields:  # None: not known yet; False: not a plain schema
            return None
        try:
            return _wire.encode(self._write, self.name, rows, self._fields)
        except _wire.Unsupported:
            self._fields = None  # look again next time: the collection may have changed
            return None

    def _accepted(self, response: Any, handler: Any) -> bool:
        if _wire.accepted(response):
            _wire.note_write(self.name, response, handler)
            return True
        self._fields = None  # refused (a stale schema?): pymilvus's way says why
        return False

    def _column_path_failed(self, error: Exception) -> bool:
        """Whether to raise ``error`` (to be retried) rather than send the rows pymilvus's way.

        Only errors before Milvus accepted the rows come here, so sending them again
        cannot write them twice.
        """
        if _transient(error):
            return True
        # pymilvus's internals moved (a newer release): its public path from now on.
        self._fields = False if isinstance(error, AttributeError) else None
        return False

    async def delete(self, expr: str) -> None:
        await self._writer.drain()  # deletes must not overtake writes queued before them
        await self.call("delete", self.name, filter=expr, timeout=self._timeout)
        self._strong_after = self._next_seq()

    def _next_seq(self) -> int:
        with self._seq_lock:  # the blocking fast path writes from callers' threads
            self._op_seq += 1
            return self._op_seq

    def _wrote(self, seq: int) -> None:
        with self._seq_lock:
            if self._strong_after is not None and seq > self._strong_after:
                self._strong_after = None

    # -- reads ---------------------------------------------------------------------

    def read_kwargs(self, consistency: str | None) -> dict[str, Any]:
        level = consistency or self.consistency
        if level not in CONSISTENCY_LEVELS:
            raise ConfigError(f"consistency: {level!r} is not one of {', '.join(CONSISTENCY_LEVELS)}")
        if level == "Session" and self._strong_after is not None:
            level = "Strong"
        return {"consistency_level": level, "timeout": self._timeout}

    async def search(
        self,
        vector: np.ndarray,
        limit: int,
        *,
        filter: str = "",
        output_fields: Sequence[str] = (),
        consistency: str | None = None,
        anns_field: str = "",
        search_params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The ``limit`` nearest entities to ``vector``; concurrent calls share one request."""
        return await self.search_soon(vector, limit, filter=filter, output_fields=output_fields, consistency=consistency,
                                      anns_field=anns_field, search_params=search_params)

    def search_soon(self, vector: np.ndarray, limit: int, **options: Any) -> asyncio.Future:
        """:meth:`search` as a future, without a coroutine per call; call it on the store's loop."""
        key, params = self._search_key(limit, **options)
        batcher = self._searchers.get(key)
        if batcher is None:
            if len(self._searchers) > 256:  # bound the cache under many distinct filters
                self._searchers = {k: b for k, b in self._searchers.items() if b.busy}
            batcher = self._searchers[key] = Batcher(
                lambda vectors, key=key, params=params: self._search_many(vectors, key, params),
                max_items=max(1, min(1024, 16384 // limit)),
                max_bytes=4 << 20,
                max_delay=self._max_delay,
                max_in_flight=4,
                size=lambda v: v.nbytes,
            )
        return batcher.enqueue(_as_vector(vector))

    def _search_key(
        self,
        limit: int,
        filter: str = "",
        output_fields: Sequence[str] = (),
        consistency: str | None = None,
        anns_field: str = "",
        search_params: dict[str, Any] | None = None,
    ) -> tuple[_SearchKey, dict[str, Any]]:
        if limit < 1:
            raise ConfigError(f"top_k: must be at least 1, got {limit}")
        level = self.read_kwargs(consistency)["consistency_level"]
        params = search_params if search_params is not None else self.search_params(limit)
        key = _SearchKey(limit, filter, level, tuple(output_fields), anns_field, json.dumps(params, sort_keys=True))
        return key, params

    def _search_kwargs(self, key: _SearchKey, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "filter": key.filter,
            "limit": key.limit,
            "output_fields": list(key.output_fields),
            "search_params": params,
            "anns_field": key.anns_field or None,
            "consistency_level": key.consistency,
            "timeout": self._timeout,
        }

    async def _search_many(self, vectors: list[np.ndarray], key: _SearchKey, params: dict[str, Any]):
        return await self.call("search", self.name, data=vectors, **self._search_kwargs(key, params))

    def index(self) -> dict[str, Any]:
        """The vector index suited to the backend."""
        if self.lite:
            return {"index_type": "FLAT"}  # Milvus Lite searches exactly; it has no graph index
        if "zilliz" in self.uri:
            return {"index_type": "AUTOINDEX"}
        return {"index_type": "HNSW", "params": {"M": 16, "efConstruction": 200}}

    def search_params(self, limit: int) -> dict[str, Any]:
        if self.lite or "zilliz" in self.uri:
            return {}
        return {"params": {"ef": max(64, limit)}}

    async def query_all(self, expr: str, fields: Sequence[str], id_field: str = "id") -> list[dict[str, Any]]:
        """Every entity matching ``expr``. Milvus caps offset + limit at 16384; page by primary key."""
        out: list[dict[str, Any]] = []
        last = ""
        while True:
            page_expr = f"({expr}) and {id_field} > {quote(last)}" if last else expr
            rows = await self.call(
                "query", self.name, filter=page_expr, output_fields=[id_field, *fields], limit=16384, **self.read_kwargs(None)
            )
            out.extend(rows)
            if len(rows) < 16384:
                return out
            last = max(row[id_field] for row in rows)

    async def count(self) -> int:
        rows = await self.call("query", self.name, filter="", output_fields=["count(*)"], **self.read_kwargs(None))
        return int(rows[0]["count(*)"])


def _entity_bytes(entity: dict[str, Any]) -> int:
    size = 64
    for value in entity.values():
        size += getattr(value, "nbytes", None) or (len(value) * 4 if isinstance(value, list) else len(str(value)))
    return size


class MilvusStore:
    """A ragtide collection in Milvus: chunks with their document's identity and version.

    ``uri`` is a Milvus Lite file (``./ragtide.db``), a server (``http://host:19530``)
    or a Zilliz Cloud endpoint with ``token``. One client per store, reused.
    """

    def __init__(self, uri: str = "./ragtide.db", collection: str = "ragtide", **options: Any) -> None:
        # Upsert, not insert: chunk ids are content hashes, and a retried or repeated
        # write must not leave duplicate rows.
        self._milvus = MilvusCollection(uri, collection, write="upsert", **options)
        self.uri = uri
        self.collection = collection
        self._opened: CollectionInfo | None = None
        self._open_lock: asyncio.Lock | None = None

    async def collections(self) -> list[str]:
        return sorted(await self._milvus.call("list_collections"))

    async def info(self) -> CollectionInfo | None:
        """The collection's model, dimension and counts; None if it does not exist."""
        if not await self._milvus.exists():
            return None
        model, dim = await self._describe()
        documents = await self.documents()
        return CollectionInfo(self.collection, model, dim, await self._milvus.count(), len(documents))

    async def stored_model(self) -> tuple[str, int] | None:
        """The (model, dimension) the collection was built with; None if it does not exist."""
        return await self._describe() if await self._milvus.exists() else None

    async def _describe(self) -> tuple[str, int]:
        desc = await self._milvus.call("describe_collection", self.collection)
        try:
            meta = json.loads(desc.get("description") or "")
            return str(meta["model"]), int(meta["dim"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"collection {self.collection!r} at {self.uri} was not created by ragtide; choose another --collection"
            ) from None

    async def open(self, model: str, dim: int, *, create: bool = True) -> CollectionInfo:
        """Create the collection for ``model`` or check that it was built with it."""
        if self._opened is None:
            if self._open_lock is None:
                self._open_lock = asyncio.Lock()
            async with self._open_lock:
                if self._opened is None:
                    self._opened = await self._open(model, dim, create)
        self._check_model(self._opened, model, dim)
        return self._opened

    def _check_model(self, info: CollectionInfo, model: str, dim: int) -> None:
        if info.model != model or info.dim != dim:
            raise ConfigError(
                f"collection {self.collection!r} holds {info.dim}-d vectors from embedding model {info.model!r}, "
                f"not {model!r} ({dim}-d); use that model, or another collection for this one"
            )

    async def _open(self, model: str, dim: int, create: bool) -> CollectionInfo:
        if await self._milvus.exists():
            found = CollectionInfo(self.collection, *await self._describe())
            self._check_model(found, model, dim)
            if not self._milvus.lite:
                await self._milvus.call("load_collection", self.collection)
            return found
        if not create:
            raise StoreError(f"collection {self.collection!r} does not exist at {self.uri}; ingest documents first")
        await self._create(model, dim)
        return CollectionInfo(self.collection, model, dim)

    async def _create(self, model: str, dim: int) -> None:
        from pymilvus import AsyncMilvusClient, DataType

        description = json.dumps({"ragtide": _SCHEMA_VERSION, "model": model, "dim": dim})
        schema = AsyncMilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=description)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
        schema.add_field("doc_hash", DataType.VARCHAR, max_length=64)
        schema.add_field("n_chunks", DataType.INT64)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("page", DataType.INT64)
        schema.add_field("chunk_index", DataType.INT64)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        index = AsyncMilvusClient.prepare_index_params()
        index.add_index("vector", metric_type="COSINE", **self._milvus.index())
        try:
            await self._milvus.call(
                "create_collection", self.collection, schema=schema, index_params=index, consistency_level="Session"
            )
        except StoreError:
            if await self._milvus.exists():  # another process won the race
                return
            raise

    async def close(self) -> None:
        await self._milvus.close()

    async def write(self, rows: Sequence[Row]) -> None:
        """Upsert rows; concurrent writes share requests. Returns once Milvus acknowledged."""
        await self._milvus.write([row.to_entity() for row in rows], [row.nbytes for row in rows])

    async def delete_stale(self, doc_id: str, doc_hash: str) -> None:
        """Remove the rows of ``doc_id`` that belong to any other version than ``doc_hash``."""
        await self._milvus.delete(f"doc_id == {quote(doc_id)} and doc_hash != {quote(doc_hash)}")

    async def delete_docs(self, doc_ids: Sequence[str]) -> int:
        """Remove every row of these documents. Returns how many documents had rows."""
        if not doc_ids:
            return 0
        present = await self.doc_states(doc_ids)
        for i in range(0, len(doc_ids), 500):
            await self._milvus.delete(f"doc_id in [{', '.join(quote(d) for d in doc_ids[i : i + 500])}]")
        return len(present)

    async def search(
        self, vector: np.ndarray, top_k: int, *, filter: str = "", consistency: str | None = None
    ) -> list[Source]:
        """The ``top_k`` nearest chunks to ``vector``; concurrent calls share one request."""
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self._opened is not None and vector.shape[0] != self._opened.dim:
            raise ConfigError(f"query vector has {vector.shape[0]} dimensions, collection {self.collection!r} has {self._opened.dim}")
        hits = await self._milvus.search(vector, top_k, filter=filter, output_fields=OUTPUT_FIELDS, consistency=consistency)
        return [_to_source(hit) for hit in hits]

    async def doc_states(self, doc_ids: Sequence[str]) -> dict[str, DocState]:
        """For each document present, the version it holds and whether all its chunks are there."""
        counts: dict[tuple[str, str], list[int]] = {}
        for i in range(0, len(doc_ids), 200):
            expr = f"doc_id in [{', '.join(quote(d) for d in doc_ids[i : i + 200])}]"
            for row in await self._milvus.query_all(expr, ["doc_id", "doc_hash", "n_chunks"]):
                entry = counts.setdefault((row["doc_id"], row["doc_hash"]), [0, int(row["n_chunks"])])
                entry[0] += 1
        states: dict[str, DocState] = {}
        for (doc_id, doc_hash), (n, expected) in counts.items():
            # Several versions mean an interrupted update: report it as incomplete.
            states[doc_id] = DocState(doc_hash, n, expected) if doc_id not in states else DocState(doc_hash, -1, expected)
        return states

    async def documents(self, filter: str = "") -> dict[str, str]:
        """doc_id -> source of every document in the collection (or matching ``filter``)."""
        expr = "chunk_index == 0" + (f" and ({filter})" if filter else "")
        return {row["doc_id"]: row["source"] for row in await self._milvus.query_all(expr, ["doc_id", "source"])}


def _to_source(hit: dict[str, Any]) -> Source:
    entity = hit.get("entity", hit)
    page = entity.get("page", -1)
    return Source(
        id=str(hit.get("id", entity.get("id"))),
        text=entity.get("text", ""),
        source=entity.get("source", ""),
        score=float(hit.get("distance", 0.0)),
        page=None if page is None or page < 0 else int(page),
        chunk_index=int(entity.get("chunk_index", 0)),
        metadata=entity.get("metadata") or {},
    )


def _import_pymilvus(lite: bool):
    import warnings

    # milvus-lite 2.5 imports pkg_resources, whose deprecation notice means nothing to a user.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pymilvus

        if lite:
            import milvus_lite  # noqa: F401
    return pymilvus


def _as_vector(vector: Any) -> np.ndarray:
    return np.asarray(vector, dtype=np.float32).reshape(-1)


def _backoff(attempt: int, error: Exception) -> float | None:
    """Seconds to wait before retrying a failed call, or None to give up."""
    if attempt < 3 and _transient(error):
        return 0.2 * 2**attempt * (1 + random.random())
    return None


def _transient(error: Exception) -> bool:
    text = f"{type(error).__name__} {error}".upper()
    return any(word in text for word in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "RATE LIMIT", "CONNECTION RESET"))


def _reason(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())[:500]
