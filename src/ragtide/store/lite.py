"""Milvus Lite: a database in one local file, served by a milvus-lite process per file.

Only one process may open a Lite file at a time. milvus-lite enforces that with a lock
file, but a process that fails to open a locked database deletes the lock file on its
way out (milvus-lite 2.5.1, ``Server.stop``), after which a third process opens the same
database a second time. So ragtide looks before it opens: if another process holds the
lock, it says the database is busy and leaves the lock alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import warnings
from pathlib import Path

from ..errors import StoreError


def is_lite(uri: str) -> bool:
    return uri.endswith(".db")


def import_pymilvus(lite: bool):
    # gRPC (under pymilvus) logs a notice on stderr whenever the process forks while its
    # threads run (OpenVINO's telemetry forks); it must be told before it is first imported.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # milvus-lite 2.5 imports pkg_resources, whose deprecation notice means nothing to a user.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pymilvus

        if lite:
            import milvus_lite  # noqa: F401
    return pymilvus


# How many of this process's stores use each Lite file. milvus-lite's own server manager
# keeps a file's server until the process exits; ragtide stops it when the last store
# using the file closes, so a closed engine frees the file for other processes.
_users: dict[str, int] = {}


def log_path(uri: str) -> Path:
    db = Path(uri).expanduser().absolute()
    return db.parent / f".{db.name}.log"


class Log:
    """What the milvus-lite server of ``uri`` writes to its log from now on."""

    _FAILED_WRITE = ("disk is full", "Insert data failed", "No space left")

    def __init__(self, uri: str) -> None:
        self._path = log_path(uri)
        try:
            self._offset = self._path.stat().st_size
        except OSError:
            self._offset = 0

    def write_errors(self) -> str:
        """The first line logged since the last call that says a write was not stored, or ""."""
        try:
            with open(self._path, "rb") as f:
                f.seek(self._offset)
                new = f.read()
        except OSError:
            return ""
        self._offset += len(new)
        for line in new.decode("utf-8", "replace").splitlines():
            if any(words in line for words in self._FAILED_WRITE):
                return line.split("]")[-1].strip() or line.strip()
        return ""


def start(uri: str) -> None:
    """Start this process's milvus-lite server for ``uri`` (pymilvus then finds it running)."""
    _launch(uri)
    db = str(Path(uri).expanduser().absolute())
    _users[db] = _users.get(db, 0) + 1


_restarting = threading.Lock()
_epochs: dict[str, int] = {}  # how many times each file's server was started again


def epoch(uri: str) -> int:
    return _epochs.get(str(Path(uri).expanduser().absolute()), 0)


def exit_status(uri: str) -> str:
    """How this process's milvus-lite server for ``uri`` ended ("exited with signal SIGFPE"),
    or "" while it runs (or is not this process's to watch)."""
    from milvus_lite.server_manager import server_manager_instance

    # milvus-lite keeps its process in a private attribute; without it, nothing is reported.
    server = server_manager_instance._servers.get(str(Path(uri).expanduser().absolute().resolve()))
    process = getattr(server, "_p", None)
    code = process.poll() if process is not None else None
    if code is None:
        return ""
    if code < 0:
        try:
            return f"exited with signal {signal.Signals(-code).name}"
        except ValueError:
            return f"exited with signal {-code}"
    return f"exited with status {code}"


def restart(uri: str) -> bool:
    """Start a new milvus-lite server for ``uri`` if this process's has died; False if it runs.

    Safe to call from several collections at once: one restarts it, the others find it running.
    """
    from milvus_lite.server_manager import server_manager_instance

    with _restarting:
        if not exit_status(uri):
            return False
        db = str(Path(uri).expanduser().absolute())
        server_manager_instance.release_server(db)
        _launch(uri)
        _epochs[db] = _epochs.get(db, 0) + 1
        return True


