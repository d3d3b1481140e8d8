"""A drop-in for LlamaIndex's ``MilvusVectorStore``, on ragtide's coalescing store.

Change one import and the tutorial's code runs unchanged::

    from ragtide.llama_index import MilvusVectorStore   # was: llama_index.vector_stores.milvus

    vector_store = MilvusVectorStore(uri="http://localhost:19530", dim=768, overwrite=True,
                                     similarity_metric="COSINE", consistency_level="Strong")
    await asyncio.gather(*(vector_store.async_add([node]) for node in nodes))  # one insert, not 1000

Concurrent ``async_add`` calls become one insert and concurrent ``aquery`` calls one
multi-vector search; hits never carry their vectors. It needs ``llama-index-core``
only (``pip install ragtide[llama-index]``), not ``llama-index-vector-stores-milvus``,
which pins pymilvus < 3.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from ._loop import LoopThread
from .errors import ConfigError
from .store import MilvusCollection, quote, varchar

_METRICS = ("IP", "L2", "COSINE")


class MilvusVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on Milvus Lite, a Milvus server or Zilliz Cloud."""

    stores_text: bool = True
    flat_metadata: bool = False

    uri: str = "./milvus_llamaindex.db"
    token: str = ""
    collection_name: str = "llamacollection"
    dim: int | None = None
    embedding_field: str = "embedding"
    id_field: str = "id"
    text_key: str = "text"
    doc_id_field: str = "doc_id"
    similarity_metric: str = "IP"
    consistency_level: str = "Session"
    overwrite: bool = False

    # Each read of a pydantic private attribute costs ~2 us (a failed lookup, then
    # pydantic's __getattr__), so the work lives in a plain object read once per call.
    _core: _Core = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        unknown = set(data) - set(type(self).model_fields)
        if unknown:
            raise ConfigError(f"MilvusVectorStore: unsupported argument(s) {', '.join(sorted(unknown))}")
        super().__init__(**data)
        if self.similarity_metric.upper() not in _METRICS:
            raise ConfigError(f"similarity_metric: {self.similarity_metric!r} is not one of {', '.join(_METRICS)}")
        self._core = _Core(self)

    @property
    def client(self) -> Any:
        return self._core.milvus

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return self._core.add(nodes)

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return await self._core.aadd(nodes)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return self._core.query(query)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await self._core.aquery(query)

    def delete(self, ref_doc_id: str, **kwargs: Any) -> None:
        self._core.runner.run(self._core.delete_doc(ref_doc_id))

    async def adelete(self, ref_doc_id: str, **kwargs: Any) -> None:
        await self._core.runner.arun(self._core.delete_doc(ref_doc_id))

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> None:
        self._core.runner.run(self._core.delete(self._core.expr(filters, node_ids=node_ids)))

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> None:
        await self._core.runner.arun(self._core.delete(self._core.expr(filters, node_ids=node_ids)))

    def clear(self) -> None:
        self._core.runner.run(self._core.clear())

    async def aclear(self) -> None:
        await self._core.runner.arun(self._core.clear())

    def close(self) -> None:
        self._core.close()


