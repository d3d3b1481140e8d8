"""The LlamaIndex drop-in: the tutorial's code path, unchanged but for the import."""

import asyncio

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from conftest import ESSAY, drop, new_collection  # noqa: E402
from ragtide.llama_index import MilvusVectorStore  # noqa: E402


class RagtideEmbedding(BaseEmbedding):
    """A real local model behind LlamaIndex's embedding interface, for meaningful retrieval."""

    def __init__(self, embedder):
        super().__init__(model_name="all-MiniLM-L6-v2", embed_batch_size=64)
        object.__setattr__(self, "_e", embedder)

    def _get_query_embedding(self, query):
        return self._e.encode([query], query=True)[0].tolist()

    def _get_text_embedding(self, text):
        return self._e.encode([text])[0].tolist()

    def _get_text_embeddings(self, texts):
        return self._e.encode(texts).tolist()

    async def _aget_query_embedding(self, query):
        return self._get_query_embedding(query)


@pytest.fixture
def store(backend):
    name = new_collection()
    vs = MilvusVectorStore(
        uri=backend, dim=8, collection_name=name, similarity_metric="COSINE", consistency_level="Strong", overwrite=True
    )
    yield vs
    vs.close()
    drop(backend, name)


def _nodes(n, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, 8))
    return [
        TextNode(
            id_=f"n{i}", text=f"node {i}", embedding=v.tolist(), metadata={"i": i, "parity": "odd" if i % 2 else "even"}
        )
        for i, v in enumerate(vectors)
    ]


def test_gathered_adds_and_queries_each_get_their_own(store):
    nodes = _nodes(200)

    async def main():
        ids = await asyncio.gather(*(store.async_add([node]) for node in nodes))
        results = await asyncio.gather(
            *(store.aquery(VectorStoreQuery(query_embedding=n.embedding, similarity_top_k=3)) for n in nodes)
        )
        return ids, results

    ids, results = asyncio.run(main())
    assert [i for (i,) in ids] == [n.node_id for n in nodes]
    for node, result in zip(nodes, results):
        assert result.ids[0] == node.node_id and result.nodes[0].get_content() == node.text
        assert result.similarities[0] == pytest.approx(1.0, abs=1e-4)
        assert result.nodes[0].embedding is None  # vectors are not shipped back
    again = [store.query(VectorStoreQuery(query_embedding=n.embedding, similarity_top_k=3)).ids for n in nodes[:20]]
    assert again == [r.ids for r in results[:20]]


def test_racing_first_adds_create_the_collection_once(backend):
    """Without ``dim`` the first add creates the collection; a gathered crowd of first
    adds, one node or several each, must create it once and all land."""
    name = new_collection()
    vs = MilvusVectorStore(uri=backend, collection_name=name, similarity_metric="COSINE", consistency_level="Strong")
    try:
        nodes = _nodes(90)

        async def main():
            singles = [vs.async_add([node]) for node in nodes[:60]]
            triples = [vs.async_add(nodes[i : i + 3]) for i in range(60, 90, 3)]
            return await asyncio.gather(*singles, *triples)

        ids = asyncio.run(main())
        assert [i for group in ids for i in group] == [n.node_id for n in nodes]
        everything = vs.query(VectorStoreQuery(query_embedding=nodes[0].embedding, similarity_top_k=100))
        assert sorted(everything.ids) == sorted(n.node_id for n in nodes)
    finally:
        vs.close()
        drop(backend, name)


def test_sync_calls_from_many_threads_with_session_reads(backend):
    """Sync add/query from threads: a lone call skips the queue, concurrent ones share it;
    either way every node lands once and Session reads see the caller's own writes and deletes."""
    from concurrent.futures import ThreadPoolExecutor

    name = new_collection()
    vs = MilvusVectorStore(uri=backend, dim=8, collection_name=name, similarity_metric="COSINE", overwrite=True)
    try:
        nodes = _nodes(120)
        vs.add(nodes[:1])  # creates the collection
        hit = vs.query(VectorStoreQuery(query_embedding=nodes[0].embedding, similarity_top_k=1))
        assert hit.ids == ["n0"]  # Session: a lone sync write is visible to the next sync read

        def add_then_find(node):
            vs.add([node])
            return vs.query(VectorStoreQuery(query_embedding=node.embedding, similarity_top_k=1)).ids

        with ThreadPoolExecutor(16) as pool:
            found = list(pool.map(add_then_find, nodes[1:]))
        assert found == [[n.node_id] for n in nodes[1:]]
        everything = vs.query(VectorStoreQuery(query_embedding=nodes[0].embedding, similarity_top_k=200))
        assert sorted(everything.ids) == sorted(n.node_id for n in nodes)  # each exactly once
        vs.delete_nodes(node_ids=["n0"])
        assert vs.query(VectorStoreQuery(query_embedding=nodes[0].embedding, similarity_top_k=1)).ids != ["n0"]
        vs.add([nodes[0]])  # a write after a delete restores Session reads; still sees its own write
        assert vs.query(VectorStoreQuery(query_embedding=nodes[0].embedding, similarity_top_k=1)).ids == ["n0"]
    finally:
        vs.close()
        drop(backend, name)


def test_filters_and_deletes(store):
    nodes = _nodes(20)
    store.add(nodes)
    q = nodes[0].embedding
    even = store.query(
        VectorStoreQuery(
            query_embedding=q,
            similarity_top_k=20,
            filters=MetadataFilters(filters=[MetadataFilter(key="parity", value="even")]),
        )
    )
    assert len(even.ids) == 10 and all(n.metadata["parity"] == "even" for n in even.nodes)
    big = MetadataFilters(filters=[MetadataFilter(key="i", value=15, operator=FilterOperator.GTE)])
    assert sorted(store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=20, filters=big)).ids) == [
        f"n{i}" for i in range(15, 20)
    ]
    store.delete_nodes(node_ids=["n0", "n1"])
    assert "n0" not in store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=20)).ids
    store.clear()
    assert store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=5)).ids == []


def test_tutorial_notebook_code_path(backend, embedder):
    """from_documents(use_async=True) and as_query_engine(use_async=True), as in the tutorial."""
    Settings.embed_model = RagtideEmbedding(embedder)
    Settings.llm = MockLLM()
    name = new_collection()
    vector_store = MilvusVectorStore(uri=backend, dim=384, collection_name=name, overwrite=True)
    try:
        storage_context = StorageContext.from_defaults(vector_store=vector_store)
        documents = [Document(text=ESSAY.read_text(), metadata={"file_name": ESSAY.name})]
        index = VectorStoreIndex.from_documents(documents, storage_context=storage_context, use_async=True)
        query_engine = index.as_query_engine(use_async=True, similarity_top_k=3)

        async def ask():
            return await query_engine.aquery("What computer did the author first write programs on?")

        response = asyncio.run(ask())
        assert any("IBM 1401" in n.node.get_content() for n in response.source_nodes)
        assert response.source_nodes[0].node.metadata["file_name"] == ESSAY.name
        sync = query_engine.query("Which art schools did the author apply to?")
        assert any("RISD" in n.node.get_content() for n in sync.source_nodes)
        vector_store.delete(documents[0].doc_id)
        assert index.as_retriever().retrieve("IBM 1401") == []
    finally:
        vector_store.close()
        drop(backend, name)
