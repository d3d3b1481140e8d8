"""The public API: what `import ragtide` offers, and the sync twins matching the async ones."""

from __future__ import annotations

import inspect

import pytest

import ragtide
from ragtide import RAG

PUBLIC = {
    "RAG", "Conversation", "Turn", "Answer", "Source", "Document", "Page", "Chunk", "Chunker", "Embedder", "MilvusStore", "Store",
    "CollectionInfo", "IngestReport", "Progress", "RayOptions", "Settings", "Filter", "load", "RagtideError", "ConfigError",
    "LoaderError",
    "EmbeddingError", "StoreError", "LLMError",
}  # fmt: skip


def test_the_public_names_are_pinned():
    assert set(ragtide.__all__) == PUBLIC
    assert all(hasattr(ragtide, name) for name in ragtide.__all__)


@pytest.mark.parametrize(
    "name", ["ingest", "retrieve", "query", "chat", "delete", "documents", "status", "chunks", "collections"]
)
def test_each_sync_twin_takes_what_its_async_twin_takes(name):
    sync, async_ = inspect.signature(getattr(RAG, name)), inspect.signature(getattr(RAG, f"a{name}"))
    assert sync.parameters == async_.parameters
    assert inspect.iscoroutinefunction(getattr(RAG, f"a{name}"))
    assert not inspect.iscoroutinefunction(getattr(RAG, name))


def test_every_error_is_a_ragtide_error():
    for name in ("ConfigError", "LoaderError", "EmbeddingError", "StoreError", "LLMError"):
        assert issubclass(getattr(ragtide, name), ragtide.RagtideError)
    from ragtide.errors import ChunkingError

    assert issubclass(ChunkingError, ragtide.RagtideError)
