"""Retrieval: embed the question with the collection's model, search Milvus."""

from __future__ import annotations

from .documents import Source
from .embedding import Embedder
from .store import Store


class Retriever:
    """Finds the passages most similar to a question.

    Questions asked concurrently are embedded in one batch and searched in one
    Milvus request (both layers coalesce), then each caller gets its own hits.
    """

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self._store = store
        self._embedder = embedder

    async def retrieve(
        self, question: str, top_k: int, *, filter: str = "", consistency: str | None = None
    ) -> list[Source]:
        vector = await self._embedder.embed_query(question)
        return await self._store.search(vector, top_k, filter=filter, consistency=consistency)
