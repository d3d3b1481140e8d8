"""Shared fixtures. Integration tests run on Milvus Lite and, when `make test` started
one (RAGTIDE_TEST_SERVER_URI), on a real Milvus server. Nothing is mocked."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ESSAY = DATA / "paul_graham_essay.txt"
UBER = DATA / "uber_2021.pdf"
SERVER_URI = os.environ.get("RAGTIDE_TEST_SERVER_URI", "")
# The fast tier (`make test-fast`): a hashing embedder instead of the model, no server,
# and no test that needs the real model (marked `model`).
FAST = os.environ.get("RAGTIDE_TEST_FAST") == "1"
SERVER_DATA = os.environ.get("RAGTIDE_TEST_SERVER_DATA", "")  # its data dir, for tests that restart it
RAGTIDE_CLI = [sys.executable, "-m", "ragtide.cli"]


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``ragtide ARGS`` in a process of its own (a process that opened a Lite database holds it until it exits)."""
    return subprocess.run([*RAGTIDE_CLI, *args], capture_output=True, text=True, timeout=300, **kwargs)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "server" in getattr(item, "callspec", None).params.values() if hasattr(item, "callspec") else False:
            item.add_marker(pytest.mark.server)
    # Tests that kill and restart the shared server run after every other test.
    items.sort(key=lambda item: item.get_closest_marker("restarts_server") is not None)


_FIGURES = pytest.StashKey[list]()


@pytest.fixture
def figure(request):
    """Record a figure a test measured (a recovery time, say). Tests never assert speed;
    the figures are printed at the end of the run, for the README."""

    def record(text: str) -> None:
        request.config.stash.setdefault(_FIGURES, []).append(f"{request.node.name}: {text}")

    return record


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(_FIGURES, []):
        terminalreporter.section("figures measured")
        for line in config.stash[_FIGURES]:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def embedder():
    """The session's embedder. It remembers the vectors of the chunks it embedded: most
    documents are ingested on Lite and again on the server, and the model need not run twice.
    In the fast tier, a deterministic hashing embedder instead (tests/hash_embedder.py)."""
    import numpy as np

    if FAST:
        from hash_embedder import HashEmbedder

        yield HashEmbedder()
        return

    from ragtide import Embedder

    class Remembering(Embedder):
        def __init__(self) -> None:
            super().__init__()
            self.seen: dict[str, np.ndarray] = {}

        async def embed(self, texts, *, query=False):
            if query:
                return await super().embed(texts, query=True)
            missing = [t for t in dict.fromkeys(texts) if t not in self.seen]
            if missing:
                self.seen.update(zip(missing, await super().embed(missing)))
            return np.stack([self.seen[t] for t in texts]) if texts else await super().embed(texts)

    emb = Remembering()
    yield emb
    emb.close()


@pytest.fixture(scope="session")
def lite_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("lite")


@pytest.fixture(scope="session", params=["lite", "server"])
def backend(request, lite_dir) -> str:
    """The Milvus URI of each backend under test."""
    if request.param == "server":
        if not SERVER_URI:
            pytest.skip("no Milvus server: run `make test`, or set RAGTIDE_TEST_SERVER_URI")
        return SERVER_URI
    return str(lite_dir / "ragtide.db")


def new_collection() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def collection(backend):
    """A fresh, empty collection name, dropped afterwards."""
    name = new_collection()
    yield name
    drop(backend, name)


def drop(uri: str, name: str) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    if client.has_collection(name):
        client.drop_collection(name)
    client.close()


@pytest.fixture
def rag(backend, collection, embedder):
    from ragtide import RAG

    with RAG(uri=backend, collection=collection, embedder=embedder) as r:
        yield r


@pytest.fixture(scope="session")
def corpus(backend, embedder):
    """Both tutorial documents ingested once per backend: (uri, collection, report)."""
    from ragtide import RAG

    name = new_collection()
    with RAG(uri=backend, collection=name, embedder=embedder) as r:
        report = r.ingest([ESSAY, UBER])
    yield backend, name, report
    drop(backend, name)
