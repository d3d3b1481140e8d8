"""A private event loop on a background thread: the one mechanism behind every sync twin.

All of an engine's I/O (gRPC channels, batchers, the LLM client) lives on this loop.
Async methods hop onto it from whatever loop the caller runs; sync methods block on
it. Neither needs the caller's loop to be idle, so both work inside Jupyter or a
FastAPI handler without ``nest_asyncio``, and ``asyncio.run`` may be called anew
each time (as LlamaIndex does) without orphaning connections.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()
_WIND_DOWN_S = 10.0  # how long cancelled work may take to finish (one embedding batch, one RPC)


class _Call:
    """One piece of work handed from a caller's loop to the private loop.

    Either a coroutine, run as a task, or ``start(*args)``, a plain function that
    returns a future of the private loop (a batcher's slot): no task, no coroutine.
    """

    __slots__ = ("coro", "start", "args", "kwargs", "caller", "done", "future", "cancelled")

    def __init__(
        self,
        coro: Coroutine | None,
        start: Callable[..., asyncio.Future] | None,
        args: tuple,
        kwargs: dict,
        caller: asyncio.AbstractEventLoop,
    ) -> None:
        self.coro, self.start, self.args, self.kwargs = coro, start, args, kwargs
        self.caller, self.done = caller, caller.create_future()
        self.future: asyncio.Future[Any] | None = None
        self.cancelled = False


class LoopThread:
    def __init__(self, name: str = "ragtide") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{name}-loop", daemon=True)
        self._thread.start()
        # Calls made in one tick of a caller's loop cross to the private loop together,
        # and their answers cross back together: one wake-up each way for a thousand
        # gathered calls instead of a thousand.
        self._inbox: list[_Call] = []
        self._outboxes: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
        self._lock = threading.Lock()
        self._running: dict[asyncio.Future, _Call] = {}  # private loop only

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and block until it finishes.

        If the wait is interrupted (Ctrl-C), the work is cancelled and allowed to wind
        down before the interruption goes on, so nothing is left running half-done.
        """
        if self._on_loop():
            coro.close()
            raise RuntimeError("a sync ragtide method was called from ragtide's own loop; await the async one")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()  # cancels the task on the private loop
                concurrent.futures.wait([future], timeout=_WIND_DOWN_S)
            raise

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the private loop from any loop; cancelling the caller cancels it."""
        if self._on_loop():
            return await coro
        return await self._hand_over(_Call(coro, None, (), {}, asyncio.get_running_loop()))

    async def asubmit(self, start: Callable[..., asyncio.Future[T]], *args: object, **kwargs: object) -> T:
        """Await the future that ``start(*args, **kwargs)``, called on the private loop, returns.

        For work that is already a future there (a slot in a batch): cheaper than
        :meth:`arun` by a task and a coroutine per call.
        """
        if self._on_loop():
            return await start(*args, **kwargs)
        return await self._hand_over(_Call(None, start, args, kwargs, asyncio.get_running_loop()))

    async def _hand_over(self, call: _Call):
        with self._lock:
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
        with self._lock:
            calls, self._inbox = self._inbox, []
        for call in calls:
            if call.cancelled:
                if call.coro is not None:
                    call.coro.close()
                continue
            future: asyncio.Future[Any]
            if call.coro is not None:
                future = self._loop.create_task(call.coro)
            else:
                assert call.start is not None  # a call is a coroutine or a start function
                try:
                    future = call.start(*call.args, **call.kwargs)
                except Exception as error:
                    future = self._loop.create_future()
                    future.set_exception(error)
            call.future = future
            self._running[future] = call
            future.add_done_callback(self._finished)

    def _finished(self, future: asyncio.Future) -> None:
        call = self._running.pop(future)
        if not future.cancelled():
            future.exception()  # retrieved here, so a caller that left does not leave it "never retrieved"
        if call.caller.is_closed():  # nobody is waiting
            return
        with self._lock:
            box = self._outboxes.get(call.caller)
            if box is None:
                box = self._outboxes[call.caller] = []
            box.append(call)
            wake = len(box) == 1
        if wake:
            try:
                call.caller.call_soon_threadsafe(self._answer, call.caller)
            except RuntimeError:  # the caller's loop has closed: nobody is waiting
                with self._lock:
                    self._outboxes.pop(call.caller, None)

    def _answer(self, caller: asyncio.AbstractEventLoop) -> None:
        """On a caller's loop: settle every call answered since the last wake-up."""
        with self._lock:
            calls = self._outboxes.pop(caller, [])
        for call in calls:
            if call.future is not None:
                _settle(call.done, call.future)

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
            yield item

    def iter(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Consume an async iterator that lives on the private loop, blocking."""
        while True:
            item = self.run(_next(agen))
            if item is _DONE:
                return
            yield item

    def close(self) -> None:
        """Cancel what is still running on the private loop, let it wind down, stop the loop."""
        if self._loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(_wind_down(), self._loop).result(timeout=_WIND_DOWN_S * 2)
        except Exception:  # a task that ignores cancellation must not hang the caller
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def _wind_down() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=_WIND_DOWN_S)
    await asyncio.get_running_loop().shutdown_asyncgens()


def _cancel(call: _Call) -> None:
    call.cancelled = True
    if call.future is not None:
        call.future.cancel()


def _settle(done: asyncio.Future, future: asyncio.Future) -> None:
    if done.done():
        return
    if future.cancelled():
        done.cancel()
    elif (error := future.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(future.result())


async def _next(agen: AsyncIterator[Any]) -> Any:
    try:
        return await agen.__anext__()
    except StopAsyncIteration:
        return _DONE
