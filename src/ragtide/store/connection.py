"""The clients of one collection's Milvus: made when first needed, made again when this
process's Milvus Lite had to be restarted, closed together."""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import StoreError
from .deployment import Server
from .retry import reason


class Connection:
    """An ``AsyncMilvusClient`` (and, for blocking callers, a ``MilvusClient``) to one deployment."""

    def __init__(self, uri: str, deployment: Server, *, token: str = "", timeout: float = 15.0) -> None:
        self.uri = uri
        self.deployment = deployment
        self._token = token
        self._timeout = timeout
        self._client: Any = None
        self._sync_client: Any = None
        self._epoch = 0  # the deployment's epoch the client was connected in
        self._reviving: asyncio.Lock | None = None

    async def client(self) -> Any:
        """The async client, connected (and the deployment started) on first use."""
        if self._client is None:
            self.deployment.start()
            await self._connect()
        return self._client

    def blocking_client(self) -> Any:
        """The sync client, for a blocking caller on its own thread."""
        if self._sync_client is None:
            MilvusClient = self.deployment.pymilvus().MilvusClient
            try:
                self._sync_client = MilvusClient(
                    uri=self.uri, token=self._token, timeout=self._timeout, **self.deployment.channel()
                )
            except Exception as e:
                raise StoreError(f"cannot open Milvus at {self.uri}: {reason(e)}") from None
        return self._sync_client

    async def _connect(self) -> None:
        where = self.deployment
        AsyncMilvusClient = where.pymilvus().AsyncMilvusClient
        self._epoch = where.epoch()
        try:
            client = AsyncMilvusClient(uri=self.uri, token=self._token, timeout=self._timeout, **where.channel())
            await asyncio.wait_for(client.list_collections(timeout=self._timeout), self._timeout)
        except TimeoutError:
            where.stop()
            raise StoreError(
                f"cannot reach Milvus at {self.uri} (no answer in {self._timeout:.0f} s); "
                "is the server running and the URI right?"
            ) from None
        except Exception as e:
            where.failed_to_start()
            raise StoreError(f"cannot open Milvus at {self.uri}: {reason(e)}") from None
        self._client = client

    async def revive(self) -> bool:
        """Whether this process's Milvus Lite had died and now runs again, reconnected.

        A Milvus Lite process can die under a request (a division by zero in an expression
        killed it with SIGFPE); nothing would start it again, and every later call would
        fail. A server is not this process's to restart: its errors are retried as they are.
        """
        where = self.deployment
        if not where.crashed() and where.epoch() == self._epoch:
            return False
        if self._reviving is None:
            self._reviving = asyncio.Lock()
        async with self._reviving:
            crashed = where.crashed()
            if crashed:
                try:
                    await asyncio.to_thread(where.restart)
                except StoreError as e:
                    raise StoreError(f"{crashed}, and starting it again failed: {e}") from None
            if where.epoch() != self._epoch:
                old, self._client = self._client, None
                if old is not None:
                    try:
                        await old.close()
                    except Exception:  # its process is gone: nothing to close cleanly
                        pass
                await self._connect()
        return True

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        if self._sync_client is not None:
            sync_client, self._sync_client = self._sync_client, None
            sync_client.close()
        if client is not None:
            self.deployment.stop()
