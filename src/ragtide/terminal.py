"""How the CLI shows things on a terminal: ingest progress, reports, paths on one line."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ingest import IngestReport, Progress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress


class ProgressView:
    """Rich bars on a terminal, with one bar per large file in progress; plain lines otherwise."""

    _LARGE = 512  # chunks: a file worth its own progress
    _EVERY_S = 10.0  # plain lines about a large file, at most this often

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live = console.is_terminal
        self._progress: RichProgress | None = None
        self._started = time.perf_counter()
        self._file_tasks: dict[str, Any] = {}
        self._last_line: dict[str, float] = {}

    def __enter__(self) -> ProgressView:
        if self._live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            progress = self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=False,
            )
            progress.start()
            self._files = progress.add_task("files", total=None, rate="")
            self._chunks = progress.add_task("chunks written", total=None, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, event: Progress) -> None:
        rate = event.chunks_done / max(time.perf_counter() - self._started, 1e-6)
        if self._progress is not None:
            self._progress.update(self._files, total=event.files_total, completed=event.files_done)
            self._progress.update(self._chunks, completed=event.chunks_done, rate=f"{rate:.0f} chunks/s")
            self._update_file_bar(self._progress, event)
        elif event.kind == "file":
            chunks = f", {event.file_chunks_total:,} chunks" if event.file_chunks_total else ""
            outcome = event.outcome + (f": {one_line(event.reason)}" if event.reason else "")
            print(
                f"[{event.files_done}/{event.files_total}] {show(event.path)}: {outcome}{chunks} "
                f"(run: {event.chunks_done:,} chunks written, {rate:.0f}/s)",
                file=sys.stderr,
                flush=True,
            )
        elif event.kind in ("chunked", "chunks") and event.file_chunks_total >= self._LARGE:
            now = time.perf_counter()
            if now - self._last_line.get(event.path, 0.0) >= self._EVERY_S:
                self._last_line[event.path] = now
                print(
                    f"      {show(event.path)}: {event.file_chunks_done:,} of {event.file_chunks_total:,} chunks written",
                    file=sys.stderr,
                    flush=True,
                )

    def _update_file_bar(self, bars: RichProgress, event: Progress) -> None:
        if event.file_chunks_total < self._LARGE:
            return
        task = self._file_tasks.get(event.path)
        if event.kind == "file":
            if task is not None:
                bars.remove_task(self._file_tasks.pop(event.path))
            return
        if task is None:
            name = show(event.path)
            task = self._file_tasks[event.path] = bars.add_task(
                f"  {name if len(name) <= 40 else '...' + name[-37:]}", total=event.file_chunks_total, rate=""
            )
        bars.update(task, completed=event.file_chunks_done)


def print_report(report: IngestReport) -> None:
    # Plain prints: one line per file, never wrapped, easy to grep.
    for path in report.skipped:
        print(f"skipped: {show(path)}: not text, nor a type ragtide reads", file=sys.stderr)
    for path, reason in report.failed.items():
        print(f"error: {show(path)}: {reason}", file=sys.stderr)
    print(report.summary(), flush=True)


def show(path: str) -> str:
    """A path relative to the working directory when it lies below it, on one line."""
    try:
        shown = str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        shown = path
    return one_line(shown)


def one_line(text: str) -> str:
    """Control characters (a newline in a file name) shown escaped, never printed raw."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
