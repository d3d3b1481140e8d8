"""What an ingest tells its caller: progress events as it goes, a report at the end."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal


class Outcome(enum.StrEnum):
    """What became of one document in an ingest."""

    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


ProgressKind = Literal["start", "chunked", "chunks", "file"]


@dataclass
class IngestReport:
    """What an ingest did. ``failed`` maps each file that failed to the reason."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # files in the folders given that ragtide does not read
    chunks: int = 0  # chunks embedded and written
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, key: str, outcome: Outcome, reason: str = "") -> None:
        """Record that document ``key`` ended as ``outcome`` (failed: because of ``reason``)."""
        if outcome is Outcome.FAILED:
            self.failed[key] = reason
        elif outcome is Outcome.ADDED:
            self.added += 1
        elif outcome is Outcome.UPDATED:
            self.updated += 1
        else:
            self.unchanged += 1

    def summary(self) -> str:
        skipped = f", {len(self.skipped)} skipped (not text, nor a type ragtide reads)" if self.skipped else ""
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deleted} deleted, {len(self.failed)} failed{skipped}; {self.chunks} chunks in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class Progress:
    """A progress event.

    ``kind`` is "start"; "chunked" (a document was split: ``file_chunks_total`` is known);
    "chunks" (some of ``path``'s chunks were written: ``file_chunks_done`` of
    ``file_chunks_total``); or "file" (``path`` is finished: ``outcome`` says how, with
    ``reason`` if it failed). ``files_*`` and ``chunks_done`` count the whole run.
    """

    kind: ProgressKind
    files_total: int
    files_done: int
    chunks_done: int
    path: str = ""
    outcome: Outcome | Literal[""] = ""
    reason: str = ""
    file_chunks_done: int = 0
    file_chunks_total: int = 0


ProgressCallback = Callable[[Progress], None]