def _launch(uri: str) -> None:
    """Start the milvus-lite process for ``uri``, its stderr to a log file beside the database.

    The server writes its errors (a refused filter, say) to the stderr it inherits, where a
    CLI user would see them after ragtide's own one-line report; it inherits a log file
    next to the database instead, ``.<name>.log``.
    """
    from milvus_lite.server_manager import server_manager_instance

    check_not_busy(uri)
    db = Path(uri).expanduser().absolute()
    # Milvus Lite opens its database for writing, and writes a lock file beside it, even to read.
    if db.exists() and not os.access(db, os.W_OK):
        raise StoreError(
            f"cannot open Milvus Lite database {uri}: it is not writable (a read-only file or file "
            "system), and Milvus Lite needs to write to it even to search it"
        )
    try:
        log = os.open(log_path(uri), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as e:
        raise StoreError(
            f"cannot open Milvus Lite database {uri}: cannot write in {db.parent} ({e.strerror}), and "
            "Milvus Lite needs to write beside its database even to search it"
        ) from None
    saved = os.dup(2)
    try:
        os.dup2(log, 2)
        started = server_manager_instance.start_and_get_uri(str(db))
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log)
    if started is None:
        check_not_busy(uri)
        raise StoreError(f"cannot start Milvus Lite for {uri}; see {log_path(uri)}")


def release(uri: str) -> None:
    """One store is done with ``uri``; the last one stops its milvus-lite server."""
    from milvus_lite.server_manager import server_manager_instance

    db = str(Path(uri).expanduser().absolute())
    left = _users.get(db, 0) - 1
    if left > 0:
        _users[db] = left
        return
    _users.pop(db, None)
    server_manager_instance.release_server(db)


def lock_path(uri: str) -> Path:
    db = Path(uri).expanduser().absolute()
    return db.parent / f".{db.name}.lock"


def check_not_busy(uri: str) -> None:
    """Raise :class:`StoreError` if another process has the Lite database at ``uri`` open."""
    holder = _lock_holder(lock_path(uri))
    if holder is not None:
        raise StoreError(
            f"Milvus Lite database {uri} is busy: process {holder} ({_process_name(holder)}) has it open, and Milvus Lite "
            "serves one process at a time. Wait for it to finish, or use a Milvus server for concurrent access."
        )


def _lock_holder(path: Path) -> int | None:
    """The pid of another process holding a POSIX lock on ``path``, read from /proc/locks.

    Opening the lock file to test it would not do: closing it would drop this process's
    own lock if it holds one. Where /proc/locks does not exist, nothing is reported and
    milvus-lite's own check applies.
    """
    try:
        inode = path.stat().st_ino
        locks = Path("/proc/locks").read_text()
    except OSError:
        return None
    mine = {os.getpid(), *_children(os.getpid())}
    for line in locks.splitlines():
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 12345 fd:01:67890 0 EOF"; blocked waiters are marked "->".
        if len(fields) < 6 or fields[1] == "->":
            continue
        try:
            pid, where = int(fields[4]), fields[5]
        except ValueError:
            continue
        if where.rsplit(":", 1)[-1] == str(inode) and pid not in mine:
            return pid
    return None


def _children(pid: int) -> list[int]:
    """This process's milvus-lite server is its child and holds the lock on its behalf."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for tid in tasks:
        try:
            children.extend(int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
        except (OSError, ValueError):
            pass
    return children


def _process_name(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:80] or "?"
        )
    except OSError:
        return "?"


_MARGIN = 16 << 20  # bytes kept free beside a Lite database: its writes need room to land


def _free_bytes(uri: str) -> int | None:
    try:
        return shutil.disk_usage(Path(uri).expanduser().absolute().parent).free
    except OSError:
        return None


def check_space(uri: str, nbytes: int) -> None:
    """Raise :class:`StoreError` if the disk holding ``uri`` has too little room for ``nbytes``
    more: on a full disk Milvus Lite acknowledges writes it does not store."""
    free = _free_bytes(uri)
    if free is not None and free < 2 * nbytes + _MARGIN:
        raise StoreError(
            f"Milvus Lite database {uri}: the disk holding it is full ({free >> 10:,} KB free; "
            f"ragtide keeps {_MARGIN >> 20} MB free, as Milvus Lite acknowledges writes it cannot store "
            "on a full disk)"
        )


def free_space(uri: str) -> str:
    """ ", the disk holding it has 140 KB free" when that disk is nearly full, else ""."""
    free = _free_bytes(uri)
    if free is None or free > 4 * _MARGIN:
        return ""
    return f"; the disk holding it has {free >> 10:,} KB free"
