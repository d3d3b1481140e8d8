"""Questions whose answers we located in the tutorial documents, asked on both backends."""

import asyncio
import json

import pytest

from ragtide import RAG
from ragtide.cli import main as cli

# (question, fact that the passage and the extractive answer must hold, document, page)
QUESTIONS = [
    ("What computer did the author first write programs on?", "IBM 1401", "essay", None),
    ("Which computer did the author's father buy for him?", "TRS-80", "essay", None),
    ("Which language was regarded as the language of AI?", "Lisp", "essay", None),
    ("Which art schools did the author apply to?", "Accademia", "essay", None),
    ("What company did the author work for that made software for creating documents?", "Interleaf", "essay", None),
    ("What was the author's daily budget in Florence?", "$7 a day", "essay", None),
    ("Who is Uber's Chief Executive Officer?", "Khosrowshahi", "uber", None),
    ("Who is Uber's Chief Financial Officer?", "Nelson Chai", "uber", 307),
    ("When was Uber founded and under what name was it incorporated?", "Ubercab", "uber", 12),
    ("How many employees did Uber have at the end of 2021?", "29,300", "uber", 10),
    ("In which city is Uber headquartered?", "San Francisco", "uber", None),
    ("Which acquisition increased Uber's Freight revenue in the fourth quarter of 2021?", "Transplace", "uber", None),
]


# Known misses, (fact, retrieval mode) -> why. Since PDF figure tables became labelled rows
# (issue #23), three table passages embed closer to "How many employees ... in 2021?" than the
# paragraph holding 29,300 (dense rank 1 -> 4, hybrid 4 -> 8 on Lite; the dev set as a whole
# gained: dense 31 -> 32 hits and 28 -> 30 answers of 46). Kept visible here, not dropped.
KNOWN_MISSES = {("29,300", "hybrid"): "the employees paragraph is hybrid rank 8 behind labelled table passages"}


@pytest.fixture(scope="module")
def answers(corpus, embedder):
    uri, name, _ = corpus

    async def ask_all():
        async with RAG(uri=uri, collection=name, embedder=embedder) as rag:
            # Asked concurrently: embeddings and searches are shared, answers must not mix.
            return await asyncio.gather(*(rag.aquery(q) for q, *_ in QUESTIONS))

    return asyncio.run(ask_all())


@pytest.mark.model  # the real model's names, vectors or a CLI process
@pytest.mark.parametrize("i", range(len(QUESTIONS)), ids=[q[1] for q in QUESTIONS])
def test_answer_passage_in_top5_and_fact_in_extractive_answer(answers, i):
    question, fact, doc, page = QUESTIONS[i]
    answer = answers[i]
    assert answer.question == question and answer.mode == "extractive"
    holding = [s for s in answer.sources[:5] if fact in " ".join(s.text.split())]
    if not holding and (fact, answer.retrieval) in KNOWN_MISSES:
        pytest.xfail(KNOWN_MISSES[fact, answer.retrieval])
    assert holding, f"no top-5 passage holds {fact!r}"
    assert doc in holding[0].source.lower() or (doc == "essay" and "paul_graham" in holding[0].source)
    if page is not None:
        assert any(s.page == page for s in holding)
    assert fact in answer.text, answer.text
    assert answer.citations, "the answer cites its passages"


@pytest.mark.model  # the real model's names, vectors or a CLI process
def test_filter_restricts_sources(corpus):
    uri, name, _ = corpus
    with RAG(uri=uri, collection=name) as rag:
        hits = rag.retrieve("revenue growth", top_k=5, filter='metadata["type"] == "text"')
        pdf = rag.retrieve("What did the author work on?", top_k=5, filter='metadata["type"] == "pdf"')
    assert hits and all(h.source.endswith(".txt") for h in hits)
    assert pdf and all(h.source.endswith(".pdf") and h.page for h in pdf)


@pytest.mark.model  # the real model's names, vectors or a CLI process
def test_query_json_cli(corpus, capsys):
    uri, name, _ = corpus
    assert cli(["query", "--json", "What did the author learn?", "--uri", uri, "--collection", name]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"answer", "sources", "timings"}
    assert result["answer"]
    assert any("paul_graham_essay" in s["source"] for s in result["sources"])
    assert set(result["sources"][0]) == {
        "id",
        "text",
        "source",
        "page",
        "where",
        "section",
        "score",
        "metadata",
        "highlights",
    }
    assert "abstained" in result and "support" in result


def test_sync_api_inside_a_running_event_loop(corpus, embedder):
    uri, name, _ = corpus

    async def handler():  # as in a FastAPI handler or a Jupyter cell
        rag = RAG(uri=uri, collection=name, embedder=embedder)
        try:
            answer = rag.query("What computer did the author first write programs on?")
            streamed = "".join(rag.query("Who is Uber's Chief Executive Officer?", stream=True))
            also_async = await rag.aquery("Who is Uber's Chief Executive Officer?")
        finally:
            rag.close()
        return answer, streamed, also_async

    answer, streamed, also_async = asyncio.run(handler())
    assert "IBM 1401" in answer.text
    assert "Khosrowshahi" in streamed and streamed == also_async.text
