"""Merge concurrent small requests into one.

Callers submit items one at a time; a :class:`Batcher` sends them together once the
batch is big enough or its oldest item has waited ``max_delay`` seconds, whichever
comes first, and hands each caller its own result. While ``max_in_flight`` batches
are running, new items keep accumulating, so batches grow with load on their own.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

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
        self._size = size
        self._slots = asyncio.Semaphore(max_in_flight)
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._pending_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        self._pending_bytes += self._size(item)
        if len(self._pending) >= self._max_items or self._pending_bytes >= self._max_bytes:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_delay, self.flush)
        return await future

    def flush(self) -> None:
        """Send what is pending now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Send everything pending and wait until every batch has finished."""
        self.flush()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        async with self._slots:
            batch = [(item, fut) for item, fut in batch if not fut.done()]
            if not batch:
                return
            try:
                results = await self._run([item for item, _ in batch])
            except Exception as error:
                if len(batch) == 1:
                    _settle(batch[0][1], error=error)
                    return
            else:
                for (_, fut), result in zip(batch, results, strict=True):
                    _settle(fut, result=result)
                return
        # The batch failed: isolate the bad item(s) so each caller gets its own outcome.
        await asyncio.gather(*(self._send([pair]) for pair in batch))


def _settle(fut: asyncio.Future, *, result=None, error: BaseException | None = None) -> None:
    if fut.done():  # the caller was cancelled meanwhile
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
