"""The vector store: a :class:`Store` protocol and its Milvus implementation.

:class:`MilvusStore` talks to Milvus Lite, a Milvus server or Zilliz Cloud through one
pymilvus ``AsyncMilvusClient``. Concurrent small writes are merged into one upsert and
concurrent searches with the same parameters into one multi-vector search (see
:mod:`ragtide.batching`); searches never ship vectors back.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

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
            "source": c.source,
            "page": -1 if c.page is None else c.page,
            "chunk_index": c.index,
            "start": c.start,
            "end": c.end,
            "text": _clip_utf8(c.text, _MAX_TEXT),
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
    async def collections(self) -> list[str]: ...
    async def close(self) -> None: ...


def quote(value: str) -> str:
    """A string literal for a Milvus boolean expression."""
    return json.dumps(value, ensure_ascii=False)


def _clip_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def is_lite(uri: str) -> bool:
    return uri.endswith(".db")


@dataclass
class _SearchKey:
    top_k: int
    filter: str
    consistency: str
    output_fields: tuple[str, ...]

    def __hash__(self) -> int:
        return hash((self.top_k, self.filter, self.consistency, self.output_fields))


class MilvusStore:
    """A ragtide collection in Milvus.

    ``uri`` is a Milvus Lite file (``./ragtide.db``), a server (``http://host:19530``)
    or a Zilliz Cloud endpoint with ``token``. One client per store, reused; the
    client is bound to the event loop that first uses the store.
    """

    def __init__(
        self,
        uri: str = "./ragtide.db",
        collection: str = "ragtide",
        *,
        token: str = "",
        consistency: str = "Session",
        timeout: float = 60.0,
        connect_timeout: float = 15.0,
        max_batch_bytes: int = 2 << 20,
        max_delay: float = 0.003,
    ) -> None:
        if consistency not in CONSISTENCY_LEVELS:
            raise ConfigError(f"consistency: {consistency!r} is not one of {', '.join(CONSISTENCY_LEVELS)}")
        self.uri = uri
        self.collection = collection
        self.consistency = consistency
        self._token = token
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._lite = is_lite(uri)
        self._client = None
        self._opened: CollectionInfo | None = None
        self._open_lock: asyncio.Lock | None = None
        # Milvus Lite applies writes one at a time; queueing them here keeps
        # concurrent ingests from tripping over each other.
        self._writer = Batcher(
            self._upsert_many,
            max_items=4096,
            max_bytes=max_batch_bytes,
            max_delay=max_delay,
            max_in_flight=1 if self._lite else 3,
            size=lambda row: row.nbytes,
        )
        self._max_delay = max_delay
        self._searchers: dict[_SearchKey, Batcher[np.ndarray, list[Source]]] = {}
        # Milvus 2.3 answers deletes with timestamp 0, which pymilvus then uses as the
        # session's "last write": Session reads would silently become Eventually. After
        # a delete we read Strong until a later write restores a real timestamp.
        self._op_seq = 0
        self._strong_after: int | None = None

    # -- connection and collection -------------------------------------------------

    async def _connect(self):
        if self._client is not None:
            return self._client
        import warnings

        # milvus-lite 2.5 imports pkg_resources, whose deprecation notice means nothing to a user.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pymilvus import AsyncMilvusClient
            if self._lite:
                import milvus_lite  # noqa: F401

        if self._lite:
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

    async def collections(self) -> list[str]:
        client = await self._connect()
        return sorted(await self._call(client.list_collections))

    async def info(self) -> CollectionInfo | None:
        """The collection's model, dimension and counts; None if it does not exist."""
        client = await self._connect()
        if not await self._call(client.has_collection, self.collection):
            return None
        model, dim = await self._describe(client)
        states = await self.documents()
        rows = await self._call(
            client.query, self.collection, filter="", output_fields=["count(*)"], **self._read_kwargs(None)
        )
        return CollectionInfo(self.collection, model, dim, int(rows[0]["count(*)"]), len(states))

    async def _describe(self, client) -> tuple[str, int]:
        desc = await self._call(client.describe_collection, self.collection)
        try:
            meta = json.loads(desc.get("description") or "")
            return str(meta["model"]), int(meta["dim"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"collection {self.collection!r} at {self.uri} was not created by ragtide; choose another --collection"
            ) from None

    async def open(self, model: str, dim: int, *, create: bool = True) -> CollectionInfo:
        """Create the collection for ``model`` or check that it was built with it."""
        if self._opened is not None:
            self._check_model(self._opened, model, dim)
            return self._opened
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
        client = await self._connect()
        if await self._call(client.has_collection, self.collection):
            found = CollectionInfo(self.collection, *await self._describe(client))
            self._check_model(found, model, dim)
            if not self._lite:
                await self._call(client.load_collection, self.collection)
            return found
        if not create:
            raise StoreError(f"collection {self.collection!r} does not exist at {self.uri}; ingest documents first")
        await self._create(client, model, dim)
        return CollectionInfo(self.collection, model, dim)

    async def _create(self, client, model: str, dim: int) -> None:
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
        index.add_index("vector", metric_type="COSINE", **self._index())
        try:
            await self._call(
                client.create_collection, self.collection, schema=schema, index_params=index, consistency_level="Session"
            )
        except Exception as e:
            if await self._call(client.has_collection, self.collection):  # another process won the race
                return
            raise StoreError(f"cannot create collection {self.collection!r} at {self.uri}: {_reason(e)}") from None

    def _index(self) -> dict[str, Any]:
        if self._lite:
            return {"index_type": "FLAT"}  # Milvus Lite searches exactly; it has no graph index
        if "zilliz" in self.uri:
            return {"index_type": "AUTOINDEX"}
        return {"index_type": "HNSW", "params": {"M": 16, "efConstruction": 200}}

    def _search_params(self, top_k: int) -> dict[str, Any]:
        if self._lite or "zilliz" in self.uri:
            return {}
        return {"params": {"ef": max(64, top_k)}}

    async def close(self) -> None:
        await self._writer.drain()
        for batcher in self._searchers.values():
            await batcher.drain()
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    # -- writes --------------------------------------------------------------------

    async def write(self, rows: Sequence[Row]) -> None:
        """Upsert rows; concurrent writes share requests. Returns once Milvus acknowledged."""
        if not rows:
            return
        await asyncio.gather(*(self._writer.submit(row) for row in rows))

    async def _upsert_many(self, rows: list[Row]) -> list[None]:
        client = await self._connect()
        seq = self._next_seq()
        entities = [row.to_entity() for row in rows]
        # Upsert, not insert: chunk ids are content hashes, and a retried or repeated
        # write must not leave duplicate rows.
        await self._call(client.upsert, self.collection, entities, timeout=self._timeout)
        if self._strong_after is not None and seq > self._strong_after:
            self._strong_after = None
        return [None] * len(rows)

    def _next_seq(self) -> int:
        self._op_seq += 1
        return self._op_seq

    async def delete_stale(self, doc_id: str, doc_hash: str) -> None:
        """Remove the rows of ``doc_id`` that belong to any other version than ``doc_hash``."""
        await self._delete(f"doc_id == {quote(doc_id)} and doc_hash != {quote(doc_hash)}")

    async def delete_docs(self, doc_ids: Sequence[str]) -> int:
        """Remove every row of these documents. Returns how many documents had rows."""
        if not doc_ids:
            return 0
        present = await self.doc_states(doc_ids)
        for i in range(0, len(doc_ids), 500):
            part = doc_ids[i : i + 500]
            await self._delete(f"doc_id in [{', '.join(quote(d) for d in part)}]")
        return len(present)

    async def _delete(self, expr: str) -> None:
        client = await self._connect()
        await self._writer.drain()  # deletes must not overtake writes queued before them
        await self._call(client.delete, self.collection, filter=expr, timeout=self._timeout)
        self._strong_after = self._next_seq()

    # -- reads ---------------------------------------------------------------------

    def _read_kwargs(self, consistency: str | None) -> dict[str, Any]:
        level = consistency or self.consistency
        if level not in CONSISTENCY_LEVELS:
            raise ConfigError(f"consistency: {level!r} is not one of {', '.join(CONSISTENCY_LEVELS)}")
        if level == "Session" and self._strong_after is not None:
            level = "Strong"
        return {"consistency_level": level, "timeout": self._timeout}

    async def search(
        self,
        vector: np.ndarray,
        top_k: int,
        *,
        filter: str = "",
        consistency: str | None = None,
    ) -> list[Source]:
        """The ``top_k`` nearest chunks to ``vector``; concurrent calls share one request."""
        if top_k < 1:
            raise ConfigError(f"top_k: must be at least 1, got {top_k}")
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if self._opened is not None and vector.shape[0] != self._opened.dim:
            raise ConfigError(f"query vector has {vector.shape[0]} dimensions, collection {self.collection!r} has {self._opened.dim}")
        level = self._read_kwargs(consistency)["consistency_level"]
        key = _SearchKey(top_k, filter, level, tuple(OUTPUT_FIELDS))
        batcher = self._searchers.get(key)
        if batcher is None:
            if len(self._searchers) > 256:  # bound the cache under many distinct filters
                self._searchers = {k: b for k, b in self._searchers.items() if b._tasks or b._pending}
            batcher = self._searchers[key] = Batcher(
                lambda vectors, key=key: self._search_many(vectors, key),
                max_items=max(1, min(1024, 16384 // top_k)),
                max_bytes=4 << 20,
                max_delay=self._max_delay,
                max_in_flight=4,
                size=lambda v: v.nbytes,
            )
        return await batcher.submit(vector)

    async def _search_many(self, vectors: list[np.ndarray], key: _SearchKey) -> list[list[Source]]:
        client = await self._connect()
        results = await self._call(
            client.search,
            self.collection,
            data=vectors,
            filter=key.filter,
            limit=key.top_k,
            output_fields=list(key.output_fields),
            search_params=self._search_params(key.top_k),
            consistency_level=key.consistency,
            timeout=self._timeout,
        )
        return [[_to_source(hit) for hit in hits] for hits in results]

    async def doc_states(self, doc_ids: Sequence[str]) -> dict[str, DocState]:
        """For each document present, the version it holds and whether all its chunks are there."""
        client = await self._connect()
        counts: dict[tuple[str, str], list[int]] = {}
        for i in range(0, len(doc_ids), 200):
            part = doc_ids[i : i + 200]
            rows = await self._query_all(
                client, f"doc_id in [{', '.join(quote(d) for d in part)}]", ["doc_id", "doc_hash", "n_chunks"]
            )
            for row in rows:
                entry = counts.setdefault((row["doc_id"], row["doc_hash"]), [0, int(row["n_chunks"])])
                entry[0] += 1
        states: dict[str, DocState] = {}
        for (doc_id, doc_hash), (n, expected) in counts.items():
            state = DocState(doc_hash, n, expected)
            old = states.get(doc_id)
            # Several versions mean an interrupted update: report it as incomplete.
            states[doc_id] = state if old is None else DocState(doc_hash, -1, expected)
        return states

    async def documents(self, filter: str = "") -> dict[str, str]:
        """doc_id -> source of every document in the collection (or matching ``filter``)."""
        client = await self._connect()
        expr = "chunk_index == 0" + (f" and ({filter})" if filter else "")
        rows = await self._query_all(client, expr, ["doc_id", "source"])
        return {row["doc_id"]: row["source"] for row in rows}

    async def _query_all(self, client, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        # Milvus caps offset + limit at 16384 per query; page by primary key instead.
        out: list[dict[str, Any]] = []
        last = ""
        while True:
            page_expr = f"({expr}) and id > {quote(last)}" if last else expr
            rows = await self._call(
                client.query, self.collection, filter=page_expr, output_fields=["id", *fields], limit=16384, **self._read_kwargs(None)
            )
            out.extend(rows)
            if len(rows) < 16384:
                return out
            last = max(row["id"] for row in rows)

    # -- errors --------------------------------------------------------------------

    async def _call(self, fn, *args, **kwargs):
        """Call pymilvus, retrying transient failures with bounded, jittered backoff."""
        attempts = 4
        for attempt in range(attempts):
            try:
                return await fn(*args, **kwargs)
            except (ConfigError, StoreError):
                raise
            except Exception as e:
                if attempt + 1 < attempts and _transient(e):
                    await asyncio.sleep(0.2 * 2**attempt * (1 + random.random()))
                    continue
                name = getattr(fn, "__name__", "request")
                raise StoreError(f"Milvus {name} on {self.collection!r} at {self.uri} failed: {_reason(e)}") from e


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


def _transient(error: Exception) -> bool:
    text = f"{type(error).__name__} {error}".upper()
    return any(word in text for word in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "RATE LIMIT", "CONNECTION RESET"))


def _reason(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())[:500]
