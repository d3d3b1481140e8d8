"""The engine: :class:`RAG`, the face of ragtide.

Every operation is async at heart and has a sync twin. Both run on the engine's
private loop (see :mod:`ragtide._loop`), so the sync twins also work inside a running
event loop (Jupyter, FastAPI) and the async ones from any loop. The parts the work
needs (store, model, retriever, LLM) are made and closed by :class:`~ragtide.parts.Parts`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import filters
from . import ingest as ingesting
from . import query as querying
from ._loop import LoopThread
from .documents import Document, Source
from .embedding import Embedder
from .errors import ConfigError, LLMError
from .filters import Filter
from .ingest import IngestReport, Input, ProgressCallback
from .ingest.distributed import RayOptions, check_target, ingest_on_ray
from .parts import Parts
from .query import Answer, Retrieval
from .query.conversation import Turn, condense, offline_standalone, refers_back, turns
from .query.extract import unit_texts
from .sentences import Units
from .settings import Settings
from .store import CollectionInfo, DocumentInfo, Store
from .vocabulary import Consistency, Mode, check_tenant


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
        tenant: str | None = None,
        **options: Any,
    ) -> None:
        given = dict(uri=uri, collection=collection, token=token, embed_model=embed_model, **options)
        self._parts = Parts(
            settings.replace(**given) if settings else Settings.load(**given), embedder=embedder, store=store
        )
        self._runner = LoopThread()
        self._tenant = tenant
        self._view = False  # a view made by for_tenant: shares this engine's parts, closes nothing
        if tenant is not None:
            check_tenant(tenant)

    def for_tenant(self, tenant: str | None) -> RAG:
        """This engine as ``tenant`` uses it: the same model, connection and collection, but
        only that tenant's documents found, listed, written and deleted (None: every tenant's,
        as an administrator sees them). Closing a view closes nothing; closing the engine
        ends its views too."""
        if tenant is not None:
            check_tenant(tenant)
        view = copy.copy(self)
        view._tenant, view._view = tenant, True
        return view

    @property
    def tenant(self) -> str | None:
        """Whose documents this engine sees (None: every tenant's, or a collection without tenants)."""
        return self._tenant

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
        """Finish pending writes and release connections and the model (a tenant's view:
        nothing; the engine it came from owns them)."""
        if self._view:
            return
        await self._runner.arun(self._parts.aclose())
        self._parts.close()
        self._runner.close()

    def close(self) -> None:
        """Sync twin of :meth:`aclose`."""
        if self._view:
            return
        self._runner.run(self._parts.aclose())
        self._parts.close()
        self._runner.close()

    def store(self) -> Store:
        """The vector store this engine reads and writes (scoped to its tenant, if it has one)."""
        return self._scoped(self._parts.store())

    def _scoped(self, store: Store) -> Store:
        return store if self._tenant is None else store.scoped(self._tenant)

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
        ray: RayOptions | str | None = None,
    ) -> IngestReport:
        """Load, chunk, embed and store files, directories or :class:`Document` objects.

        Unchanged documents are skipped, changed ones replaced; with ``prune``, documents
        whose files are gone (under the given directories) are deleted. One bad file never
        stops the others: see ``report.failed``. ``max_chunks`` bounds the run; ``metadata``
        (``{"team": "legal"}``) goes with every document, usable in filters. ``ray`` (an
        address, ``"local"``, or :class:`RayOptions`) runs the stages on Ray Data instead of
        in this process, for files and object-storage URIs into a Milvus server.
        """
        return await self._runner.arun(
            self._ingest(list(paths), include, exclude, prune, on_progress, max_chunks, metadata, ray)
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
        ray: RayOptions | str | None = None,
    ) -> IngestReport:
        """Sync twin of :meth:`aingest`."""
        return self._runner.run(
            self._ingest(list(paths), include, exclude, prune, on_progress, max_chunks, metadata, ray)
        )

    @property
    def _units(self) -> Units | None:
        """What ingest stores vectors of with each chunk: its answer units, unless turned off."""
        return unit_texts if self.settings.sentence_vectors else None

    async def _ingest(
        self,
        paths: list[Input],
        include: Sequence[str],
        exclude: Sequence[str],
        prune: bool,
        on_progress: ProgressCallback | None,
        max_chunks: int | None,
        metadata: Mapping[str, Any] | None,
        ray: RayOptions | str | None = None,
    ) -> IngestReport:
        if ray is not None:
            if max_chunks is not None or any(isinstance(p, Document) for p in paths):
                raise ConfigError("an ingest on Ray takes files and URIs, without max_chunks")
            check_target(self.settings.uri)  # before anything opens the database
            return await ingest_on_ray(
                self.store(),
                await self._parts.embedder(),
                self.settings,
                [str(p) for p in paths],
                RayOptions(ray) if isinstance(ray, str) else ray,
                include=include,
                exclude=exclude,
                prune=prune,
                on_progress=on_progress,
                metadata=metadata,
                units=self._units,
            )
        embedder = await self._parts.embedder()
        return await ingesting.ingest(
            self.store(),
            embedder,
            self.settings,
            paths,
            include=include,
            exclude=exclude,
            prune=prune,
            on_progress=on_progress,
            max_chunks=max_chunks,
            metadata=metadata,
            units=self._units,
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
        self,
        question: str,
        top_k: int | None,
        filter: str | Filter | None,
        consistency: str | None,
        mode: str | None,
        for_answer: bool = False,
    ) -> Retrieval:
        if not question or not question.strip():
            raise ConfigError("question: must not be empty")
        where = filters.expression(filter)  # before any work: a bad filter costs nothing
        retriever = await self._parts.retriever()
        if self._tenant is not None:
            retriever = retriever.scoped(self._tenant)
        k = top_k if top_k is not None else self.settings.top_k
        return await retriever.retrieve(
            question,
            k,
            mode=mode or self.settings.mode or None,
            filter=where,
            consistency=consistency,
            sentences=for_answer,
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
        history: History | None = None,
    ) -> Answer:
        """Answer ``question`` from the collection.

        With an LLM configured (``llm_base_url``/``llm_model``) the LLM writes the answer;
        otherwise the sentences of the passages that answer it are quoted, cited. With
        ``stream=True`` the answer comes back at once, its text arriving as you iterate it.
        ``history``, the conversation so far (:class:`Turn` or ``{"role", "content"}``
        mappings, oldest first), makes a follow-up ("and the trusted one?") stand alone
        before it is searched (see :mod:`ragtide.query.conversation`).
        """
        answer = await self._runner.arun(self._query(question, top_k, filter, consistency, mode, history))
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
        history: History | None = None,
    ) -> Answer:
        """Sync twin of :meth:`aquery`."""
        answer = self._runner.run(self._query(question, top_k, filter, consistency, mode, history))
        if not stream:
            for _ in answer:
                pass
        return answer

    async def _query(
        self,
        question: str,
        top_k: int | None,
        filter: str | Filter | None,
        consistency: str | None,
        mode: str | None,
        history: History | None = None,
    ) -> Answer:
        started = time.perf_counter()
        if not question or not question.strip():
            raise ConfigError("question: must not be empty")
        past = turns(history)
        searched, note = await self._standalone(question.strip(), past)
        condensed = time.perf_counter() - started
        found = await self._retrieve(searched, top_k, filter, consistency, mode, for_answer=True)
        answer = querying.answer(
            question,
            found,
            embedder=await self._parts.embedder(),
            llm=self._parts.llm(),
            runner=self._runner,
            started=started,
            abstain_below=self.settings.abstain_below,
            searched=searched,
        )
        if answer.searched and self._parts.llm() is not None and note is None:
            answer.timings["condense"] = condensed
        if note:
            answer.notes.append(note)
        return answer

    async def _standalone(self, question: str, history: list[Turn]) -> tuple[str, str | None]:
        """The question to search for: as asked, or, after earlier turns, made to stand alone
        (by the LLM when there is one and the question refers back; else offline). The
        second value says why the LLM's rewrite was not used, if it failed."""
        if not history:
            return question, None
        llm = self._parts.llm()
        if llm is None or not refers_back(question):
            return offline_standalone(question, history), None
        try:
            return await condense(question, history, llm), None
        except LLMError as e:
            return offline_standalone(question, history), f"follow-up read without the LLM ({e})"

    async def achat(self, messages: History, **options: Any) -> Answer:
        """Answer the last user message of ``messages`` (OpenAI's shape: ``[{"role": "user",
        "content": ...}, {"role": "assistant", ...}, ...]``), the earlier ones its history.
        ``options`` as for :meth:`aquery`."""
        question, history = _last_question(messages)
        return await self.aquery(question, history=history, **options)

    def chat(self, messages: History, **options: Any) -> Answer:
        """Sync twin of :meth:`achat`."""
        question, history = _last_question(messages)
        return self.query(question, history=history, **options)

    def conversation(self) -> Conversation:
        """A :class:`Conversation` over this collection: ask, then ask follow-ups."""
        return Conversation(self)

    # -- managing the collection -----------------------------------------------------

    async def adelete(self, doc: str) -> int:
        """Delete a document by its path, its key or its id; a directory deletes every document under it."""
        return await self._runner.arun(self._delete(doc))

    def delete(self, doc: str) -> int:
        """Sync twin of :meth:`adelete`."""
        return self._runner.run(self._delete(doc))

    async def _delete(self, doc: str) -> int:
        store, _ = await self._parts.opened()
        return await ingesting.delete(self._scoped(store), doc)

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

    async def achunks(self) -> int:
        """How many chunks this engine's documents take (its tenant's, for a tenant's engine),
        counted by Milvus: cheap at any size."""
        return await self._runner.arun(self._chunks())

    def chunks(self) -> int:
        """Sync twin of :meth:`achunks`."""
        return self._runner.run(self._chunks())

    async def _chunks(self) -> int:
        return await self.store().chunks() if self.has_database() else 0

    async def acollections(self) -> list[str]:
        """Names of the collections at this URI."""
        return await self._runner.arun(self._collections())

    def collections(self) -> list[str]:
        """Sync twin of :meth:`acollections`."""
        return self._runner.run(self._collections())

    async def _collections(self) -> list[str]:
        return await self.store().collections() if self.has_database() else []


