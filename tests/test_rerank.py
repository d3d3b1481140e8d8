"""Reranking plumbing, with a cross-encoder built here from local files.

No cross-encoder ships on PyPI, so the test builds one from the default embedding model's
weights (a BERT with a fresh one-logit head, saved to disk). Its scores mean nothing; what
is tested is that ragtide fetches a larger pool, reorders it by the cross-encoder's scores,
keeps top_k, and says it did.
"""

from __future__ import annotations

import json

import pytest

from conftest import ESSAY, drop, new_collection
from ragtide import RAG
from ragtide.cli import main as cli
from ragtide.embedding import resolve_model
from ragtide.errors import RagtideError


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory):
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cross-encoder") / "model"
    CrossEncoder(resolve_model("all-MiniLM-L6-v2"), num_labels=1).save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def essay(lite_dir, embedder):
    uri, name = str(lite_dir / "rerank.db"), new_collection()
    with RAG(uri=uri, collection=name, embedder=embedder) as rag:
        rag.ingest([ESSAY])
    yield uri, name
    drop(uri, name)


def test_reranking_reorders_a_larger_pool_by_the_cross_encoder(essay, embedder, cross_encoder):
    from sentence_transformers import CrossEncoder

    uri, name = essay
    question = "What computer did the author first write programs on?"
    with RAG(uri=uri, collection=name, embedder=embedder) as rag:
        pool = rag.retrieve(question, top_k=30)
    with RAG(uri=uri, collection=name, embedder=embedder, rerank_model=cross_encoder, rerank_pool=30) as rag:
        answer = rag.query(question, top_k=5)
    scores = CrossEncoder(cross_encoder).predict([(question, s.text) for s in pool])
    expected = sorted(range(len(pool)), key=lambda i: -scores[i])[:5]
    assert [s.id for s in answer.sources] == [pool[i].id for i in expected]
    assert [s.score for s in answer.sources] == pytest.approx([float(scores[i]) for i in expected], abs=1e-4)
    assert answer.reranked_by == cross_encoder
    assert answer.to_dict()["retrieval"]["reranked_by"] == cross_encoder


@pytest.mark.model  # the real model's names, vectors or a CLI process
def test_rerank_flag_on_the_cli(essay, cross_encoder, capsys):
    uri, name = essay
    assert (
        cli(
            [
                "query",
                "--json",
                "Where did the author go to art school?",
                "--uri",
                uri,
                "--collection",
                name,
                "--rerank",
                cross_encoder,
                "--top-k",
                "3",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["retrieval"]["reranked_by"] == cross_encoder and len(result["sources"]) == 3


def test_a_missing_reranking_model_is_a_clear_error(essay, embedder, tmp_path):
    uri, name = essay
    missing = str(tmp_path / "no-such-model")
    with RAG(uri=uri, collection=name, embedder=embedder, rerank_model=missing) as rag:
        with pytest.raises(RagtideError, match="cannot load reranking model"):
            rag.query("anything")
