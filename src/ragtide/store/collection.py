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
import threading
from collections.abc import Sequence
from typing import Any

from ..batching import Batcher
from ..errors import ConfigError, StoreError
from ..vocabulary import MAX_HITS, check_hits
from . import _wire
from .blocking import ready, run_blocking, sleep_blocking
from .connection import Connection
from .consistency import SessionReads
from .deployment import deployment
from .retry import RetryPolicy, invalid_filter, not_loaded, reason, transient
from .search import SearchKey, as_query, distinct, query_bytes
from .values import quote

_READ_RETRY_S = 10.0  # a reader is waiting: give up sooner than a writer


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
        self.deployment = deployment(uri)
        self.session = SessionReads(consistency)
        self._write = write
        self._timeout = timeout
        self._retry = RetryPolicy(retry_s)
        self._read_retry = RetryPolicy(min(retry_s, _READ_RETRY_S))
        self._max_delay = max_delay
        self._connection = Connection(uri, self.deployment, token=token, timeout=connect_timeout)
        self._blocking = threading.Lock()  # one blocking call at a time skips the queue
        self._rows = _wire.RowSender(name, write, timeout)
        # Queued here, so concurrent writers share requests and never trip over each other.
        self._writer: Batcher[tuple[dict[str, Any], int], None] = Batcher(
            self._write_many,
            max_items=4096,
            max_bytes=max_batch_bytes,
            max_delay=max_delay,
            max_in_flight=self.deployment.writes_in_flight,
            size=lambda entry: entry[1],
        )
        self._searchers: dict[SearchKey, Batcher[Any, list[dict[str, Any]]]] = {}

    async def client(self) -> Any:
        return await self._connection.client()

    async def call(self, method: str, *args, **kwargs):
        """Call ``AsyncMilvusClient.<method>``, retrying transient failures with bounded, jittered backoff."""
        return await self._retrying(method, lambda client: getattr(client, method)(*args, **kwargs))

    async def _retrying(self, label: str, fn: Any, policy: RetryPolicy | None = None, *, blocking: bool = False) -> Any:
        """``fn(client)``, retried under ``policy``. ``blocking``: on the caller's thread, through
        :func:`.blocking.run_blocking`, with the sync client."""
        policy = policy or self._retry

        async def attempt() -> Any:
            client = self._connection.blocking_client() if blocking else await self.client()
            try:
                return await ready(fn(client))
            except Exception as e:
                if not blocking and transient(e) and await self._connection.revive():
                    raise  # the policy tries again, on the new connection
                if blocking or not not_loaded(e) or label == "load_collection":
                    raise
            # A restarted server reloads its collections by itself, but a reader may come first
            # (for up to a minute after a restart here), and a released collection waits to be
            # asked: ask, wait until it is loaded, and try again.
            await client.load_collection(self.name, timeout=self._timeout)
            return await ready(fn(client))

        # Connecting fails on its own terms (and is not retried): the URI may be wrong.
        self._connection.blocking_client() if blocking else await self.client()
        try:
            return await policy.run(attempt, sleep=sleep_blocking if blocking else asyncio.sleep)
        except Exception as e:
            raise _failure(f"{label} on {self.name!r} at {self.uri}", e, policy, self.deployment.disk_note()) from e

    # -- blocking fast path ----------------------------------------------------------
    # A sync caller's one-at-a-time request gains nothing from the batchers, yet pays two
    # thread hops and grpc.aio's overhead (~0.4 ms a call). When nothing else is under
    # way it goes straight to Milvus on the caller's thread through a sync client, which
    # shares pymilvus's session timestamps with the async one. Concurrent callers, and
    # every call on Milvus Lite (whose writes must stay serialised), take the batchers.
    # The blocking calls run the same code as the async ones (:mod:`.blocking`).

    def connect_blocking(self) -> None:
        """Connect the sync client now rather than on the first blocking call."""
        if self.deployment.fast_path:
            self._connection.blocking_client()

    def write_now(self, entities: Sequence[dict[str, Any]]) -> bool:
        """Write from a blocking caller's thread if the write can skip the queue; else return False."""
        if not self.deployment.fast_path or self._writer.busy or not self._blocking.acquire(blocking=False):
            return False
        try:
            seq = self.session.begin_write()
            rows = list(entities)
            run_blocking(self._retrying(self._write, lambda client: self._rows.send(client, rows), blocking=True))
            self.session.wrote(seq)
        finally:
            self._blocking.release()
        return True

    def search_now(self, vector: Any, limit: int, **options: Any) -> list[dict[str, Any]] | None:
        """:meth:`search` from a blocking caller's thread, or None if it should queue with the others."""
        key = self._search_key(limit, **options)
        batcher = self._searchers.get(key)
        if (
            not self.deployment.fast_path
            or (batcher is not None and batcher.busy)
            or not self._blocking.acquire(blocking=False)
        ):
            return None
        try:
            kwargs = key.kwargs(self._timeout)
            data = [as_query(vector)]
            search = self._retrying(
                "search", lambda client: client.search(self.name, data=data, **kwargs), self._read_retry, blocking=True
            )
            return run_blocking(search)[0]
        finally:
            self._blocking.release()

    async def exists(self) -> bool:
        return bool(await self.call("has_collection", self.name))

    async def close(self) -> None:
        await self._writer.drain()
        for batcher in self._searchers.values():
            await batcher.drain()
        await self._connection.close()

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
        await self._retrying(self._write, lambda client: self._rows.send(client, rows))
        self.session.wrote(seq)
        return [None] * len(entries)

    async def prepare_writes(self) -> None:
        """Learn the collection's schema now rather than on the first write."""
        self._rows.learn(await self.call("describe_collection", self.name, timeout=self._timeout))

    async def delete(self, expr: str) -> None:
        await self._writer.drain()  # deletes must not overtake writes queued before them
        await self.call("delete", self.name, filter=expr, timeout=self._timeout)
        self.session.deleted()

    # -- reads ---------------------------------------------------------------------

    def read_kwargs(self, consistency: str | None) -> dict[str, Any]:
        return self.session.kwargs(consistency, self._timeout)

    async def search(
        self,
        data: Any,
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
        return await self.search_soon(
            data,
            limit,
            filter=filter,
            output_fields=output_fields,
            consistency=consistency,
            anns_field=anns_field,
            search_params=search_params,
        )

    def search_soon(self, data: Any, limit: int, **options: Any) -> asyncio.Future[list[dict[str, Any]]]:
        """:meth:`search` as a future, without a coroutine per call; call it on the store's loop."""
        return self._searcher(self._search_key(limit, **options)).enqueue(as_query(data))

    def _search_key(
        self,
        limit: int,
        *,
        consistency: str | None = None,
        search_params: dict[str, Any] | None = None,
        **options: Any,
    ) -> SearchKey:
        check_hits("top_k", limit)
        params = search_params if search_params is not None else self.deployment.search_params(limit)
        return SearchKey.of(limit, self.session.level(consistency), params, **options)

    def _searcher(self, key: SearchKey) -> Batcher[Any, list[dict[str, Any]]]:
        batcher = self._searchers.get(key)
        if batcher is None:
            if len(self._searchers) > 256:  # bound the cache under many distinct filters
                self._searchers = {k: b for k, b in self._searchers.items() if b.busy}

            async def send(items: list[Any]) -> list[list[dict[str, Any]]]:
                unique, slots = distinct(items)
                kwargs = key.kwargs(self._timeout)
                results = await self._retrying(
                    "search", lambda client: client.search(self.name, data=unique, **kwargs), self._read_retry
                )
                return [list(results[slot]) for slot in slots]

            batcher = self._searchers[key] = Batcher(
                send,
                max_items=max(1, min(1024, MAX_HITS // key.limit)),
                max_bytes=4 << 20,
                max_delay=self._max_delay,
                max_in_flight=4,
                size=query_bytes,
            )
        return batcher

    async def query_all(self, expr: str, fields: Sequence[str], id_field: str = "id") -> list[dict[str, Any]]:
        """Every entity matching ``expr``. Milvus caps offset + limit at 16384; page by primary key."""
        out: list[dict[str, Any]] = []
        last = ""
        while True:
            page_expr = " and ".join(
                [*([f"({expr})"] if expr else []), *([f"{id_field} > {quote(last)}"] if last else [])]
            )
            rows = await self.call(
                "query",
                self.name,
                filter=page_expr,
                output_fields=[id_field, *fields],
                limit=MAX_HITS,
                **self.read_kwargs(None),
            )
            out.extend(rows)
            if len(rows) < MAX_HITS:
                return out
            last = max(row[id_field] for row in rows)

    async def count(self, filter: str = "") -> int:
        """How many rows match ``filter``, counted by Milvus (none are sent)."""
        rows = await self.call("query", self.name, filter=filter, output_fields=["count(*)"], **self.read_kwargs(None))
        return int(rows[0]["count(*)"])


def _entity_bytes(entity: dict[str, Any]) -> int:
    size = 64
    for value in entity.values():
        size += getattr(value, "nbytes", None) or (len(value) * 4 if isinstance(value, list) else len(str(value)))
    return size


def _failure(what: str, error: Exception, policy: RetryPolicy, disk: str) -> StoreError | ConfigError:
    """The error to raise for a failed call: the caller's filter at fault, or Milvus."""
    if invalid_filter(error):
        return ConfigError(f"filter: Milvus cannot use it: {reason(error)}")
    waited = f" (retried for {policy.retry_s:g} s)" if transient(error) and policy.retry_s > 0 else ""
    return StoreError(f"Milvus {what} failed: {reason(error)}{waited}{disk}")
