"""A per-user cache of exported embedding models, built once and shared by processes.

Each entry is a folder named by a key (the source model's weights and the export
settings), built in a private temporary folder and renamed into place, so a reader never
sees half an export and two processes exporting at once both end with a whole one. An
entry is whole when its manifest, written last, names files of the sizes on disk; any
other entry is rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"


def default_root() -> Path:
    """``$RAGTIDE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ragtide``, else ``~/.cache/ragtide``."""
    if os.environ.get("RAGTIDE_CACHE_DIR"):
        return Path(os.environ["RAGTIDE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "ragtide"


@dataclass(frozen=True)
class ExportCache:
    """Entries under ``root/<kind>/<key>``: exported models (``models``), start recipes (``starts``)."""

    root: Path
    kind: str = "models"

    def path(self, key: str) -> Path:
        return self.root / self.kind / key

    def get(self, key: str, build: Callable[[Path], None]) -> Path:
        """The folder of ``key``'s whole export; ``build(folder)`` writes one if there is none.

        ``build`` fills an empty folder; the manifest is added here, after it returns.
        """
        final = self.path(key)
        if self.is_whole(final):
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # a broken entry: move it aside first, so the rename below can succeed
            self._discard(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
        try:
            build(tmp)
            files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
            (tmp / MANIFEST).write_text(json.dumps({"key": key, "files": files}))
            try:
                os.rename(tmp, final)
            except OSError:
                # Another process put its whole export there first: use that one.
                if not self.is_whole(final):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def invalidate(self, folder: Path) -> None:
        """Drop an entry that failed to load, so the next :meth:`get` rebuilds it."""
        if folder.exists():
            self._discard(folder)

    @staticmethod
    def is_whole(folder: Path) -> bool:
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            return manifest["key"] == folder.name and all(
                (folder / name).stat().st_size == size for name, size in manifest["files"].items()
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False

    @staticmethod
    def _discard(folder: Path) -> None:
        trash = folder.with_name(f".trash-{folder.name}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(folder, trash)
        except OSError:
            return  # another process moved or replaced it meanwhile
        shutil.rmtree(trash, ignore_errors=True)
