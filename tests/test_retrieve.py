"""Retrieval modes on both backends: hybrid where Milvus has full-text search (Milvus Lite
2.5 here), dense-only with a note on the 2.3.5 test server, never a failure."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from conftest import SERVER_URI, drop, new_collection
from ragtide import RAG, ConfigError
from ragtide.cli import main as cli
from ragtide.documents import Document, Page
from ragtide.eval import load_questions
from ragtide.store import MilvusStore


def _doc(key: str, text: str) -> Document:
    return Document(key=key, text=text, pages=(Page(None, 0, len(text)),))


DOCS = [
    _doc("fleet.txt", "The company operated 4,217 electric scooters in Lisbon at the end of the year."),
    _doc("menu.txt", "Our kitchen serves grilled sardines, custard tarts and green wine every evening."),
    _doc("weather.txt", "Summers along the coast are dry and warm; winters bring Atlantic rain."),
    _doc("staff.txt", "Head count grew to 58 people, most of them engineers working remotely."),
]


@pytest.fixture
def small(rag):
    rag.ingest(DOCS)
    return rag


def full_text(uri: str) -> bool:
    return uri != SERVER_URI  # the test server is Milvus 2.3.5: no BM25


def test_status_says_which_modes_work(small, backend):
    info = small.status()
    if full_text(backend):
        assert info.lexical and info.modes == ("dense", "lexical", "hybrid") and info.default_mode == "hybrid"
        assert not info.note
    else:
        assert not info.lexical and info.modes == ("dense",) and info.default_mode == "dense"
        assert "2.5" in info.note and "dense retrieval only" in info.note


@pytest.mark.model  # the real model's names, vectors or a CLI process
def test_query_json_reports_the_mode_used(small, backend, collection, capsys):
    assert cli(["query", "--json", "How many scooters?", "--uri", backend, "--collection", collection]) == 0
    retrieval = json.loads(capsys.readouterr().out)["retrieval"]
    if full_text(backend):
        assert retrieval["mode"] == "hybrid" and retrieval["notes"] == []
    else:
        assert retrieval["mode"] == "dense" and "dense retrieval only" in retrieval["notes"][0]
    assert cli(["status", "--uri", backend, "--collection", collection]) == 0
    out = capsys.readouterr().out
    assert ("hybrid by default" in out) == full_text(backend)


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_each_mode_finds_an_exact_term(small, backend, mode):
    if not full_text(backend):
        with pytest.raises(ConfigError, match="2.5"):
            small.retrieve("sardines", mode=mode)
        return
    hits = small.retrieve("4,217 scooters", top_k=2, mode=mode)
    assert hits[0].source == "fleet.txt"


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filters_apply_to_every_leg(small, backend, mode):
    if mode != "dense" and not full_text(backend):
        pytest.skip("dense only on this backend")
    # fleet.txt matches the question best in every leg; the filter must exclude it from each.
    hits = small.retrieve(
        "electric scooters in Lisbon on the coast", top_k=4, mode=mode, filter='source != "fleet.txt"'
    )
    assert hits and all(h.source != "fleet.txt" for h in hits)


def test_concurrent_searches_match_one_at_a_time(corpus, embedder):
    """Questions asked together share requests; each must still get exactly its own ranking.
    (Milvus Lite's multi-question hybrid_search failed this on 37 of the dev set's 46.)"""
    uri, name, _ = corpus
    questions = [q.q for q in load_questions(Path(__file__).parent / "data" / "devset.json")]

    async def both(mode):
        async with RAG(uri=uri, collection=name, embedder=embedder) as rag:
            alone = [[h.id for h in await rag.aretrieve(q, top_k=5, mode=mode)] for q in questions]
            together = await asyncio.gather(*(rag.aretrieve(q, top_k=5, mode=mode) for q in questions))
        return alone, [[h.id for h in hits] for hits in together]

    for mode in ["dense", "lexical", "hybrid"] if full_text(uri) else ["dense"]:
        alone, together = asyncio.run(both(mode))
        assert together == alone, f"{mode}: {sum(a != t for a, t in zip(alone, together))} questions ranked differently"


def test_a_collection_made_without_full_text_keeps_working_dense_only(lite_dir, embedder):
    """As a collection created before hybrid retrieval existed: dense works, the note says how to get hybrid."""
    uri, name = str(lite_dir / "old.db"), new_collection()

    async def make_old():
        store = MilvusStore(uri, name, lexical=False)
        await store.open(embedder.name, embedder.dim)
        await store.close()

    asyncio.run(make_old())
    try:
        with RAG(uri=uri, collection=name, embedder=embedder) as rag:
            rag.ingest(DOCS)
            info = rag.status()
            answer = rag.query("How many scooters?")
            with pytest.raises(ConfigError, match="new collection"):
                rag.retrieve("scooters", mode="hybrid")
        assert info.modes == ("dense",) and "ragtide ingest PATH --collection NEW" in info.note
        assert answer.retrieval == "dense" and answer.notes == [info.note] and "4,217" in answer.text
    finally:
        drop(uri, name)


def test_hybrid_fusion_scales_each_leg_by_its_best_and_weighs_them():
    from ragtide.store import Fusion

    fusion = Fusion(candidates=10, dense_weight=0.6)
    dense = [("a", 0.80), ("b", 0.40)]  # cosine similarities
    lexical = [("b", 12.0), ("c", 6.0)]  # BM25 scores, another scale
    fused = dict(fusion.fuse(dense, lexical, limit=10))
    assert fused == pytest.approx({"a": 0.6, "b": 0.6 * 0.5 + 0.4, "c": 0.4 * 0.5})
    assert [i for i, _ in fusion.fuse(dense, lexical, limit=2)] == ["b", "a"]
    # A leg with a score below zero is measured from its lowest score: the order holds.
    assert [i for i, _ in Fusion(dense_weight=1.0).fuse([("x", 0.1), ("y", -0.3)], [], limit=5)] == ["x", "y"]
    assert Fusion().fuse([], [], limit=5) == []


def test_fusion_weight_out_of_range_is_refused():
    from ragtide.settings import Settings

    with pytest.raises(ConfigError, match="fusion_dense_weight"):
        Settings(fusion_dense_weight=1.5)
    assert Settings.load(env={"RAGTIDE_FUSION_DENSE_WEIGHT": "0.3"}).fusion_dense_weight == 0.3
    with pytest.raises(ConfigError, match="fusion_name_weight"):
        Settings(fusion_name_weight=-0.1)
    assert Settings.load(env={"RAGTIDE_FUSION_NAME_WEIGHT": "0"}).fusion_name_weight == 0.0


def test_a_chunk_one_full_leg_missed_scores_that_legs_lowest_there():
    from ragtide.store import Fusion

    # Each leg returned all it was asked for (2): "c", missing from the dense leg, could
    # have scored at most the dense leg's lowest there, not 0.
    fusion = Fusion(candidates=2, dense_weight=0.6)
    dense = [("a", 0.80), ("b", 0.60)]
    lexical = [("c", 10.0), ("a", 2.0)]
    fused = dict(fusion.fuse(dense, lexical, limit=2))
    assert fused == pytest.approx({"c": 0.6 * 0.75 + 0.4, "a": 0.6 + 0.4 * 0.2})
    # Asked for 3, the legs returned 2: they hold every chunk they can score, so a chunk
    # one of them missed gets 0 there.
    assert dict(fusion.fuse(dense, lexical, limit=3)) == pytest.approx({"a": 0.68, "b": 0.45, "c": 0.4})


def test_phrase_boost_prefers_the_chunk_holding_the_questions_phrase():
    from ragtide.query import PhraseBoost

    question = "How many Monthly Active Platform Consumers did Uber have?"
    texts = [
        "Consumers and drivers use the platform; active ones return every month.",  # the words, not the phrase
        "Monthly Active Platform Consumers (MAPCs) 93 118",
        "Uber's platform connects consumers with drivers.",
    ]
    scores = PhraseBoost(weight=0.3).rescore(question, texts, [0.9, 0.8, 0.7])
    assert scores[1] > scores[0] == 0.9 and scores[2] == 0.7
    assert PhraseBoost(weight=0.0).rescore(question, texts, [0.9, 0.8, 0.7]) == [0.9, 0.8, 0.7]
    # Only the first `pool` are rescored; a phrase all of them hold counts for nothing.
    assert PhraseBoost(pool=1).rescore(question, texts, [0.9, 0.8, 0.7]) == [0.9, 0.8, 0.7]
