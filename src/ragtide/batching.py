"""Merge concurrent small requests into one.

Callers submit items one at a time; a :class:`Batcher` sends them together and hands
each caller its own result. When nothing is in flight an item is sent at once (items
submitted in the same event-loop tick still travel together), so a lone caller never
waits for a timer. While batches are in flight, items gather until the batch is big
enough or its oldest item has waited ``max_delay`` seconds; and while every one of the
``max_in_flight`` slots is busy, the next batch keeps growing until a slot frees. So
batches grow with load on their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Coalesces :meth:`submit` calls into calls of ``run(items) -> results``.

    ``run`` must return one result per item, in order. If it raises for a batch of
    several items, each item is retried alone, so a bad item fails only its own
    caller. A caller that is cancelled before its batch is sent is left out of it.
    """

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_items: int = 1024,
        max_bytes: int = 2 << 20,
        max_delay: float = 0.002,
        max_in_flight: int = 4,
        size: Callable[[T], int] = lambda _: 1,
    ) -> None:
        self._run = run
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._max_delay = max_delay
        self._max_in_flight = max_in_flight
        self._size = size
        self._pending: list[tuple[T, asyncio.Future[R], int]] = []
        self._pending_bytes = 0
        self._timer: asyncio.Handle | None = None
        self._in_flight = 0
        self._sender_waiting = False  # a sender is queued for a slot and will take what is pending
        self._slot_freed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        """Whether items are pending or batches running."""
        return bool(self._pending or self._tasks)

    async def submit(self, item: T) -> R:
        return await self.enqueue(item)

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """:meth:`submit` without the coroutine: the future of ``item``'s result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        size = self._size(item)
        self._pending.append((item, future, size))
        self._pending_bytes += size
        if len(self._pending) >= self._max_items or self._pending_bytes >= self._max_bytes:
            self.flush()
        elif self._sender_waiting:
            pass  # the queued sender takes this item when its slot frees
        elif self._in_flight == 0:
            if self._timer is None:
                self._timer = loop.call_soon(self.flush)  # idle: send now, with this tick's items
        elif self._timer is None:
            self._timer = loop.call_later(self._max_delay, self.flush)
        return future

    def flush(self) -> None:
        """Send what is pending as soon as a slot is free."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending or self._sender_waiting:
            return
        task = asyncio.get_running_loop().create_task(self._send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Send everything pending and wait until every batch has finished."""
        self.flush()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.flush()

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        taken_bytes = 0
        while self._pending and len(batch) < self._max_items and (not batch or taken_bytes < self._max_bytes):
            item, future, size = self._pending.pop(0)
            self._pending_bytes -= size
            if not future.done():  # skip callers cancelled while waiting
                batch.append((item, future))
                taken_bytes += size
        return batch

    async def _send(self) -> None:
        if self._in_flight >= self._max_in_flight:
            self._sender_waiting = True
            if self._slot_freed is None:
                self._slot_freed = asyncio.Event()
            while self._in_flight >= self._max_in_flight:
                self._slot_freed.clear()
                await self._slot_freed.wait()
            self._sender_waiting = False
        batch = self._take()
        if self._pending:
            self.flush()  # what did not fit goes in the next batch
        if not batch:
            return
        self._in_flight += 1
        try:
            await self._deliver(batch)
        finally:
            self._in_flight -= 1
            if self._slot_freed is not None:
                self._slot_freed.set()
            if self._pending and not self._sender_waiting:
                self.flush()  # a slot is free: what gathered meanwhile goes now

    async def _deliver(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            # The batch failed: isolate the bad item(s) so each caller gets its own outcome.
            await asyncio.gather(*(self._deliver([pair]) for pair in batch))
            return
        for (_, fut), result in zip(batch, results, strict=True):
            _settle(fut, result=result)


def _settle(fut: asyncio.Future, *, result=None, error: BaseException | None = None) -> None:
    if fut.done():  # the caller was cancelled meanwhile
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
