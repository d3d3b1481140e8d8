"""A ragtide collection in Milvus: chunks with their document's identity and version."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from ..documents import Source
from ..errors import ConfigError, StoreError
from ..sentences import SentenceVectors
from ..vocabulary import MAX_HITS, MODES, Mode, check, check_hits, check_tenant
from . import schema
from .base import CollectionInfo, DocState, DocumentInfo, Fusion, Row
from .collection import MilvusCollection
from .values import quote

_BM25 = {"metric_type": "BM25"}


class MilvusStore:
    """A ragtide collection in Milvus.

    ``uri`` is a Milvus Lite file (``./ragtide.db``), a server (``http://host:19530``)
    or a Zilliz Cloud endpoint with ``token``. One client per store, reused. A new
    collection gets a full-text (BM25) index where the backend has one (Milvus Lite
    2.5, Milvus 2.5+, Zilliz Cloud) unless ``lexical=False``.
    """

    def __init__(
        self, uri: str = "./ragtide.db", collection: str = "ragtide", *, lexical: bool | None = None, **options: Any
    ) -> None:
        # Upsert, not insert: chunk ids are content hashes, and a retried or repeated
        # write must not leave duplicate rows.
        self._milvus = MilvusCollection(uri, collection, write="upsert", **options)
        self.uri = uri
        self.collection = collection
        self._lexical = lexical
        self._held_rows = False  # whether the collection was seen holding a row (see _text_hits)
        self._layout: schema.Layout | None = None
        self._note = ""
        self._open_lock: asyncio.Lock | None = None
        self._deployment = self._milvus.deployment
        self.tenant: str | None = None  # whose rows this store reads and writes (None: every tenant's)

    def scoped(self, tenant: str) -> MilvusStore:
        """This collection as ``tenant`` sees it: its searches, listings and deletes reach only
        that tenant's rows, and what it writes is that tenant's. Shares this store's client."""
        check_tenant(tenant)
        view = copy.copy(self)
        view.tenant = tenant
        return view

    async def _scope(self, expr: str) -> str:
        """``expr`` restricted to this store's tenant, by a clause outside it."""
        if self.tenant is None:
            return expr
        layout = self._layout or await self._read_layout()
        if not layout.tenants:
            raise ConfigError(
                f"collection {self.collection!r} was made before tenants (ragtide 2026-12-01 or earlier) and has "
                "no tenant field; keys with a tenant need a collection made now: ingest into a new --collection"
            )
        clause = f"{schema.TENANT_FIELD} == {quote(self.tenant)}"
        return f"({expr}) and {clause}" if expr else clause

    # -- the collection --------------------------------------------------------------

    async def collections(self) -> list[str]:
        return sorted(await self._milvus.call("list_collections"))

    async def exists(self) -> bool:
        return await self._milvus.exists()

    async def info(self) -> CollectionInfo | None:
        """The collection's model, dimension, counts, and the documents only partly stored; None if it does not exist."""
        if not await self._milvus.exists():
            return None
        layout = await self._read_layout()
        rows = await self._milvus.query_all(await self._scope(""), ["doc_id", "doc_hash", "n_chunks", "source"])
        documents, incomplete = _inventory(rows)
        return CollectionInfo(
            self.collection,
            layout.model,
            layout.dim,
            len(rows),
            documents,
            layout.lexical,
            incomplete,
            await self._dense_only_note(layout),
            layout.quantize,
            layout.backend,
            layout.sentences,
        )

    async def chunks(self) -> int:
        """How many chunks the collection holds (this store's tenant's, if it has one); 0 if it does not exist."""
        if not await self._milvus.exists():
            return 0
        return await self._milvus.count(await self._scope(""))

    async def stored_model(self) -> tuple[str, int, str] | None:
        """The (model, dimension, quantization) the collection was built with; None if it does not exist."""
        if not await self._milvus.exists():
            return None
        layout = await self._read_layout()
        return layout.model, layout.dim, layout.quantize

    async def _read_layout(self) -> schema.Layout:
        desc = await self._milvus.call("describe_collection", self.collection)
        return schema.Layout.read(desc, self.collection, self.uri)

    async def open(
        self, model: str, dim: int, *, create: bool = True, quantize: str = "none", backend: str = ""
    ) -> CollectionInfo:
        """Create the collection for ``model`` or check that it was built with it."""
        if self._layout is None:
            if self._open_lock is None:
                self._open_lock = asyncio.Lock()
            async with self._open_lock:
                if self._layout is None:
                    self._layout = await self._open(model, dim, create, quantize, backend)
        self._layout.check(self.collection, model, dim, quantize)
        layout = self._layout
        return CollectionInfo(
            self.collection,
            layout.model,
            layout.dim,
            lexical=layout.lexical,
            note=self._note,
            quantize=layout.quantize,
            embedded_with=layout.backend,
            sentences=layout.sentences,
        )

    async def _open(self, model: str, dim: int, create: bool, quantize: str, backend: str) -> schema.Layout:
        if await self._milvus.exists():
            found = await self._read_layout()
            found.check(self.collection, model, dim, quantize)
            await self._deployment.load(self._milvus.call, self.collection)
            self._note = await self._dense_only_note(found)
            return found
        if not create:
            raise StoreError(f"collection {self.collection!r} does not exist at {self.uri}; ingest documents first")
        lexical, why_not = await self._full_text()
        if self._lexical is not None:
            lexical = lexical and self._lexical
        layout = schema.Layout(model, dim, lexical, quantize=quantize, backend=backend)
        self._note = why_not
        await self._create(layout)
        return layout

    async def _full_text(self) -> tuple[bool, str]:
        """Whether the backend computes BM25 itself, and if not, why."""
        return await self._deployment.full_text(self._milvus.call)

    async def _dense_only_note(self, layout: schema.Layout) -> str:
        if layout.lexical:
            return ""
        supported, why_not = await self._full_text()
        if not supported:
            return why_not
        return (
            f"dense retrieval only: collection {self.collection!r} was created without a full-text index; "
            "ingest the documents into a new collection (`ragtide ingest PATH --collection NEW`) "
            "for hybrid retrieval"
        )

    async def _create(self, layout: schema.Layout) -> None:
        partition_key = await self._deployment.partition_key(self._milvus.call)
        fields, index = schema.build(layout, self._deployment.index(), partition_key)
        try:
            await self._milvus.call(
                "create_collection", self.collection, schema=fields, index_params=index, consistency_level="Session"
            )
        except StoreError:
            if await self._milvus.exists():  # another process won the race
                return
            raise

    async def close(self) -> None:
        await self._milvus.close()

    # -- writes ----------------------------------------------------------------------

    async def write(self, rows: Sequence[Row]) -> None:
        """Upsert rows; concurrent writes share requests. Returns once Milvus acknowledged."""
        sizes = [row.nbytes for row in rows]
        self._deployment.check_space(sum(sizes))
        entities = [row.to_entity() for row in rows]
        if self._layout is not None and self._layout.sentences:
            for entity, row in zip(entities, rows):
                entity[schema.SENTENCES_FIELD] = row.sentences.encoded
        if self._layout is not None and self._layout.tenants:
            for entity in entities:
                entity[schema.TENANT_FIELD] = self.tenant or ""
        else:
            await self._scope("")  # a tenant's rows go only where the field is: else this says why
        await self._milvus.write(entities, sizes)

    async def delete_stale(self, doc_id: str, doc_hash: str) -> None:
        """Remove the rows of ``doc_id`` that belong to any other version than ``doc_hash``."""
        await self._milvus.delete(await self._scope(f"doc_id == {quote(doc_id)} and doc_hash != {quote(doc_hash)}"))

    async def confirm(self) -> None:
        """Raise StoreError if rows acknowledged since the last call may not be stored.

        A server's acknowledgement means the rows are in its write-ahead log. Milvus Lite
        2.5.1 acknowledges writes it failed to store when its disk is full, and still finds
        the rows until it restarts; it says so only in its log ("database or disk is full"),
        when it can still write that. :meth:`write` keeps free space; this reads the log.
        """
        if trouble := self._deployment.lost_writes():
            raise StoreError(
                f"Milvus Lite at {self.uri} did not store rows it acknowledged: its log says "
                f"{trouble!r}{self._deployment.disk_note()}"
            )

    async def delete_version(self, doc_id: str, doc_hash: str) -> None:
        """Remove the rows of one version of ``doc_id`` (what a failed ingest wrote of it)."""
        await self._milvus.delete(await self._scope(f"doc_id == {quote(doc_id)} and doc_hash == {quote(doc_hash)}"))

    async def delete_docs(self, doc_ids: Sequence[str]) -> int:
        """Remove every row of these documents. Returns how many documents had rows."""
        if not doc_ids:
            return 0
        present = await self.doc_states(doc_ids)
        for i in range(0, len(doc_ids), 500):
            await self._milvus.delete(
                await self._scope(f"doc_id in [{', '.join(quote(d) for d in doc_ids[i : i + 500])}]")
            )
        return len(present)

    # -- reads -----------------------------------------------------------------------

    async def search(
        self,
        vector: np.ndarray | None,
        top_k: int,
        *,
        text: str = "",
        mode: Mode = "dense",
        filter: str = "",
        consistency: str | None = None,
        fusion: Fusion = Fusion(),
        sentences: bool = False,
    ) -> list[Source]:
        """The ``top_k`` best chunks for ``vector`` (dense), ``text`` (lexical) or both
        (hybrid), with their sentences' vectors where stored if ``sentences`` (for an
        answer); concurrent calls share one request."""
        check_hits("top_k", top_k)
        check("mode", mode, MODES)
        filter = await self._scope(filter)
        fields = self._output_fields(sentences)
        if mode != "dense":
            if self._layout is not None and not self._layout.lexical:
                raise ConfigError(f"mode {mode!r}: {self._note or 'this collection has no full-text index'}")
            if not text.strip():
                raise ConfigError(f"mode {mode!r} needs the question's text")
        data: np.ndarray | str
        if mode == "lexical":
            data, field, params = text, schema.SPARSE_FIELD, _BM25
        else:
            data = np.asarray(vector, dtype=np.float32).reshape(-1)
            if self._layout is not None and data.shape[0] != self._layout.dim:
                raise ConfigError(
                    f"query vector has {data.shape[0]} dimensions, collection {self.collection!r} has {self._layout.dim}"
                )
            if mode == "hybrid":
                hits = await self._hybrid(data, text, top_k, fusion, fields, filter=filter, consistency=consistency)
                return [_to_source(hit) for hit in hits]
            field, params = schema.DENSE_FIELD, None

        def search() -> Awaitable[list[dict[str, Any]]]:
            return self._milvus.search(
                data,
                top_k,
                anns_field=field,
                search_params=params,
                filter=filter,
                output_fields=fields,
                consistency=consistency,
            )

        hits = await (self._text_hits(search) if mode == "lexical" else search())
        return [_to_source(hit) for hit in hits]

    def _output_fields(self, sentences: bool) -> list[str]:
        if sentences and self._layout is not None and self._layout.sentences:
            return [*schema.OUTPUT_FIELDS, schema.SENTENCES_FIELD]
        return schema.OUTPUT_FIELDS

    async def _text_hits(self, search: Callable[[], Awaitable[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
        """A full-text search's hits. Milvus Lite 2.5.1 fails one on a collection that never
        held a row (its BM25 statistics divide by zero: "Invalid sparse row: NaN"), so until
        the collection is seen holding one, it is counted first."""
        if not self._held_rows:
            self._held_rows = await self._milvus.count("") > 0
            if not self._held_rows:
                return []
        return await search()

    async def _hybrid(
        self,
        vector: np.ndarray,
        text: str,
        top_k: int,
        fusion: Fusion,
        fields: list[str],
        *,
        filter: str,
        consistency: str | None,
    ) -> list[dict[str, Any]]:
        """Both legs as plain searches (each coalesced with other callers' searches), fused
        here, then the winners' fields fetched. Milvus's own multi-query ``hybrid_search``
        is not used: on Milvus Lite 2.5.1, a request carrying several questions returned
        other rankings than the same questions asked one at a time (37 of the dev set's 46
        differed), and coalescing needs several questions per request."""
        leg_limit = min(fusion.leg_limit(top_k), MAX_HITS)
        dense, lexical = await asyncio.gather(
            self._milvus.search(
                vector, leg_limit, anns_field=schema.DENSE_FIELD, filter=filter, consistency=consistency
            ),
            self._text_hits(
                lambda: self._milvus.search(
                    text,
                    leg_limit,
                    anns_field=schema.SPARSE_FIELD,
                    search_params=_BM25,
                    filter=filter,
                    consistency=consistency,
                )
            ),
        )
        fused = fusion.fuse(
            [(hit["id"], hit["distance"]) for hit in dense], [(hit["id"], hit["distance"]) for hit in lexical], top_k
        )
        if not fused:
            return []
        rows = await self._milvus.call(
            "query",
            self.collection,
            filter=f"id in [{', '.join(quote(i) for i, _ in fused)}]",
            output_fields=fields,
            **self._milvus.read_kwargs(consistency),
        )
        found = {row["id"]: row for row in rows}
        return [{"id": i, "distance": score, "entity": found[i]} for i, score in fused if i in found]

    async def doc_states(self, doc_ids: Sequence[str]) -> dict[str, DocState]:
        """For each document present, the version it holds and whether all its chunks are there."""
        counts: dict[tuple[str, str], list[int]] = {}
        for i in range(0, len(doc_ids), 200):
            expr = await self._scope(f"doc_id in [{', '.join(quote(d) for d in doc_ids[i : i + 200])}]")
            for row in await self._milvus.query_all(expr, ["doc_id", "doc_hash", "n_chunks"]):
                entry = counts.setdefault((row["doc_id"], row["doc_hash"]), [0, int(row["n_chunks"])])
                entry[0] += 1
        states: dict[str, DocState] = {}
        for (doc_id, doc_hash), (n, expected) in counts.items():
            # Several versions mean an interrupted update: report it as incomplete.
            states[doc_id] = (
                DocState(doc_hash, n, expected) if doc_id not in states else DocState(doc_hash, -1, expected)
            )
        return states

    async def catalog(self) -> list[DocumentInfo]:
        """Every document whose first chunk is stored: its source, chunks and metadata, by source."""
        rows = await self._milvus.query_all(
            await self._scope("chunk_index == 0"), ["doc_id", "source", "n_chunks", "metadata"]
        )
        found = [
            DocumentInfo(r["doc_id"], r["source"], int(r["n_chunks"]), dict(r.get("metadata") or {})) for r in rows
        ]
        return sorted(found, key=lambda d: d.source)

    async def documents(self) -> dict[str, str]:
        """doc_id -> source of every document in the collection."""
        rows = await self._milvus.query_all(await self._scope("chunk_index == 0"), ["doc_id", "source"])
        return {row["doc_id"]: row["source"] for row in rows}


def _to_source(hit: dict[str, Any]) -> Source:
    entity = hit.get("entity", hit)
    page = entity.get("page", -1)
    return Source(
        id=str(hit.get("id", entity.get("id"))),
        text=entity.get("text", ""),
        source=entity.get("source", ""),
        score=float(hit.get("distance", 0.0)),
        page=None if page is None or page < 0 else int(page),
        chunk_index=int(entity.get("chunk_index", 0)),
        metadata=entity.get("metadata") or {},
        start=int(entity.get("start", 0)),
        end=int(entity.get("end", 0)),
        sentences=SentenceVectors(entity.get(schema.SENTENCES_FIELD) or ""),
    )


def _inventory(rows: list[dict[str, Any]]) -> tuple[int, dict[str, str]]:
    """From every row's (doc_id, doc_hash, n_chunks, source): how many documents are stored
    whole, and what is missing of the others, by source."""
    versions: dict[str, dict[str, list[int]]] = {}
    sources: dict[str, str] = {}
    for row in rows:
        counts = versions.setdefault(row["doc_id"], {}).setdefault(row["doc_hash"], [0, int(row["n_chunks"])])
        counts[0] += 1
        sources[row["doc_id"]] = row["source"]
    incomplete = {}
    for doc_id, by_hash in versions.items():
        if len(by_hash) > 1:
            incomplete[sources[doc_id]] = f"{len(by_hash)} versions mixed (an interrupted update; ingest it again)"
        else:
            ((have, expected),) = by_hash.values()
            if have != expected:
                incomplete[sources[doc_id]] = f"{have} of {expected} chunks (an interrupted ingest; ingest it again)"
    return len(versions) - len(incomplete), incomplete
