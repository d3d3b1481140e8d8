"""The engine: :class:`RAG` ties loaders, chunking, embedding, the store and answers together.

Every operation is async at heart and has a sync twin. Both run on the engine's
private loop (see :mod:`ragtide._loop`), so the sync twins also work inside a running
event loop (Jupyter, FastAPI) and the async ones from any loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Sequence

from ._loop import LoopThread
from .answer import Answer, build_messages
from .chunking import Chunker
from .documents import Source, digest
from .embedding import Embedder
from .errors import ConfigError, LLMError, StoreError
from .extract import extractive_answer
from .ingest import Input, IngestReport, Pipeline, ProgressCallback
from .llm import LLM
from .rerank import Reranker
from .retrieve import PhraseBoost, Retrieval, Retriever
from .settings import DEFAULT_MODEL, Settings
from .store import CollectionInfo, Fusion, MilvusStore, Store, is_lite


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
        self.settings = settings.replace(**given) if settings else Settings.load(**given)
        self._runner = LoopThread()
        self._embedder = embedder
        self._store = store
        # What the caller passed in is theirs to close; what we build is ours.
        self._owns_embedder = embedder is None
        self._owns_store = store is None
        self._llm: LLM | None = None
        self._reranker: Reranker | None = None
        self._retriever: Retriever | None = None
        self._embedder_lock: asyncio.Lock | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> "RAG":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> "RAG":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def aclose(self) -> None:
        """Finish pending writes and release connections and the model."""
        await self._runner.arun(self._close())
        self._shutdown()

    def close(self) -> None:
        self._runner.run(self._close())
        self._shutdown()

    async def _close(self) -> None:
        if self._store is not None and self._owns_store:
            await self._store.close()
        if self._llm is not None:
            await self._llm.close()

    def _shutdown(self) -> None:
        if self._embedder is not None and self._owns_embedder:
            self._embedder.close()
        if self._reranker is not None:
            self._reranker.close()
        self._runner.close()

    # -- parts, built on the private loop when first needed --------------------------

    def store(self) -> Store:
        if self._store is None:
            s = self.settings
            self._store = MilvusStore(s.uri, s.collection, token=s.token, consistency=s.consistency, retry_s=s.retry_s)
        return self._store

    def _database_exists(self) -> bool:
        """False for a Milvus Lite file that is not there: reading must not create it."""
        return self._store is not None or not is_lite(self.settings.uri) or Path(self.settings.uri).expanduser().exists()

    def _require_database(self) -> None:
        if not self._database_exists():
            raise StoreError(f"no Milvus Lite database at {self.settings.uri}; ingest documents into it first")

    async def embedder(self) -> Embedder:
        """The embedding model: the one asked for, else the collection's, else the default."""
        return await self._runner.arun(self._get_embedder())

    async def _get_embedder(self) -> Embedder:
        # On the private loop: finding the collection's model opens the Milvus client, which
        # is bound to the loop that first uses it.
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
                self._embedder = await asyncio.to_thread(
                    Embedder, model, device=s.embed_device, batch_size=s.embed_batch_size,
                    backend=s.embed_backend, quantize=quantize, threads=s.embed_threads, cache_dir=s.cache_dir or None,
                )
        return self._embedder

    async def _open(self, *, create: bool) -> tuple[Store, Embedder]:
        if not create:
            self._require_database()
        embedder = await self._get_embedder()
        store = self.store()
        await store.open(embedder.name, embedder.dim, create=create, **_space(embedder))
        return store, embedder

    async def _get_retriever(self) -> Retriever:
        if self._retriever is None:
            store, embedder = await self._open(create=False)
            collection = await store.open(embedder.name, embedder.dim, create=False, **_space(embedder))
            s = self.settings
            if s.rerank_model and self._reranker is None:
                self._reranker = await asyncio.to_thread(Reranker, s.rerank_model, pool=s.rerank_pool, device=s.embed_device)
            self._retriever = Retriever(store, embedder, collection, fusion=Fusion(s.fusion_candidates, s.fusion_dense_weight),
                                        phrases=PhraseBoost(s.fusion_phrase_weight), reranker=self._reranker)
        return self._retriever

    # -- ingest ----------------------------------------------------------------------

    async def aingest(
        self,
        paths: Iterable[Input],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        prune: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Load, chunk, embed and store files, directories or :class:`Document` objects.

        Unchanged documents are skipped, changed ones replaced, and with ``prune``
        documents whose files are gone (under the given directories) are deleted.
        One bad file never stops the others: see ``report.failed``.
        """
        return await self._runner.arun(self._ingest(list(paths), include, exclude, prune, on_progress))

    def ingest(
        self,
        paths: Iterable[Input],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        prune: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Sync twin of :meth:`aingest`."""
        return self._runner.run(self._ingest(list(paths), include, exclude, prune, on_progress))

    async def _ingest(self, paths, include, exclude, prune, on_progress) -> IngestReport:
        embedder = await self._get_embedder()
        chunker = Chunker(embedder, self.settings.chunk_tokens, self.settings.chunk_overlap)
        store = self.store()
        creating = None
        if await store.stored_model() is None:
            # Creating a collection on a server takes seconds (schema, index, load):
            # parse and embed meanwhile; the pipeline writes nothing before it exists.
            creating = asyncio.create_task(store.open(embedder.name, embedder.dim, create=True, **_space(embedder)))
        else:
            await store.open(embedder.name, embedder.dim, create=True, **_space(embedder))
        max_bytes = int(self.settings.max_file_mb * 1024 * 1024)
        pipeline = Pipeline(store, embedder, chunker, on_progress=on_progress, creating=creating, max_file_bytes=max_bytes)
        return await pipeline.run(paths, include=include, exclude=exclude, prune=prune)

    # -- retrieval and answers -------------------------------------------------------

    async def aretrieve(
        self,
        question: str,
        *,
        top_k: int | None = None,
        filter: str | None = None,
        consistency: str | None = None,
        mode: str | None = None,
    ) -> list[Source]:
        """The passages that best answer ``question``, best first.

        ``mode`` is "dense", "lexical" (BM25) or "hybrid"; by default hybrid where the
        collection has a full-text index, else dense.
        """
        return (await self._runner.arun(self._retrieve(question, top_k, filter, consistency, mode))).sources

    def retrieve(
        self,
        question: str,
        *,
        top_k: int | None = None,
        filter: str | None = None,
        consistency: str | None = None,
        mode: str | None = None,
    ) -> list[Source]:
        """Sync twin of :meth:`aretrieve`."""
        return self._runner.run(self._retrieve(question, top_k, filter, consistency, mode)).sources

    async def _retrieve(self, question, top_k, filter, consistency, mode) -> Retrieval:
        if not question or not question.strip():
            raise ConfigError("question: must not be empty")
        retriever = await self._get_retriever()
        k = top_k if top_k is not None else self.settings.top_k
        return await retriever.retrieve(question, k, mode=mode or self.settings.mode or None, filter=filter or "",
                                        consistency=consistency)

    async def aquery(
        self,
        question: str,
        *,
        top_k: int | None = None,
        filter: str | None = None,
        consistency: str | None = None,
        mode: str | None = None,
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
        filter: str | None = None,
        consistency: str | None = None,
        mode: str | None = None,
        stream: bool = False,
    ) -> Answer:
        """Sync twin of :meth:`aquery`."""
        answer = self._runner.run(self._query(question, top_k, filter, consistency, mode))
        if not stream:
            for _ in answer:
                pass
        return answer

    async def _query(self, question, top_k, filter, consistency, mode) -> Answer:
        started = time.perf_counter()
        found = await self._retrieve(question, top_k, filter, consistency, mode)
        answer = Answer(question, found.sources, timings={"retrieve": time.perf_counter() - started},
                        retrieval=found.mode, notes=[found.note] if found.note else [], reranked_by=found.reranked_by)
        answer._runner = self._runner
        answer._tokens = self._generate(answer, started)
        return answer

    async def _generate(self, answer: Answer, started: float) -> AsyncIterator[str]:
        """Produce the answer's text on the private loop, filling ``answer`` as it goes."""
        generated = time.perf_counter()
        if self.settings.llm_enabled and answer.sources:
            answer.mode = "llm"
            try:
                async for delta in self._get_llm().stream(build_messages(answer.question, answer.sources)):
                    answer.timings.setdefault("first_token", time.perf_counter() - started)
                    answer.text += delta
                    yield delta
            except LLMError as e:
                answer.error = str(e)
                if answer.text:  # keep what the LLM said; say it was cut short
                    return
                answer.mode = "extractive"
            else:
                answer.timings["generate"] = time.perf_counter() - generated
                answer.timings["total"] = time.perf_counter() - started
                return
        answer.text = await extractive_answer(answer.question, answer.sources, await self._get_embedder())
        answer.timings["generate"] = time.perf_counter() - generated
        answer.timings["total"] = time.perf_counter() - started
        yield answer.text

    def _get_llm(self) -> LLM:
        if self._llm is None:
            s = self.settings
            self._llm = LLM(s.llm_model, base_url=s.llm_base_url, api_key=s.llm_api_key, timeout=s.llm_timeout)
        return self._llm

    # -- managing the collection -----------------------------------------------------

    async def adelete(self, doc: str) -> int:
        """Delete a document by its path, its key or its id; a directory deletes every document under it."""
        return await self._runner.arun(self._delete(doc))

    def delete(self, doc: str) -> int:
        """Sync twin of :meth:`adelete`."""
        return self._runner.run(self._delete(doc))

    async def _delete(self, doc: str) -> int:
        store, _ = await self._open(create=False)
        path = Path(doc).expanduser()
        ids = {digest(doc), digest(str(path.resolve()))}
        if re.fullmatch(r"[0-9a-f]{32}", doc):
            ids.add(doc)
        if path.is_dir() or doc.endswith(os.sep):
            base = path.resolve()
            ids |= {d for d, src in (await store.documents()).items() if base in Path(src).parents}
        return await store.delete_docs(sorted(ids))

    async def adocuments(self) -> dict[str, str]:
        """Every document in the collection: its id -> its source (path or key)."""
        return await self._runner.arun(self._documents())

    def documents(self) -> dict[str, str]:
        """Sync twin of :meth:`adocuments`."""
        return self._runner.run(self._documents())

    async def _documents(self) -> dict[str, str]:
        if not self._database_exists() or not await self.store().exists():
            return {}
        return await self.store().documents()

    async def astatus(self) -> CollectionInfo | None:
        """The collection's model, dimension, counts, retrieval modes and partly stored
        documents (None if it, or the Milvus Lite file, does not exist)."""
        return await self._runner.arun(self._status())

    def status(self) -> CollectionInfo | None:
        """Sync twin of :meth:`astatus`."""
        return self._runner.run(self._status())

    async def _status(self) -> CollectionInfo | None:
        return await self.store().info() if self._database_exists() else None

    async def acollections(self) -> list[str]:
        """Names of the collections at this URI."""
        return await self._runner.arun(self._collections())

    def collections(self) -> list[str]:
        """Sync twin of :meth:`acollections`."""
        return self._runner.run(self._collections())

    async def _collections(self) -> list[str]:
        return await self.store().collections() if self._database_exists() else []


def _space(embedder: Embedder) -> dict[str, str]:
    """What a collection records of how its vectors were made, besides the model."""
    return {"quantize": embedder.quantize, "backend": embedder.runs_on}
