"""Retrieval: dense, full-text (BM25) or hybrid search, then optional reranking.

Hybrid is the default wherever the collection has a full-text index: each leg fetches
``Fusion.candidates`` hits and ragtide fuses their scores (see
:class:`~ragtide.store.Fusion` for how, and README for the values chosen). A collection
without the index is searched dense only, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from .documents import Source
from .embedding import Embedder
from .errors import ConfigError
from .rerank import Reranker
from .store import MODES, CollectionInfo, Fusion, Store


@dataclass(frozen=True)
class Retrieval:
    """What a retrieval found, and how."""

    sources: list[Source]
    mode: str  # the mode used: "dense", "lexical" or "hybrid"
    note: str = ""  # why the mode used is not the one asked for, or how to get hybrid
    reranked_by: str = ""  # the cross-encoder that reordered the sources, if one did


class Retriever:
    """Finds the passages that answer a question.

    Questions asked concurrently are embedded in one batch and searched in one Milvus
    request (both layers coalesce), then each caller gets its own hits.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        collection: CollectionInfo,
        *,
        fusion: Fusion = Fusion(),
        reranker: Reranker | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._collection = collection
        self._fusion = fusion
        self._reranker = reranker

    def mode_for(self, asked: str | None) -> tuple[str, str]:
        """The mode to search with, and a note when it is not hybrid for want of an index."""
        if asked and asked not in MODES:
            raise ConfigError(f"mode: {asked!r} is not one of {', '.join(MODES)}")
        if self._collection.lexical:
            return asked or "hybrid", ""
        note = self._collection.note or "dense retrieval only: this collection has no full-text index"
        if asked and asked != "dense":
            raise ConfigError(f"mode {asked!r}: {note}")
        return "dense", note

    async def retrieve(
        self,
        question: str,
        top_k: int,
        *,
        mode: str | None = None,
        filter: str = "",
        consistency: str | None = None,
    ) -> Retrieval:
        mode, note = self.mode_for(mode)
        wanted = self._reranker.candidates(top_k) if self._reranker else top_k
        vector = None if mode == "lexical" else await self._embedder.embed_query(question)
        sources = await self._store.search(
            vector, wanted, text=question, mode=mode, filter=filter, consistency=consistency, fusion=self._fusion
        )
        if self._reranker is None:
            return Retrieval(sources, mode, note)
        return Retrieval(await self._reranker.rerank(question, sources, top_k), mode, note, self._reranker.name)
