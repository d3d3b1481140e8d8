"""Ingest jobs: uploads the service acknowledged, ingested in the background, their progress kept on disk.

A job is written to disk (``<upload dir>/jobs/<id>.json``) before the upload is answered
202, and its files are already stored in the upload folder, so a client that disconnects
loses nothing. A service stopped mid-job finds the job "running" when it starts again and
reports it "interrupted"; submitting the same files again is cheap and exact, because
ingest skips what is already stored (content hashes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..ingest import IngestReport, Progress

Ingest = Callable[[list[Path], Callable[[Progress], None]], Awaitable[IngestReport]]


@dataclass
class Job:
    """An ingest job, as ``GET /v1/jobs/{id}`` shows it."""

    id: str
    files: list[str]  # names as uploaded
    status: str = "queued"  # queued, running, done, failed, interrupted
    created: float = field(default_factory=time.time)
    finished: float | None = None
    files_done: int = 0
    chunks: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # file name -> reason
    error: str = ""  # why the whole job failed, if it did

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["files_total"] = len(self.files)
        return out


class Jobs:
    """The service's ingest jobs: started one after another in the background, recorded on disk."""

    def __init__(self, folder: Path, ingest: Ingest) -> None:
        self._folder = folder / "jobs"
        self._folder.mkdir(parents=True, exist_ok=True)
        self._ingest = ingest
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()  # one ingest at a time: they share the embedder anyway
        for path in sorted(self._folder.glob("*.json")):
            try:
                job = Job(**json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue
            if job.status in ("queued", "running"):
                job.status, job.error = (
                    "interrupted",
                    "the service stopped before this job finished; submit the files again",
                )
                self._save(job)
            self._jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def submit(self, paths: list[Path], names: list[str]) -> Job:
        job = Job(id=uuid.uuid4().hex, files=names)
        self._jobs[job.id] = job
        self._save(job)
        task = asyncio.create_task(self._run(job, paths, dict(zip(map(str, paths), names))))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: Job, paths: list[Path], names: dict[str, str]) -> None:
        def progress(event: Progress) -> None:
            job.files_done, job.chunks = event.files_done, event.chunks_done
            if event.kind == "file" and event.outcome == "failed":
                job.failures[names.get(event.path, Path(event.path).name)] = event.reason

        async with self._lock:
            job.status = "running"
            self._save(job)
            try:
                report = await self._ingest(paths, progress)
            except asyncio.CancelledError:
                job.status, job.error = (
                    "interrupted",
                    "the service stopped before this job finished; submit the files again",
                )
                self._save(job)
                raise
            except Exception as e:  # noqa: BLE001 -- recorded for the client, never lost
                job.status, job.error = "failed", str(e)
            else:
                job.status = "done" if report.ok else "failed"
                job.added, job.updated, job.unchanged, job.chunks = (
                    report.added,
                    report.updated,
                    report.unchanged,
                    report.chunks,
                )
                job.files_done = len(paths)
                job.failures = {names.get(p, Path(p).name): reason for p, reason in report.failed.items()}
            job.finished = time.time()
            self._save(job)

    def _save(self, job: Job) -> None:
        # Atomic: a reader, or a restart, never sees half a record.
        path = self._folder / f"{job.id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(job)), encoding="utf-8")
        os.replace(tmp, path)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