class _Core:
    """The drop-in's state and work.

    Async calls convert nodes and hits on the caller's loop and hand ragtide's loop only
    a batch slot (:meth:`LoopThread.asubmit`): a gathered thousand costs that loop no
    task or coroutine per call, only the merged requests.
    """

    def __init__(self, config: MilvusVectorStore) -> None:
        self.metric, self.consistency = config.similarity_metric.upper(), config.consistency_level
        self.id_field, self.doc_id_field, self.text_key = config.id_field, config.doc_id_field, config.text_key
        self.embedding_field, self.flat_metadata = config.embedding_field, config.flat_metadata
        self.output_fields = [self.text_key, self.doc_id_field, "metadata"]
        self.runner = LoopThread("ragtide-llama-index")
        # Insert, as LlamaIndex's own store does: node ids are the caller's, and adding a
        # node twice is the caller's choice to make.
        self.milvus = MilvusCollection(
            config.uri, config.collection_name, token=config.token, consistency=config.consistency_level, write="insert"
        )
        self.ready = False
        self._creating: asyncio.Future | None = None  # on ragtide's loop
        self.runner.run(self._setup(config.overwrite, config.dim))
        self.milvus.connect_blocking()  # as LlamaIndex's store does: the first sync call pays no connect

    async def _setup(self, overwrite: bool, dim: int | None) -> None:
        exists = await self.milvus.exists()
        if exists and overwrite:
            await self.milvus.call("drop_collection", self.milvus.name)
            exists = False
        if exists:
            await self.milvus.deployment.load(self.milvus.call, self.milvus.name)
            await self.milvus.prepare_writes()
            self.ready = True
        elif dim:
            await self._create(dim)

    async def _create(self, dim: int) -> None:
        from pymilvus import AsyncMilvusClient, DataType

        schema = AsyncMilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(self.id_field, DataType.VARCHAR, is_primary=True, max_length=512)
        schema.add_field(self.doc_id_field, DataType.VARCHAR, max_length=512)
        schema.add_field(self.text_key, DataType.VARCHAR, max_length=65535)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field(self.embedding_field, DataType.FLOAT_VECTOR, dim=dim)
        index = AsyncMilvusClient.prepare_index_params()
        index.add_index(self.embedding_field, metric_type=self.metric, **self.milvus.deployment.index())
        await self.milvus.call(
            "create_collection", self.milvus.name, schema=schema, index_params=index, consistency_level=self.consistency
        )
        await self.milvus.prepare_writes()
        self.ready = True

    async def _ensure_collection(self, dim: int) -> None:
        """Create the collection once, however many first adds race for it."""
        if self._creating is None:
            self._creating = asyncio.ensure_future(self._create(dim))
        try:
            await asyncio.shield(self._creating)
        except Exception:
            self._creating = None  # the next add tries again
            raise

    # -- writes ----------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode]) -> list[str]:
        if not (self.ready and nodes):
            return self.runner.run(self.aadd(nodes))
        entities = self.entities(nodes)
        if not self.milvus.write_now(entities):  # others are writing (or Lite): share their requests
            self.runner.run(self.milvus.write(entities, [self.weight(e) for e in entities]))
        return [node.node_id for node in nodes]

    async def aadd(self, nodes: Sequence[BaseNode]) -> list[str]:
        if not nodes:
            return []
        if not self.ready:
            await self.runner.arun(self._ensure_collection(len(nodes[0].get_embedding())))
        entities = self.entities(nodes)
        await self.runner.asubmit(self.milvus.write_soon, entities, [self.weight(e) for e in entities])
        return [node.node_id for node in nodes]

    def entities(self, nodes: Sequence[BaseNode]) -> list[dict[str, Any]]:
        entities = []
        for node in nodes:
            # A copy without the vector: node_to_metadata_dict would serialise it only to drop it.
            bare = node.model_copy(update={"embedding": None})
            metadata = node_to_metadata_dict(bare, remove_text=True, flat_metadata=self.flat_metadata)
            entities.append(
                {
                    self.id_field: node.node_id,
                    self.doc_id_field: node.ref_doc_id or "None",
                    self.text_key: varchar(node.get_content()),
                    "metadata": metadata,
                    self.embedding_field: node.get_embedding(),
                }
            )
        return entities

    def weight(self, entity: dict) -> int:
        """Roughly what an entity adds to a request, for the batch size bound."""
        node = entity["metadata"].get("_node_content", "")
        return 256 + 4 * len(entity[self.embedding_field]) + len(entity[self.text_key]) + len(node)

    async def delete_doc(self, ref_doc_id: str) -> None:
        await self.delete(f"{self.doc_id_field} == {quote(ref_doc_id)}")

    async def delete(self, expr: str) -> None:
        if self.ready and expr:
            await self.milvus.delete(expr)

    async def clear(self) -> None:
        await self.milvus.close()
        if await self.milvus.exists():
            await self.milvus.call("drop_collection", self.milvus.name)
        self.ready = False
        self._creating = None

    # -- reads -----------------------------------------------------------------------

    def query(self, query: VectorStoreQuery) -> VectorStoreQueryResult:
        search = self.search_options(query)
        if search is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        vector, top_k = np.asarray(query.query_embedding, dtype=np.float32), query.similarity_top_k
        hits = self.milvus.search_now(vector, top_k, **search)
        if hits is None:  # others are searching: share their requests
            hits = self.runner.run(self.milvus.search(vector, top_k, **search))
        return self.result(hits)

    async def aquery(self, query: VectorStoreQuery) -> VectorStoreQueryResult:
        search = self.search_options(query)
        if search is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        hits = await self.runner.asubmit(
            self.milvus.search_soon, query.query_embedding, query.similarity_top_k, **search
        )
        return self.result(hits)

    def search_options(self, query: VectorStoreQuery) -> dict | None:
        """The search options for ``query``; None when there is nothing to search yet."""
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise ConfigError(f"query mode {query.mode.value!r}: only dense vector search is supported")
        if query.query_embedding is None:
            raise ConfigError("query_embedding: required")
        if not self.ready:
            return None
        return {
            "filter": self.expr(query.filters, node_ids=query.node_ids, doc_ids=query.doc_ids),
            "output_fields": self.output_fields,
            "anns_field": self.embedding_field,
        }

    def result(self, hits: list[dict]) -> VectorStoreQueryResult:
        nodes, similarities, ids = [], [], []
        for hit in hits:
            entity = hit.get("entity", {})
            text = entity.get(self.text_key, "")
            metadata = entity.get("metadata") or {}
            try:
                node = metadata_dict_to_node(metadata, text=text)
            except Exception:  # rows written by other tools carry no serialised node
                node = TextNode(id_=str(hit["id"]), text=text, metadata=metadata)
            nodes.append(node)
            similarities.append(float(hit["distance"]))
            ids.append(str(hit["id"]))
        return VectorStoreQueryResult(nodes=nodes, similarities=similarities, ids=ids)

    def expr(self, filters: MetadataFilters | None, *, node_ids=None, doc_ids=None) -> str:
        parts = []
        if node_ids:
            parts.append(f"{self.id_field} in [{', '.join(quote(i) for i in node_ids)}]")
        if doc_ids:
            parts.append(f"{self.doc_id_field} in [{', '.join(quote(i) for i in doc_ids)}]")
        if filters is not None and filters.filters:
            parts.append(f"({_filters_expr(filters)})")
        return " and ".join(parts)

    def close(self) -> None:
        self.runner.run(self.milvus.close())
        self.runner.close()


