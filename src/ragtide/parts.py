"""The engine's parts, made from :class:`Settings` when first needed and closed together:
the store, the embedding model, the retriever (with its reranker) and the LLM.

What the caller passed in (an embedder, a store) is the caller's to close; what is made
here is closed here. Parts are made on the engine's private loop: the Milvus client is
bound to the loop that first uses it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .embedding import Embedder, embedder_for
from .errors import StoreError
from .query import LLM, PhraseBoost, Reranker, Retriever
from .settings import DEFAULT_MODEL, Settings
from .store import CollectionInfo, Fusion, MilvusStore, Store, is_lite


class Parts:
    """Makes, keeps and closes the engine's parts (see the module's docstring)."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, store: Store | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._store = store
        self._owns_embedder = embedder is None
        self._owns_store = store is None
        self._embedder_lock: asyncio.Lock | None = None
        self._retriever: Retriever | None = None
        self._reranker: Reranker | None = None
        self._llm: LLM | None = None

    def store(self) -> Store:
        if self._store is None:
            s = self.settings
            self._store = MilvusStore(s.uri, s.collection, token=s.token, consistency=s.consistency, retry_s=s.retry_s)
        return self._store

    def has_database(self) -> bool:
        """False for a Milvus Lite file that is not there: reading must not create it."""
        uri = self.settings.uri
        return self._store is not None or not is_lite(uri) or Path(uri).expanduser().exists()

    def require_database(self) -> None:
        if not self.has_database():
            raise StoreError(f"no Milvus Lite database at {self.settings.uri}; ingest documents into it first")

    async def embedder(self) -> Embedder:
        """The embedding model: the one asked for, else the collection's, else the default."""
        if self._embedder is not None:
            return self._embedder
        if self._embedder_lock is None:
            self._embedder_lock = asyncio.Lock()
        async with self._embedder_lock:
            if self._embedder is None:
                s = self.settings
                model, quantize = s.embed_model, s.embed_quantize
                if not model or not quantize:
                    stored = await self.store().stored_model()
                    model = model or (stored[0] if stored else DEFAULT_MODEL)
                    quantize = quantize or (stored[2] if stored else "none")
                self._embedder = await asyncio.to_thread(embedder_for, s.replace(embed_model=model), quantize)
        return self._embedder

    async def opened(self) -> tuple[Store, CollectionInfo]:
        """The store with its existing collection opened, checked to match the embedder."""
        self.require_database()
        embedder = await self.embedder()
        store = self.store()
        return store, await store.open(embedder.name, embedder.dim, create=False, **embedder.space)

    async def retriever(self) -> Retriever:
        if self._retriever is None:
            store, collection = await self.opened()
            embedder = await self.embedder()
            s = self.settings
            if s.rerank_model and self._reranker is None:
                self._reranker = await asyncio.to_thread(
                    Reranker, s.rerank_model, pool=s.rerank_pool, device=s.embed_device
                )
            self._retriever = Retriever(
                store,
                embedder,
                collection,
                fusion=Fusion(s.fusion_candidates, s.fusion_dense_weight),
                phrases=PhraseBoost(s.fusion_phrase_weight),
                name_weight=s.fusion_name_weight,
                reranker=self._reranker,
            )
        return self._retriever

    def llm(self) -> LLM | None:
        """The LLM, if one is configured; None answers extractively."""
        s = self.settings
        if not s.llm_enabled:
            return None
        if self._llm is None:
            self._llm = LLM(s.llm_model, base_url=s.llm_base_url, api_key=s.llm_api_key, timeout=s.llm_timeout)
        return self._llm

    async def aclose(self) -> None:
        """Close what needs the loop: the store's client (after its pending writes), the LLM's."""
        if self._store is not None and self._owns_store:
            await self._store.close()
        if self._llm is not None:
            await self._llm.close()

    def close(self) -> None:
        """Close the rest, off the loop: the models' worker threads."""
        if self._embedder is not None and self._owns_embedder:
            self._embedder.close()
        if self._reranker is not None:
            self._reranker.close()
