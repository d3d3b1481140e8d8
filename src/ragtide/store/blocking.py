"""One code path for async and blocking calls.

The store's calls are written once, as coroutines that ``await ready(x)`` whatever the
client gave back. With the async client, ``x`` is awaitable and the coroutine runs on the
event loop as usual. With the sync client, ``x`` is already the result, so the coroutine
never suspends and :func:`run_blocking` runs it to its end on the caller's thread, with
no event loop at all.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def ready(value: Any) -> Any:
    """``value``'s result: awaited if it is awaitable, else ``value`` itself."""
    return await value if inspect.isawaitable(value) else value


async def sleep_blocking(seconds: float) -> None:
    """A pause that blocks the thread: what :func:`run_blocking` may wait with."""
    time.sleep(seconds)


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``, which must never suspend, on this thread; return its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a blocking store call waited on an event loop")
