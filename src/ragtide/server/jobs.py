"""Ingest jobs: uploads the service acknowledged, ingested in the background, their progress kept on disk.

A job is written to disk (``<upload dir>/jobs/<id>.json``) before the upload is answered
202, and its files are already stored (:mod:`.uploads`), so a client that disconnects
loses nothing. A service stopped mid-job finds the job "running" when it starts again and
reports it "interrupted"; submitting the same files again is cheap and exact, because
ingest skips what is already stored (content hashes).

Two jobs run at once, so a small upload is not stuck behind a large one; jobs naming the
same file run in the order they came, so the last upload of a name is the version kept.
A job can be cancelled, queued or running: what it wrote is removed, and the files it
replaced come back.

Replicas: several services sharing one upload folder (a shared volume) and one Milvus
share their jobs. A job runs in the replica that took the upload (its record names it);
that replica writes the job's progress to the record as it goes (at most once a second)
and a heartbeat every few seconds, so every replica reads the same progress. A replica
reads another's job from its record; a job whose replica stopped (no heartbeat for
``STALE_S``, or its process gone from this machine) reads as interrupted. A cancel sent
to another replica leaves a request beside the record, which the running replica acts on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..ingest import IngestReport, Outcome, Progress
from .errors import redact
from .uploads import Uploads

# (paths, progress, metadata, tenant) -> report
Ingest = Callable[[list[Path], Callable[[Progress], None], dict[str, Any], str], Awaitable[IngestReport]]
Status = Literal["queued", "running", "done", "failed", "interrupted", "cancelled"]
FINISHED = ("done", "failed", "interrupted", "cancelled")
_RUNNING_AT_ONCE = 2
_INTERRUPTED = "the service stopped before this job finished; submit the files again"
HEARTBEAT_S = 2.0  # how often a replica marks its unfinished jobs alive, and looks for cancel requests
STALE_S = 30.0  # a job whose replica has not marked it alive for this long was cut off
_PROGRESS_S = 1.0  # at most this often a running job's progress is written to its record
_CANCEL_WAIT_S = 30.0  # how long a cancel sent to another replica waits for that replica to act


@dataclass
class Job:
    """An ingest job, as ``GET /v1/jobs/{id}`` shows it."""

    id: str
    files: list[str]  # names as uploaded
    status: Status = "queued"
    created: float = field(default_factory=time.time)
    finished: float | None = None
    files_done: int = 0
    chunks: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    replaced: list[str] = field(default_factory=list)  # names whose earlier upload this job replaced
    metadata: dict[str, Any] = field(default_factory=dict)  # attached to each of its documents
    failures: dict[str, str] = field(default_factory=dict)  # file name -> reason
    error: str = ""  # why the whole job failed, if it did
    tenant: str = ""  # whose documents it ingests ("": no tenant's); only they and admins see the job
    replica: str = ""  # the service that runs it: host:pid:instance
    heartbeat: float = 0.0  # when that service last marked it alive

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["files_total"] = len(self.files)
        return out


def new_id() -> str:
    return uuid.uuid4().hex


class Jobs:
    """The service's ingest jobs (see the module's docstring)."""

    def __init__(self, folder: Path, uploads: Uploads, ingest: Ingest) -> None:
        self._folder = folder / "jobs"
        self._folder.mkdir(parents=True, exist_ok=True)
        self._uploads = uploads
        self._ingest = ingest
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._jobs: dict[str, Job] = {}  # the jobs this replica runs or ran
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()
        self._names: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(_RUNNING_AT_ONCE)
        self._saved: dict[str, float] = {}  # job id -> when its progress was last written
        self._heartbeat: asyncio.Task[None] | None = None
        for path in sorted(self._folder.glob("*.json")):
            self._read(path.stem)  # records cut off by a stop are marked interrupted now

    def get(self, job_id: str) -> Job | None:
        """The job as it stands: this replica's from memory, another's from its record."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.replica == self.replica else self._read(job_id)

    def submit(self, job_id: str, names: list[str], metadata: dict[str, Any] | None = None, tenant: str = "") -> Job:
        """Queue the job whose files :meth:`Uploads.receive` stored under ``job_id``."""
        job = Job(
            id=job_id,
            files=names,
            metadata=dict(metadata or {}),
            tenant=tenant,
            replica=self.replica,
            heartbeat=time.time(),
        )
        self._jobs[job.id] = job
        self._save(job)
        self._tasks[job.id] = asyncio.create_task(self._run(job))
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat())
        return job

    async def cancel(self, job_id: str) -> Job | None:
        """Stop a queued or running job; None if there is no such job. A finished one stays as it is."""
        task = self._tasks.get(job_id)
        if task is None:
            return await self._cancel_elsewhere(job_id)
        job = self._jobs[job_id]
        if job.status in FINISHED:
            return job
        self._cancelled.add(job_id)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return job

    async def _cancel_elsewhere(self, job_id: str) -> Job | None:
        """Ask the replica running ``job_id`` to cancel it, and wait (a while) for it to."""
        job = self._read(job_id)
        if job is None or job.status in FINISHED:
            return job
        self._cancel_request(job_id).touch()
        deadline = time.monotonic() + _CANCEL_WAIT_S
        while time.monotonic() < deadline:
            await asyncio.sleep(HEARTBEAT_S / 4)
            job = self._read(job_id)
            if job is None or job.status in FINISHED:
                return job
        return job

    async def _beat(self) -> None:
        """Mark this replica's unfinished jobs alive; act on cancels other replicas were sent."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            for job_id in list(self._tasks):
                job = self._jobs[job_id]
                if self._cancel_request(job_id).exists():
                    asyncio.create_task(self.cancel(job_id))
                elif job.status not in FINISHED:
                    job.heartbeat = time.time()
                    self._save(job)

    def _cancel_request(self, job_id: str) -> Path:
        return self._folder / f"{job_id}.cancel"

    def _read(self, job_id: str) -> Job | None:
        """A job's record; if its replica stopped before it finished, marked interrupted (and saved so)."""
        path = self._folder / f"{job_id}.json"
        try:
            job = Job(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        if job.status not in FINISHED and self._gone(job):
            job.status, job.error = "interrupted", _INTERRUPTED
            self._save(job)
            self._uploads.discard(job.id)  # files of a job that will not run
        return job

    def _gone(self, job: Job) -> bool:
        """Whether the replica that runs ``job`` stopped: no heartbeat for a while, or on this
        machine, its process is gone."""
        if job.replica == self.replica:
            return False
        if time.time() - job.heartbeat > STALE_S:
            return True
        host, _, rest = job.replica.partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's process: alive
            return False
        return False

    async def _run(self, job: Job) -> None:
        held: list[asyncio.Lock] = []
        placed = None
        try:
            for name in sorted(set(job.files)):
                lock = self._names.setdefault(f"{job.tenant}/{name}", asyncio.Lock())
                await lock.acquire()
                held.append(lock)
            async with self._slots:
                job.status = "running"
                self._save(job)
                placed = self._uploads.place(job.id, job.files, job.tenant)
                job.replaced = placed.replaced
                names = dict(zip(map(str, placed.paths), job.files))
                report = await self._ingest(
                    placed.paths, lambda event: self._progress(job, names, event), job.metadata, job.tenant
                )
            job.status = "done" if report.ok else "failed"
            job.added, job.updated, job.unchanged = report.added, report.updated, report.unchanged
            job.chunks, job.files_done = report.chunks, len(job.files)
            job.failures = {names.get(p, Path(p).name): redact(reason) for p, reason in report.failed.items()}
            self._uploads.settle(job.id, list(job.failures), job.tenant)
        except asyncio.CancelledError:
            if job.id not in self._cancelled:  # the service is stopping
                job.status, job.error = "interrupted", _INTERRUPTED
                self._save(job)
                raise
            job.status, job.error = "cancelled", "cancelled by a client"
            self._uploads.settle(job.id, job.files if placed is not None else [], job.tenant)
        except Exception as e:  # recorded for the client, never lost
            job.status, job.error = "failed", redact(str(e))
            self._uploads.settle(job.id, job.files if placed is not None else [], job.tenant)
        finally:
            for lock in held:
                lock.release()
            self._tasks.pop(job.id, None)
            self._saved.pop(job.id, None)
            self._cancel_request(job.id).unlink(missing_ok=True)
        job.finished = time.time()
        self._save(job)

    def _progress(self, job: Job, names: dict[str, str], event: Progress) -> None:
        job.files_done, job.chunks = event.files_done, event.chunks_done
        if event.kind == "file" and event.outcome is Outcome.FAILED:
            job.failures[names.get(event.path, Path(event.path).name)] = redact(event.reason)
        now = time.monotonic()
        if now - self._saved.get(job.id, 0.0) >= _PROGRESS_S:  # other replicas read it from the record
            self._saved[job.id] = now
            job.heartbeat = time.time()
            self._save(job)

    def _save(self, job: Job) -> None:
        # Atomic: a reader, or a restart, never sees half a record.
        path = self._folder / f"{job.id}.json"
        tmp = path.with_name(f"{job.id}.{uuid.uuid4().hex[:8]}.tmp")  # replicas may write one record at once
        tmp.write_text(json.dumps(dataclasses.asdict(job)), encoding="utf-8")
        os.replace(tmp, path)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
