"""Where a collection lives: a Milvus server (standalone, cluster, Zilliz Cloud) or a
Milvus Lite file. Everything that differs between the two is decided here, once.

A server is reached over gRPC and indexes with HNSW (AUTOINDEX on Zilliz Cloud). A Lite
file is served by a milvus-lite process this process starts (:mod:`.lite`), searches
exactly, applies writes one at a time, loads its collections itself, and on a full disk
acknowledges writes it does not store, so ragtide keeps room free and reads its log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from . import lite

# gRPC backs off reconnecting to a lost server up to 120 s, so after a Milvus restart
# a client would sit idle for up to two minutes after the server is back. Retrying is
# ragtide's job (:mod:`.retry`): the channel only needs to try again soon.
_CHANNEL = {"grpc.initial_reconnect_backoff_ms": 250, "grpc.max_reconnect_backoff_ms": 2000}

Call = Callable[..., Awaitable[Any]]


class Server:
    """A Milvus server, cluster or Zilliz Cloud at ``uri``."""

    lite = False
    writes_in_flight = 3  # write requests under way at once
    fast_path = True  # a lone blocking caller may go straight to Milvus on its own thread

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._zilliz = "zilliz" in uri

    def pymilvus(self) -> Any:
        return lite.import_pymilvus(False)

    def start(self) -> None:
        """Called before connecting."""

    def failed_to_start(self) -> None:
        """Called when connecting failed."""

    def stop(self) -> None:
        """Called after the client closed."""

    def channel(self) -> dict[str, Any]:
        return {"grpc_options": _CHANNEL}

    def index(self) -> dict[str, Any]:
        """The vector index suited to the backend."""
        if self._zilliz:
            return {"index_type": "AUTOINDEX"}
        return {"index_type": "HNSW", "params": {"M": 16, "efConstruction": 200}}

    def search_params(self, limit: int) -> dict[str, Any]:
        if self._zilliz:
            return {}
        return {"params": {"ef": max(64, limit)}}

    async def load(self, call: Call, collection: str) -> None:
        """Make ``collection`` searchable: a server serves what is loaded into memory."""
        await call("load_collection", collection)

    async def full_text(self, call: Call) -> tuple[bool, str]:
        """Whether the backend computes BM25 itself, and if not, why."""
        from ..errors import StoreError
        from .schema import at_least

        try:
            version = await call("get_server_version")
        except StoreError:
            version = ""
        if at_least(version, (2, 5)) is False:
            return False, (
                f"dense retrieval only: the Milvus server at {self.uri} is {version}, "
                "and full-text (BM25) search needs Milvus 2.5 or later"
            )
        return True, ""

    async def partition_key(self, call: Call) -> bool:
        """Whether the tenant field can be a partition key: not before Milvus 2.4, whose
        upserts put rows in a partition their key's filter does not search (seen on 2.3.5;
        milvus-io/milvus#30607, fixed in 2024), where it is a plain field."""
        from ..errors import StoreError
        from .schema import at_least

        try:
            version = await call("get_server_version")
        except StoreError:
            version = ""
        return at_least(version, (2, 4)) is not False

    def crashed(self) -> str:
        """Why the database process this process runs is gone, or "" (a server is not ours to watch)."""
        return ""

    def restart(self) -> bool:
        """Start the database process again if it died; whether it was restarted."""
        return False

    def epoch(self) -> int:
        """How many times the database process was started again: a client connected in an
        earlier epoch must connect anew."""
        return 0

    def check_space(self, nbytes: int) -> None:
        """Raise StoreError if ``nbytes`` more cannot be stored safely."""

    def disk_note(self) -> str:
        """What to add to an error message about the disk, if anything."""
        return ""

    def lost_writes(self) -> str:
        """What the backend reported, since the last call, of acknowledged writes it did not store."""
        return ""


class Lite(Server):
    """A Milvus Lite database file, served by a milvus-lite process of this process."""

    lite = True
    writes_in_flight = 1  # Milvus Lite applies writes one at a time
    fast_path = False  # its writes must stay serialised: every call takes the queues

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self._log = lite.Log(uri)

    def pymilvus(self) -> Any:
        return lite.import_pymilvus(True)

    def start(self) -> None:
        self.pymilvus()  # first: it imports milvus-lite with its deprecation notice silenced
        Path(self.uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        lite.start(self.uri)

    def failed_to_start(self) -> None:
        lite.check_not_busy(self.uri)  # another process won the race to open it
        lite.release(self.uri)

    def stop(self) -> None:
        lite.release(self.uri)  # so another process can open the file once this one is done with it

    def channel(self) -> dict[str, Any]:
        return {}

    def index(self) -> dict[str, Any]:
        return {"index_type": "FLAT"}  # Milvus Lite searches exactly; it has no graph index

    def search_params(self, limit: int) -> dict[str, Any]:
        return {}

    async def load(self, call: Call, collection: str) -> None:
        pass

    async def full_text(self, call: Call) -> tuple[bool, str]:
        return True, ""

    async def partition_key(self, call: Call) -> bool:
        # Milvus Lite 2.5.1 takes a partition key in the schema, then refuses every filter
        # on it ("Invalid expr ... invalid parameter"): the tenant is a plain field there.
        return False

    def crashed(self) -> str:
        status = lite.exit_status(self.uri)
        return f"the milvus-lite process serving {Path(self.uri).name} {status}" if status else ""

    def restart(self) -> bool:
        return lite.restart(self.uri)

    def epoch(self) -> int:
        return lite.epoch(self.uri)

    def check_space(self, nbytes: int) -> None:
        lite.check_space(self.uri, nbytes)

    def disk_note(self) -> str:
        return lite.free_space(self.uri)  # Lite fails or hangs on a full disk

    def lost_writes(self) -> str:
        return self._log.write_errors()


def deployment(uri: str) -> Server:
    """The deployment ``uri`` names: a Milvus Lite file (``*.db``) or a server."""
    return Lite(uri) if lite.is_lite(uri) else Server(uri)
