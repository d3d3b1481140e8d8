"""A private event loop on a background thread: the one mechanism behind every sync twin.

All of an engine's I/O (gRPC channels, batchers, the LLM client) lives on this loop.
Async methods hop onto it from whatever loop the caller runs; sync methods block on
it. Neither needs the caller's loop to be idle, so both work inside Jupyter or a
FastAPI handler without ``nest_asyncio``, and ``asyncio.run`` may be called anew
each time (as LlamaIndex does) without orphaning connections.
"""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Awaitable, Coroutine, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class LoopThread:
    def __init__(self, name: str = "ragtide") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{name}-loop", daemon=True)
        self._thread.start()

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def run(self, coro: Coroutine[object, object, T]) -> T:
        """Run ``coro`` on the private loop and block until it finishes."""
        if self._on_loop():
            coro.close()
            raise RuntimeError("a sync ragtide method was called from ragtide's own loop; await the async one")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def arun(self, coro: Coroutine[object, object, T]) -> T:
        """Await ``coro`` on the private loop from any loop; cancelling the caller cancels it."""
        if self._on_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def aiter(self, agen: AsyncIterator[T]) -> AsyncIterator[T]:
        """Consume an async iterator that lives on the private loop from the caller's loop."""
        if self._on_loop():
            async for item in agen:
                yield item
            return
        while True:
            item = await self.arun(_next(agen))
            if item is _DONE:
                return
            yield item  # type: ignore[misc]

    def iter(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Consume an async iterator that lives on the private loop, blocking."""
        while True:
            item = self.run(_next(agen))
            if item is _DONE:
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def _next(agen: AsyncIterator[T]) -> object:
    try:
        return await agen.__anext__()
    except StopAsyncIteration:
        return _DONE


