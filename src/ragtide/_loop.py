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
from typing import AsyncIterator, Coroutine, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


class _Call:
    """One coroutine handed from a caller's loop to the private loop."""

    __slots__ = ("coro", "caller", "done", "task", "cancelled")

    def __init__(self, coro: Coroutine, caller: asyncio.AbstractEventLoop, done: asyncio.Future) -> None:
        self.coro, self.caller, self.done = coro, caller, done
        self.task: asyncio.Task | None = None
        self.cancelled = False


class LoopThread:
    def __init__(self, name: str = "ragtide") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{name}-loop", daemon=True)
        self._thread.start()
        # Calls made in one tick of a caller's loop cross to the private loop together:
        # one wake-up for a thousand gathered calls instead of a thousand.
        self._inbox: list[_Call] = []
        self._inbox_lock = threading.Lock()

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
        caller = asyncio.get_running_loop()
        call = _Call(coro, caller, caller.create_future())
        with self._inbox_lock:
            self._inbox.append(call)
            wake = len(self._inbox) == 1
        if wake:
            self._loop.call_soon_threadsafe(self._start_calls)
        try:
            return await call.done
        except asyncio.CancelledError:
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(_cancel, call)
            raise

    def _start_calls(self) -> None:
        with self._inbox_lock:
            calls, self._inbox = self._inbox, []
        for call in calls:
            if call.cancelled:
                call.coro.close()
                continue
            call.task = self._loop.create_task(call.coro)
            call.task.add_done_callback(lambda task, call=call: _reply(call))

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


def _cancel(call: _Call) -> None:
    call.cancelled = True
    if call.task is not None:
        call.task.cancel()


def _reply(call: _Call) -> None:
    if not call.task.cancelled():
        call.task.exception()  # retrieved here, so a caller that left does not leave it "never retrieved"
    try:
        call.caller.call_soon_threadsafe(_settle, call.done, call.task)
    except RuntimeError:  # the caller's loop has closed: nobody is waiting
        pass


def _settle(done: asyncio.Future, task: asyncio.Task) -> None:
    if done.done():
        return
    if task.cancelled():
        done.cancel()
    elif task.exception() is not None:
        done.set_exception(task.exception())
    else:
        done.set_result(task.result())


async def _next(agen: AsyncIterator[T]) -> object:
    try:
        return await agen.__anext__()
    except StopAsyncIteration:
        return _DONE


