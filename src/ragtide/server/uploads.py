"""The upload folder: what clients sent, kept apart until its job runs.

- ``incoming/<job>/``: one request's files, written there as they arrive, each its own
  file. A request refused halfway (too large, a bad name) leaves nothing behind, and no
  other file is touched.
- ``files/``: the documents as ingested, one file per name (a tenant's in
  ``files/<tenant>/``, so two tenants' files of one name are two documents). A job moves
  its files here when it runs (jobs naming the same file run one after another), keeping
  the version it replaces; if its ingest fails, that version comes back, so the folder
  always holds what the collection holds.

Documents are shown to clients by their name in ``files/``, never by a server path (a
tenant's by their name in its folder).
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile
from starlette.exceptions import HTTPException

_MAX_NAME_BYTES = 200  # file systems allow 255 bytes; room for a suffix


@dataclass(frozen=True)
class Placed:
    """What :meth:`Uploads.place` did: the documents' paths, and which names replaced a file."""

    paths: list[Path]
    replaced: list[str]


class Uploads:
    """The folder of the module's docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = root / "files"
        self.incoming = root / "incoming"
        self.files.mkdir(parents=True, exist_ok=True)
        self.incoming.mkdir(parents=True, exist_ok=True)

    async def receive(self, job_id: str, uploads: list[UploadFile], names: list[str], limit: int) -> None:
        """Write a request's files into ``incoming/<job_id>/``; nothing stays if one fails."""
        folder = self.incoming / job_id
        folder.mkdir()
        try:
            for upload, name in zip(uploads, names):
                await _copy(upload, folder / name, limit)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def folder(self, tenant: str = "") -> Path:
        """Where a tenant's documents are kept (``files/`` itself without a tenant)."""
        return self.files / tenant if tenant else self.files

    def place(self, job_id: str, names: list[str], tenant: str = "") -> Placed:
        """Move a job's files into ``tenant``'s folder, keeping the versions they replace."""
        folder = self.incoming / job_id
        previous = folder / ".previous"
        previous.mkdir(exist_ok=True)
        home = self.folder(tenant)
        home.mkdir(exist_ok=True)
        paths, replaced = [], []
        for name in names:
            target = home / name
            if target.exists():
                os.replace(target, previous / name)
                replaced.append(name)
            os.replace(folder / name, target)
            paths.append(target.resolve())
        return Placed(paths, replaced)

    def settle(self, job_id: str, failed: list[str], tenant: str = "") -> None:
        """A job ended: the files whose ingest ``failed`` give way to the versions they
        replaced (or go); the job's incoming folder goes."""
        previous = self.incoming / job_id / ".previous"
        home = self.folder(tenant)
        for name in failed:
            if (previous / name).exists():
                os.replace(previous / name, home / name)
            else:
                (home / name).unlink(missing_ok=True)
        self.discard(job_id)

    def discard(self, job_id: str) -> None:
        shutil.rmtree(self.incoming / job_id, ignore_errors=True)

    def name_of(self, source: str, tenant: str | None = None) -> str:
        """How a client sees a document: its name in ``files/`` (in ``tenant``'s folder, for
        that tenant's clients), else the file's own name."""
        path = Path(source)
        for home in ([self.folder(tenant).resolve()] if tenant else []) + [self.files.resolve()]:
            try:
                return path.relative_to(home).as_posix()
            except ValueError:
                continue
        return path.name if path.is_absolute() else source


async def _copy(upload: UploadFile, path: Path, limit: int) -> None:
    size = 0
    with path.open("xb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"{path.name}: larger than {limit / 2**20:g} MB")
            out.write(chunk)


def safe_name(name: str) -> str:
    """A file name that stays in the upload folder: no directories, no control characters,
    at most 200 bytes of UTF-8 (cut on a character boundary, the extension kept)."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().lstrip(".")
    if not name:
        raise HTTPException(422, "files: a file has no usable name")
    if len(name.encode()) > _MAX_NAME_BYTES:
        stem, dot, suffix = name.rpartition(".")
        suffix = f".{suffix}" if dot and len(suffix.encode()) <= 16 else ""
        stem = stem if suffix else name
        room = _MAX_NAME_BYTES - len(suffix.encode())
        name = stem.encode()[:room].decode("utf-8", "ignore").rstrip() + suffix
    return name