History = Sequence[Turn | Mapping[str, object]]


def _last_question(messages: History) -> tuple[str, list[Turn]]:
    parsed = turns(messages)
    if not parsed or parsed[-1].role != "user":
        raise ConfigError("messages: the last message must be the user's question")
    return parsed[-1].text, parsed[:-1]


class Conversation:
    """Questions and their follow-ups, each answered with the turns before it.

    >>> chat = rag.conversation()
    >>> chat.ask("Which certificate authorities does Debian trust?").text
    >>> chat.ask("How do I change that?").text   # "that" is read with the question before

    :attr:`turns` is the conversation so far, oldest first (a streamed answer's text as read
    so far); :meth:`clear` starts a new one.
    """

    def __init__(self, rag: RAG) -> None:
        self._rag = rag
        self._asked: list[tuple[str, Answer]] = []

    @property
    def turns(self) -> list[Turn]:
        """The questions and their answers' texts, oldest first."""
        return [
            turn
            for question, answer in self._asked
            for turn in (Turn("user", question), Turn("assistant", answer.text))
        ]

    async def aask(self, question: str, **options: Any) -> Answer:
        """Answer ``question`` read with the conversation so far; ``options`` as for :meth:`RAG.aquery`."""
        answer = await self._rag.aquery(question, history=self.turns, **options)
        self._asked.append((question, answer))
        return answer

    def ask(self, question: str, **options: Any) -> Answer:
        """Sync twin of :meth:`aask`."""
        answer = self._rag.query(question, history=self.turns, **options)
        self._asked.append((question, answer))
        return answer

    def clear(self) -> None:
        """Forget the conversation: the next question starts a new one."""
        self._asked.clear()