def _values(value: object) -> list[Any]:
    return list(cast(Iterable[Any], value))


def _filters_expr(filters: MetadataFilters) -> str:
    parts = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            parts.append(f"({_filters_expr(f)})")
            continue
        key = f"metadata[{quote(f.key)}]"
        op, value = f.operator, f.value
        if op in (
            FilterOperator.EQ,
            FilterOperator.NE,
            FilterOperator.GT,
            FilterOperator.GTE,
            FilterOperator.LT,
            FilterOperator.LTE,
        ):
            parts.append(f"{key} {op.value} {json.dumps(value)}")
        elif op in (FilterOperator.IN, FilterOperator.NIN):
            parts.append(f"{key} {'in' if op == FilterOperator.IN else 'not in'} {json.dumps(_values(value))}")
        elif op == FilterOperator.CONTAINS:
            parts.append(f"array_contains({key}, {json.dumps(value)})")
        elif op == FilterOperator.ANY:
            parts.append(f"array_contains_any({key}, {json.dumps(_values(value))})")
        elif op == FilterOperator.ALL:
            parts.append(f"array_contains_all({key}, {json.dumps(_values(value))})")
        elif op == FilterOperator.TEXT_MATCH:
            parts.append(f"{key} like {json.dumps('%' + str(value) + '%')}")
        else:
            raise ConfigError(f"metadata filter operator {op.value!r} is not supported")
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        return f"not ({' and '.join(parts)})"
    return f" {condition.value} ".join(parts)
