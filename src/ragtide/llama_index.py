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

import json
from typing import Any, List, Optional

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
    dim: Optional[int] = None
    embedding_field: str = "embedding"
    id_field: str = "id"
    text_key: str = "text"
    doc_id_field: str = "doc_id"
    similarity_metric: str = "IP"
    consistency_level: str = "Session"
    overwrite: bool = False

    _runner: LoopThread = PrivateAttr()
    _milvus: MilvusCollection = PrivateAttr()
    _ready: bool = PrivateAttr(default=False)

    def __init__(self, **data: Any) -> None:
        unknown = set(data) - set(type(self).model_fields)
        if unknown:
            raise ConfigError(f"MilvusVectorStore: unsupported argument(s) {', '.join(sorted(unknown))}")
        super().__init__(**data)
        if self.similarity_metric.upper() not in _METRICS:
            raise ConfigError(f"similarity_metric: {self.similarity_metric!r} is not one of {', '.join(_METRICS)}")
        self._runner = LoopThread("ragtide-llama-index")
        # Insert, as LlamaIndex's own store does: node ids are the caller's, and adding a
        # node twice is the caller's choice to make.
        self._milvus = MilvusCollection(
            self.uri, self.collection_name, token=self.token, consistency=self.consistency_level, write="insert"
        )
        self._runner.run(self._setup())
        self._milvus.connect_blocking()  # as LlamaIndex's store does: the first sync call pays no connect

    @property
    def client(self) -> Any:
        return self._milvus

    async def _setup(self) -> None:
        exists = await self._milvus.exists()
        if exists and self.overwrite:
            await self._milvus.call("drop_collection", self.collection_name)
            exists = False
        if exists:
            if not self._milvus.lite:
                await self._milvus.call("load_collection", self.collection_name)
            self._ready = True
        elif self.dim:
            await self._create(self.dim)

    async def _create(self, dim: int) -> None:
        from pymilvus import AsyncMilvusClient, DataType

        schema = AsyncMilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(self.id_field, DataType.VARCHAR, is_primary=True, max_length=512)
        schema.add_field(self.doc_id_field, DataType.VARCHAR, max_length=512)
        schema.add_field(self.text_key, DataType.VARCHAR, max_length=65535)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field(self.embedding_field, DataType.FLOAT_VECTOR, dim=dim)
        index = AsyncMilvusClient.prepare_index_params()
        index.add_index(self.embedding_field, metric_type=self.similarity_metric.upper(), **self._milvus.index())
        await self._milvus.call(
            "create_collection", self.collection_name, schema=schema, index_params=index, consistency_level=self.consistency_level
        )
        self._ready = True

    # -- writes ----------------------------------------------------------------------

    def add(self, nodes: List[BaseNode], **kwargs: Any) -> List[str]:
        if not (self._ready and nodes and self._milvus.write_now(self._entities(nodes))):
            return self._runner.run(self._add(nodes))
        return [node.node_id for node in nodes]

    async def async_add(self, nodes: List[BaseNode], **kwargs: Any) -> List[str]:
        return await self._runner.arun(self._add(nodes))

    async def _add(self, nodes: List[BaseNode]) -> List[str]:
        if not nodes:
            return []
        if not self._ready:
            await self._create(len(nodes[0].get_embedding()))
        await self._milvus.write(self._entities(nodes))
        return [node.node_id for node in nodes]

    def _entities(self, nodes: List[BaseNode]) -> List[dict]:
        entities = []
        for node in nodes:
            # A copy without the vector: node_to_metadata_dict would serialise it only to drop it.
            bare = node.model_copy(update={"embedding": None})
            metadata = node_to_metadata_dict(bare, remove_text=True, flat_metadata=self.flat_metadata)
            entities.append({
                self.id_field: node.node_id,
                self.doc_id_field: node.ref_doc_id or "None",
                self.text_key: varchar(node.get_content()),
                "metadata": metadata,
                self.embedding_field: node.get_embedding(),
            })
        return entities

    def delete(self, ref_doc_id: str, **kwargs: Any) -> None:
        self._runner.run(self._delete(f"{self.doc_id_field} == {quote(ref_doc_id)}"))

    async def adelete(self, ref_doc_id: str, **kwargs: Any) -> None:
        await self._runner.arun(self._delete(f"{self.doc_id_field} == {quote(ref_doc_id)}"))

    def delete_nodes(self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None, **kwargs: Any) -> None:
        self._runner.run(self._delete(self._expr(filters, node_ids=node_ids)))

    async def adelete_nodes(self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None, **kwargs: Any) -> None:
        await self._runner.arun(self._delete(self._expr(filters, node_ids=node_ids)))

    async def _delete(self, expr: str) -> None:
        if self._ready and expr:
            await self._milvus.delete(expr)

    def clear(self) -> None:
        self._runner.run(self._clear())

    async def aclear(self) -> None:
        await self._runner.arun(self._clear())

    async def _clear(self) -> None:
        await self._milvus.close()
        if await self._milvus.exists():
            await self._milvus.call("drop_collection", self.collection_name)
        self._ready = False

    # -- reads -----------------------------------------------------------------------

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        search = self._search(query)
        if search is not None:
            hits = self._milvus.search_now(query.query_embedding, query.similarity_top_k, **search)
            if hits is not None:
                return self._result(hits)
        return self._runner.run(self._query(query))

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await self._runner.arun(self._query(query))

    async def _query(self, query: VectorStoreQuery) -> VectorStoreQueryResult:
        search = self._search(query)
        if search is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        return self._result(await self._milvus.search(query.query_embedding, query.similarity_top_k, **search))

    def _search(self, query: VectorStoreQuery) -> Optional[dict]:
        """The search options for ``query``; None when there is nothing to search yet."""
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise ConfigError(f"query mode {query.mode.value!r}: only dense vector search is supported")
        if query.query_embedding is None:
            raise ConfigError("query_embedding: required")
        if not self._ready:
            return None
        return {
            "filter": self._expr(query.filters, node_ids=query.node_ids, doc_ids=query.doc_ids),
            "output_fields": [self.text_key, self.doc_id_field, "metadata"],
            "anns_field": self.embedding_field,
        }

    def _result(self, hits: List[dict]) -> VectorStoreQueryResult:
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

    # -- filters ---------------------------------------------------------------------

    def _expr(self, filters: Optional[MetadataFilters], *, node_ids=None, doc_ids=None) -> str:
        parts = []
        if node_ids:
            parts.append(f"{self.id_field} in [{', '.join(quote(i) for i in node_ids)}]")
        if doc_ids:
            parts.append(f"{self.doc_id_field} in [{', '.join(quote(i) for i in doc_ids)}]")
        if filters is not None and filters.filters:
            parts.append(f"({_filters_expr(filters)})")
        return " and ".join(parts)

    def close(self) -> None:
        self._runner.run(self._milvus.close())
        self._runner.close()


def _filters_expr(filters: MetadataFilters) -> str:
    parts = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            parts.append(f"({_filters_expr(f)})")
            continue
        key = f"metadata[{quote(f.key)}]"
        op, value = f.operator, f.value
        if op in (FilterOperator.EQ, FilterOperator.NE, FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE):
            parts.append(f"{key} {op.value} {json.dumps(value)}")
        elif op in (FilterOperator.IN, FilterOperator.NIN):
            parts.append(f"{key} {'in' if op == FilterOperator.IN else 'not in'} {json.dumps(list(value))}")
        elif op == FilterOperator.CONTAINS:
            parts.append(f"array_contains({key}, {json.dumps(value)})")
        elif op == FilterOperator.ANY:
            parts.append(f"array_contains_any({key}, {json.dumps(list(value))})")
        elif op == FilterOperator.ALL:
            parts.append(f"array_contains_all({key}, {json.dumps(list(value))})")
        elif op == FilterOperator.TEXT_MATCH:
            parts.append(f"{key} like {json.dumps('%' + str(value) + '%')}")
        else:
            raise ConfigError(f"metadata filter operator {op.value!r} is not supported")
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        return f"not ({' and '.join(parts)})"
    return f" {condition.value} ".join(parts)
