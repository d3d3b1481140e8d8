"""When to retry a failed Milvus call, how long to wait, and how to say why it failed.

Transient failures (Milvus restarting, a dropped connection, rate limits) are retried
with jittered exponential backoff until ``retry_s`` seconds have passed since the first
failure; anything else fails at once. Messages are one line, without gRPC's dump.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

_TRANSIENT = (
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "RATE LIMIT",
    "CONNECTION RESET",
    "FAILED TO CONNECT",
    "CONNECTION REFUSED",
    "SERVICE UNAVAILABLE",
    "NOT READY",
    "SOCKET CLOSED",
    "NOT LOADED",
    # Another process creating the same new collection has not made its index yet.
    "INDEX NOT FOUND",
)


@dataclass
class RetryPolicy:
    """Retry transient failures for up to ``retry_s`` seconds, backing off from ``first_s`` to ``max_s``."""

    retry_s: float = 60.0
    first_s: float = 0.2
    max_s: float = 5.0

    def delay(self, attempt: int, error: BaseException, started: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if not transient(error):
            return None
        left = self.retry_s - (time.monotonic() - started)
        if left <= 0:
            return None
        wait = min(self.max_s, self.first_s * 2**attempt) * (0.5 + random.random())
        return min(wait, left)

    async def run(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """``fn()``, retried while it fails transiently. ``sleep`` waits between attempts
        (a blocking one for :func:`.blocking.run_blocking`)."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return await fn()
            except Exception as e:
                wait = self.delay(attempt, e, started)
                if wait is None:
                    raise
                await sleep(wait)
                attempt += 1


def transient(error: BaseException) -> bool:
    """Whether ``error`` may go away by itself: Milvus restarting, a lost connection, a rate limit."""
    text = f"{type(error).__name__} {error}".upper()
    return any(word in text for word in _TRANSIENT)


def not_loaded(error: BaseException) -> bool:
    """Whether Milvus refused a read because the collection is not in memory (after a restart)."""
    return "NOT LOADED" in str(error).upper()


_BAD_FILTER = ("INVALID EXPR", "CANNOT PARSE EXPRESSION", "FAILED TO CREATE QUERY PLAN", "EXPR TYPE CHECK FAILED")


def invalid_filter(error: BaseException) -> bool:
    """Whether Milvus refused a filter expression (the caller's input, not a fault)."""
    text = str(error).upper()
    return any(words in text for words in _BAD_FILTER)


def reason(error: BaseException) -> str:
    """One line saying why ``error`` happened, without gRPC's debug dump."""
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    if callable(code) and callable(details):  # a grpc.RpcError / AioRpcError
        try:
            name = code().name
            text = details() or ""
        except Exception:
            name, text = "", str(error)
        if name == "UNAVAILABLE":
            return f"Milvus is unreachable ({_first_clause(text) or 'connection failed'})"
        if name == "DEADLINE_EXCEEDED":
            return "Milvus did not answer in time"
        return f"{name}: {_first_clause(text)}"
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    message = " ".join(str(message).split())
    if message.startswith("Fail connecting to server"):  # pymilvus, when a (re)connect fails
        return "Milvus is unreachable (connection failed)"
    if "<AioRpcError" in message or "<_InactiveRpcError" in message or "<_MultiThreadedRendezvous" in message:
        status = re.search(r"status = StatusCode\.(\w+)", message)
        details = re.search(r'details = "([^"]*)"', message)
        if status and status.group(1) == "UNAVAILABLE":
            return (
                f"Milvus is unreachable ({_first_clause(details.group(1) if details else '') or 'connection failed'})"
            )
        if status:
            return f"{status.group(1)}: {_first_clause(details.group(1) if details else '')}"
    return message[:500]


def _first_clause(text: str) -> str:
    """gRPC details hold a whole resolver trace after the first ';'."""
    return " ".join(text.split(";")[0].split())[:200]
