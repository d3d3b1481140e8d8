"""One Milvus collection through one ``AsyncMilvusClient``: the I/O under every store.

Concurrent writes are merged into one request (flushed at ``max_batch_bytes`` or after
``max_delay`` seconds); concurrent searches with the same parameters into one request
with many queries, dense vectors or full-text questions. Each caller gets its own result or its
own error. Transient failures are retried (:mod:`.retry`), and Session reads stay
Session after deletes (:mod:`.consistency`). The client is bound to the event loop
that first uses it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..batching import Batcher
from ..errors import ConfigError, StoreError
from ..settings import MAX_HITS
from . import _wire, lite
from .consistency import SessionReads
from .retry import RetryPolicy, invalid_filter, not_loaded, reason, transient
from .values import quote

MAX_TOP_K = MAX_HITS  # Milvus's limit on hits per query (and on nq)
_READ_RETRY_S = 10.0  # a reader is waiting: give up sooner than a writer
# gRPC backs off reconnecting to a lost server up to 120 s, so after a Milvus restart
# a client would sit idle for up to two minutes after the server is back. Retrying is
# ragtide's job (:mod:`.retry`): the channel only needs to try again soon.
_CHANNEL = {"grpc.initial_reconnect_backoff_ms": 250, "grpc.max_reconnect_backoff_ms": 2000}


@dataclass(frozen=True)
class _SearchKey:
    kind: str
    limit: int
    filter: str
    consistency: str
    output_fields: tuple[str, ...]
    params: str  # everything else, as JSON, so the key is hashable


def check_top_k(top_k: int) -> int:
    if top_k < 1:
        raise ConfigError(f"top_k: must be at least 1, got {top_k}")
    if top_k > MAX_TOP_K:
        raise ConfigError(f"top_k: at most {MAX_TOP_K:,} (Milvus's limit on hits per search), got {top_k:,}")
    return top_k


class MilvusCollection:
    """Coalescing, retrying I/O on one collection (see the module's docstring)."""

    def __init__(
        self,
        uri: str,
        name: str,
        *,
        token: str = "",
        consistency: str = "Session",
        timeout: float = 60.0,
        connect_timeout: float = 15.0,
        retry_s: float = 60.0,
        max_batch_bytes: int = 2 << 20,
        max_delay: float = 0.003,
        write: str = "upsert",
    ) -> None:
        if write not in ("upsert", "insert"):
            raise ConfigError(f"write: {write!r} is not 'upsert' or 'insert'")
        self.uri = uri
        self.name = name
        self.lite = lite.is_lite(uri)
        self.session = SessionReads(consistency)
        self._write = write
        self._token = token
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._retry = RetryPolicy(retry_s)
        self._read_retry = RetryPolicy(min(retry_s, _READ_RETRY_S))
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
        self._searchers: dict[_SearchKey, Batcher[Any, list[dict[str, Any]]]] = {}

    @property
    def consistency(self) -> str:
        return self.session.default

    async def client(self):
        if self._client is not None:
            return self._client
        AsyncMilvusClient = lite.import_pymilvus(self.lite).AsyncMilvusClient
        if self.lite:
            Path(self.uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            lite.start(self.uri)
        try:
            client = AsyncMilvusClient(uri=self.uri, token=self._token, timeout=self._connect_timeout, **self._channel())
            await asyncio.wait_for(client.list_collections(timeout=self._connect_timeout), self._connect_timeout)
        except asyncio.TimeoutError:
            self._release_lite()
            raise StoreError(
                f"cannot reach Milvus at {self.uri} (no answer in {self._connect_timeout:.0f} s); "
                "is the server running and the URI right?"
            ) from None
        except Exception as e:
            if self.lite:
                lite.check_not_busy(self.uri)  # another process won the race to open it
            self._release_lite()
            raise StoreError(f"cannot open Milvus at {self.uri}: {reason(e)}") from None
        self._client = client
        return client

    def _channel(self) -> dict[str, Any]:
        return {} if self.lite else {"grpc_options": _CHANNEL}

    def _release_lite(self) -> None:
        if self.lite:
            lite.release(self.uri)

    async def call(self, method: str, *args, **kwargs):
        """Call ``AsyncMilvusClient.<method>``, retrying transient failures with bounded, jittered backoff."""
        client = await self.client()
        return await self._retrying(method, lambda: getattr(client, method)(*args, **kwargs))

    async def _retrying(self, label: str, fn, policy: RetryPolicy | None = None):
        policy = policy or self._retry

        async def attempt():
            try:
                return await fn()
            except Exception as e:
                if not not_loaded(e) or label == "load_collection":
                    raise
            # A restarted server reloads its collections by itself, but a reader may come first
            # (for up to a minute after a restart here), and a released collection waits to be
            # asked: ask, wait until it is loaded, and try again.
            client = await self.client()
            await client.load_collection(self.name, timeout=self._timeout)
            return await fn()

        try:
            return await policy.run(attempt)
        except Exception as e:
            raise self._failed(label, e, policy) from e

    def _failed(self, method: str, error: Exception, policy: RetryPolicy) -> StoreError | ConfigError:
        if invalid_filter(error):  # the caller's input, not Milvus, is at fault
            return ConfigError(f"filter: Milvus cannot use it: {reason(error)}")
        waited = f" (retried for {policy.retry_s:g} s)" if transient(error) and policy.retry_s > 0 else ""
        full = lite.free_space(self.uri) if self.lite else ""  # Lite fails or hangs on a full disk
        return StoreError(f"Milvus {method} on {self.name!r} at {self.uri} failed: {reason(error)}{waited}{full}")

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
            MilvusClient = lite.import_pymilvus(self.lite).MilvusClient
            try:
                self._sync_client = MilvusClient(uri=self.uri, token=self._token, timeout=self._connect_timeout,
                                                 **self._channel())
            except Exception as e:
                raise StoreError(f"cannot open Milvus at {self.uri}: {reason(e)}") from None
        return self._sync_client

    def _retrying_blocking(self, label: str, fn, policy: RetryPolicy | None = None):
        policy = policy or self._retry
        try:
            return policy.run_blocking(fn)
        except Exception as e:
            raise self._failed(label, e, policy) from e

    def write_now(self, entities: Sequence[dict[str, Any]]) -> bool:
        """Write from a blocking caller's thread if the write can skip the queue; else return False."""
        if self.lite or self._writer.busy or not self._blocking.acquire(blocking=False):
            return False
        try:
            seq = self.session.begin_write()
            rows = list(entities)
            self._retrying_blocking(self._write, lambda: self._send_rows_blocking(rows))
            self.session.wrote(seq)
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
            client = self._blocking_client()
            kwargs = self._search_kwargs(key, params)
            data = [_as_vector(vector)]
            return self._retrying_blocking("search", lambda: client.search(self.name, data=data, **kwargs), self._read_retry)[0]
        finally:
            self._blocking.release()

    async def exists(self) -> bool:
        return bool(await self.call("has_collection", self.name))

    async def close(self) -> None:
        await self._writer.drain()
        for batcher in self._searchers.values():
            await batcher.drain()
        client = None
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
        if self._sync_client is not None:
            sync_client, self._sync_client = self._sync_client, None
            sync_client.close()
        if client is not None:
            self._release_lite()  # so another process can open the file once this one is done with it

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
        seq = self.session.begin_write()
        rows = [e for e, _ in entries]
        await self._retrying(self._write, lambda: self._send_rows(rows))
        self.session.wrote(seq)
        return [None] * len(entries)

    # Rows go out as a request built by _wire when the collection's schema is a plain
    # one, through the stub of pymilvus's own connection and with pymilvus's own
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
        if transient(error):
            return True
        # pymilvus's internals moved (a newer release): its public path from now on.
        self._fields = False if isinstance(error, AttributeError) else None
        return False

    async def delete(self, expr: str) -> None:
        await self._writer.drain()  # deletes must not overtake writes queued before them
        await self.call("delete", self.name, filter=expr, timeout=self._timeout)
        self.session.deleted()

    # -- reads ---------------------------------------------------------------------

    def read_kwargs(self, consistency: str | None) -> dict[str, Any]:
        return self.session.kwargs(consistency, self._timeout)

    async def search(
        self,
        data: np.ndarray | str,
        limit: int,
        *,
        filter: str = "",
        output_fields: Sequence[str] = (),
        consistency: str | None = None,
        anns_field: str = "",
        search_params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The ``limit`` nearest entities to ``data`` (a vector, or text for a full-text
        field); concurrent calls share one request."""
        return await self.search_soon(data, limit, filter=filter, output_fields=output_fields, consistency=consistency,
                                      anns_field=anns_field, search_params=search_params)

    def search_soon(self, data: np.ndarray | str, limit: int, **options: Any) -> asyncio.Future:
        """:meth:`search` as a future, without a coroutine per call; call it on the store's loop."""
        key, params = self._search_key(limit, **options)
        item = data if isinstance(data, str) else _as_vector(data)
        return self._searcher(key, params, self._search_many).enqueue(item)

    def _searcher(self, key: _SearchKey, params: dict[str, Any], run) -> Batcher:
        batcher = self._searchers.get(key)
        if batcher is None:
            if len(self._searchers) > 256:  # bound the cache under many distinct filters
                self._searchers = {k: b for k, b in self._searchers.items() if b.busy}
            batcher = self._searchers[key] = Batcher(
                lambda items, key=key, params=params: run(items, key, params),
                max_items=max(1, min(1024, MAX_TOP_K // key.limit)),
                max_bytes=4 << 20,
                max_delay=self._max_delay,
                max_in_flight=4,
                size=_query_bytes,
            )
        return batcher

    def _search_key(
        self,
        limit: int,
        filter: str = "",
        output_fields: Sequence[str] = (),
        consistency: str | None = None,
        anns_field: str = "",
        search_params: dict[str, Any] | None = None,
    ) -> tuple[_SearchKey, dict[str, Any]]:
        check_top_k(limit)
        params = search_params if search_params is not None else self.search_params(limit)
        extra = {"anns_field": anns_field, "search_params": params}
        key = _SearchKey("search", limit, filter, self.session.level(consistency), tuple(output_fields),
                         json.dumps(extra, sort_keys=True))
        return key, extra

    def _search_kwargs(self, key: _SearchKey, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "filter": key.filter,
            "limit": key.limit,
            "output_fields": list(key.output_fields),
            "search_params": params["search_params"],
            "anns_field": params["anns_field"] or None,
            "consistency_level": key.consistency,
            "timeout": self._timeout,
        }

    async def _search_many(self, items: list[Any], key: _SearchKey, params: dict[str, Any]):
        # Callers asking the same thing at once (a dashboard refreshing, a benchmark repeating
        # one query) cost Milvus one query, not one each.
        distinct, slots = _distinct(items)
        client = await self.client()
        kwargs = self._search_kwargs(key, params)
        results = await self._retrying("search", lambda: client.search(self.name, data=distinct, **kwargs), self._read_retry)
        return [list(results[slot]) for slot in slots]

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
            page_expr = " and ".join([*([f"({expr})"] if expr else []), *([f"{id_field} > {quote(last)}"] if last else [])])
            rows = await self.call(
                "query", self.name, filter=page_expr, output_fields=[id_field, *fields], limit=MAX_TOP_K, **self.read_kwargs(None)
            )
            out.extend(rows)
            if len(rows) < MAX_TOP_K:
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


def _query_bytes(item: Any) -> int:
    if isinstance(item, tuple):
        return sum(_query_bytes(part) for part in item)
    return len(item) if isinstance(item, str) else item.nbytes


def _distinct(items: list[Any]) -> tuple[list[Any], list[int]]:
    """The distinct queries among ``items``, and where each item's answer is among them."""
    seen: dict[Any, int] = {}
    distinct: list[Any] = []
    slots = []
    for item in items:
        fingerprint = item if isinstance(item, str) else item.tobytes()
        slot = seen.get(fingerprint)
        if slot is None:
            slot = seen[fingerprint] = len(distinct)
            distinct.append(item)
        slots.append(slot)
    return distinct, slots


def _as_vector(vector: Any) -> np.ndarray:
    return np.asarray(vector, dtype=np.float32).reshape(-1)
