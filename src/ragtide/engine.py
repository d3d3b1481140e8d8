"""The engine: :class:`RAG`, the face of ragtide.

Every operation is async at heart and has a sync twin. Both run on the engine's
private loop (see :mod:`ragtide._loop`), so the sync twins also work inside a running
event loop (Jupyter, FastAPI) and the async ones from any loop. The parts the work
needs (store, model, retriever, LLM) are made and closed by :class:`~ragtide.parts.Parts`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import filters
from . import ingest as ingesting
from . import query as querying
from ._loop import LoopThread
from .documents import Source
from .embedding import Embedder
from .errors import ConfigError
from .filters import Filter
from .ingest import IngestReport, Input, ProgressCallback
from .parts import Parts
from .query import Answer, Retrieval
from .settings import Settings
from .store import CollectionInfo, DocumentInfo, Store
from .vocabulary import Consistency, Mode


class RAG:
    """Ingest documents into Milvus and answer questions from them, with citations.

    >>> async with RAG(uri="./ragtide.db") as rag:
    ...     await rag.aingest(["docs/"])
    ...     answer = await rag.aquery("How do I configure the LLM?")
    ...     print(answer.text)

    Without ``async with``: ``rag = RAG(); rag.ingest(["docs/"]); rag.query("..."); rag.close()``.
    Arguments left as None come from ``RAGTIDE_*`` environment variables, then defaults
    (see :class:`Settings`).
    """

    def __init__(
        self,
        uri: str | None = None,
        collection: str | None = None,
        *,
        token: str | None = None,
        embed_model: str | None = None,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        store: Store | None = None,
        **options: Any,
    ) -> None:
        given = dict(uri=uri, collection=collection, token=token, embed_model=embed_model, **options)
        self._parts = Parts(
            settings.replace(**given) if settings else Settings.load(**given), embedder=embedder, store=store
        )
        self._runner = LoopThread()

    @property
    def settings(self) -> Settings:
        """What this engine was configured with."""
        return self._parts.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._parts.settings = settings

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> RAG:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> RAG:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def aclose(self) -> None:
        """Finish pending writes and release connections and the model."""
        await self._runner.arun(self._parts.aclose())
        self._parts.close()
        self._runner.close()

    def close(self) -> None:
        """Sync twin of :meth:`aclose`."""
        self._runner.run(self._parts.aclose())
        self._parts.close()
        self._runner.close()

    def store(self) -> Store:
        """The vector store this engine reads and writes."""
        return self._parts.store()

    def has_database(self) -> bool:
        """False when the URI names a Milvus Lite file that does not exist yet (reading never creates it)."""
        return self._parts.has_database()

    async def embedder(self) -> Embedder:
        """The embedding model: the one asked for, else the collection's, else the default."""
        return await self._runner.arun(self._parts.embedder())

    # -- ingest ----------------------------------------------------------------------

    async def aingest(
        self,
        paths: Iterable[Input],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        prune: bool = False,
        on_progress: ProgressCallback | None = None,
        max_chunks: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> IngestReport:
        """Load, chunk, embed and store files, directories or :class:`Document` objects.

        Unchanged documents are skipped, changed ones replaced; with ``prune``, documents
        whose files are gone (under the given directories) are deleted. One bad file never
        stops the others: see ``report.failed``. ``max_chunks`` bounds the run; ``metadata``
        (``{"team": "legal"}``) goes with every document, usable in filters.
        """
        return await self._runner.arun(
            self._ingest(list(paths), include, exclude, prune, on_progress, max_chunks, metadata)
        )

    def ingest(
        self,
        paths: Iterable[Input],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        prune: bool = False,
        on_progress: ProgressCallback | None = None,
        max_chunks: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> IngestReport:
        """Sync twin of :meth:`aingest`."""
        return self._runner.run(self._ingest(list(paths), include, exclude, prune, on_progress, max_chunks, metadata))

    async def _ingest(
        self,
        paths: list[Input],
        include: Sequence[str],
        exclude: Sequence[str],
        prune: bool,
        on_progress: ProgressCallback | None,
        max_chunks: int | None,
        metadata: Mapping[str, Any] | None,
    ) -> IngestReport:
        embedder = await self._parts.embedder()
        return await ingesting.ingest(
            self._parts.store(),
            embedder,
            self.settings,
            paths,
            include=include,
            exclude=exclude,
            prune=prune,
            on_progress=on_progress,
            max_chunks=max_chunks,
            metadata=metadata,
        )

    # -- retrieval and answers -------------------------------------------------------

    async def aretrieve(
        self,
        question: str,
        *,
        top_k: int | None = None,
        filter: str | Filter | None = None,
        consistency: Consistency | None = None,
        mode: Mode | None = None,
    ) -> list[Source]:
        """The passages that best answer ``question``, best first.

        ``mode`` is "dense", "lexical" (BM25) or "hybrid"; by default hybrid where the
        collection has a full-text index, else dense. ``filter`` restricts the search:
        text in ragtide's filter language (``'metadata["type"] == "pdf" and page >= 40'``,
        see :mod:`ragtide.filters`), or a :class:`Filter`.
        """
        return (await self._runner.arun(self._retrieve(question, top_k, filter, consistency, mode))).sources

    def retrieve(
        self,
        question: str,
        *,
        top_k: int | None = None,
        filter: str | Filter | None = None,
        consistency: Consistency | None = None,
        mode: Mode | None = None,
    ) -> list[Source]:
        """Sync twin of :meth:`aretrieve`."""
        return self._runner.run(self._retrieve(question, top_k, filter, consistency, mode)).sources

    async def _retrieve(
        self, question: str, top_k: int | None, filter: str | Filter | None, consistency: str | None, mode: str | None
    ) -> Retrieval:
        if not question or not question.strip():
            raise ConfigError("question: must not be empty")
        where = filters.expression(filter)  # before any work: a bad filter costs nothing
        retriever = await self._parts.retriever()
        k = top_k if top_k is not None else self.settings.top_k
        return await retriever.retrieve(
            question, k, mode=mode or self.settings.mode or None, filter=where, consistency=consistency
        )

    async def aquery(
        self,
        question: str,
        *,
        top_k: int | None = None,
        filter: str | Filter | None = None,
        consistency: Consistency | None = None,
        mode: Mode | None = None,
        stream: bool = False,
    ) -> Answer:
        """Answer ``question`` from the collection.

        With an LLM configured (``llm_base_url``/``llm_model``) the LLM writes the answer;
        otherwise the sentences of the passages that answer it are quoted, cited. With
        ``stream=True`` the answer comes back at once, its text arriving as you iterate it.
        """
        answer = await self._runner.arun(self._query(question, top_k, filter, consistency, mode))
        if not stream:
            async for _ in answer:
                pass
        return answer

    def query(
        self,
        question: str,
        *,
        top_k: int | None = None,
        filter: str | Filter | None = None,
        consistency: Consistency | None = None,
        mode: Mode | None = None,
        stream: bool = False,
    ) -> Answer:
        """Sync twin of :meth:`aquery`."""
        answer = self._runner.run(self._query(question, top_k, filter, consistency, mode))
        if not stream:
            for _ in answer:
                pass
        return answer

    async def _query(
        self, question: str, top_k: int | None, filter: str | Filter | None, consistency: str | None, mode: str | None
    ) -> Answer:
        started = time.perf_counter()
        found = await self._retrieve(question, top_k, filter, consistency, mode)
        return querying.answer(
            question,
            found,
            embedder=await self._parts.embedder(),
            llm=self._parts.llm(),
            runner=self._runner,
            started=started,
            abstain_below=self.settings.abstain_below,
        )

    # -- managing the collection -----------------------------------------------------

    async def adelete(self, doc: str) -> int:
        """Delete a document by its path, its key or its id; a directory deletes every document under it."""
        return await self._runner.arun(self._delete(doc))

    def delete(self, doc: str) -> int:
        """Sync twin of :meth:`adelete`."""
        return self._runner.run(self._delete(doc))

    async def _delete(self, doc: str) -> int:
        store, _ = await self._parts.opened()
        return await ingesting.delete(store, doc)

    async def adocuments(self) -> dict[str, str]:
        """Every document in the collection: its id -> its source (path or key)."""
        return await self._runner.arun(self._documents())

    def documents(self) -> dict[str, str]:
        """Sync twin of :meth:`adocuments`."""
        return self._runner.run(self._documents())

    async def _documents(self) -> dict[str, str]:
        return {d.doc_id: d.source for d in await self._catalog()}

    async def acatalog(self) -> list[DocumentInfo]:
        """Every document in the collection with its format, pages, chunks, size, when it was
        ingested and its metadata, by source."""
        return await self._runner.arun(self._catalog())

    def catalog(self) -> list[DocumentInfo]:
        """Sync twin of :meth:`acatalog`."""
        return self._runner.run(self._catalog())

    async def _catalog(self) -> list[DocumentInfo]:
        if not self.has_database() or not await self.store().exists():
            return []
        return await self.store().catalog()

    async def astatus(self) -> CollectionInfo | None:
        """The collection's model, dimension, counts, retrieval modes and partly stored
        documents (None if it, or the Milvus Lite file, does not exist)."""
        return await self._runner.arun(self._status())

    def status(self) -> CollectionInfo | None:
        """Sync twin of :meth:`astatus`."""
        return self._runner.run(self._status())

    async def _status(self) -> CollectionInfo | None:
        return await self.store().info() if self.has_database() else None

    async def acollections(self) -> list[str]:
        """Names of the collections at this URI."""
        return await self._runner.arun(self._collections())

    def collections(self) -> list[str]:
        """Sync twin of :meth:`acollections`."""
        return self._runner.run(self._collections())

    async def _collections(self) -> list[str]:
        return await self.store().collections() if self.has_database() else []
