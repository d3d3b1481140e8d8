"""Read consistency: Session by default, and Session that stays Session after deletes.

Strong consistency costs ~200 ms a search on a server; Session sees your own writes
for a fraction of that. Milvus 2.3 answers deletes with timestamp 0, which pymilvus
then takes as the session's "last write": the next Session read would silently
become Eventually and could still see deleted rows. :class:`SessionReads` notices
its own deletes and reads Strong until a later write restores a real timestamp.
"""

from __future__ import annotations

import threading
from typing import Any

from ..vocabulary import CONSISTENCY_LEVELS, Consistency, check


def check_level(level: str) -> Consistency:
    return check("consistency", level, CONSISTENCY_LEVELS)


class SessionReads:
    """Which consistency level a read really needs, given this client's writes and deletes."""

    def __init__(self, default: str = "Session") -> None:
        self.default = check_level(default)
        self._seq = 0
        self._strong_after: int | None = None
        self._lock = threading.Lock()  # the blocking fast path writes from callers' threads

    def begin_write(self) -> int:
        """Call before a write; pass the result to :meth:`wrote` once Milvus acknowledged it."""
        with self._lock:
            self._seq += 1
            return self._seq

    def wrote(self, seq: int) -> None:
        with self._lock:
            if self._strong_after is not None and seq > self._strong_after:
                self._strong_after = None

    def deleted(self) -> None:
        """Call after a delete: Session reads go Strong until a write begun after it is acknowledged."""
        self._strong_after = self.begin_write()

    def level(self, asked: str | None = None) -> Consistency:
        level = check_level(asked or self.default)
        if level == "Session" and self._strong_after is not None:
            return "Strong"
        return level

    def kwargs(self, asked: str | None, timeout: float) -> dict[str, Any]:
        return {"consistency_level": self.level(asked), "timeout": timeout}
