"""The LLM path against a real HTTP server speaking the OpenAI protocol, and its failures."""

import asyncio
import json
import socket

import pytest

from llm_server import StubLLM
from ragtide import RAG
from ragtide.cli import main as cli

QUESTION = "What computer did the author first write programs on?"


@pytest.fixture
def llm():
    server = StubLLM()
    yield server
    server.close()


@pytest.fixture
def ask(corpus, embedder):
    uri, name, _ = corpus

    def ask(base_url, **options):
        with RAG(
            uri=uri, collection=name, embedder=embedder, llm_base_url=base_url, llm_model="stub-model", **options
        ) as rag:
            return rag.query(QUESTION)

    return ask


@pytest.mark.model  # the real model's names, vectors or a CLI process
def test_prompt_holds_the_passages_and_the_reply_streams(corpus, embedder, llm):
    uri, name, _ = corpus

    async def main():
        async with RAG(
            uri=uri, collection=name, embedder=embedder, llm_base_url=llm.url, llm_model="stub-model"
        ) as rag:
            answer = await rag.aquery(QUESTION, stream=True)
            deltas = [d async for d in answer]
        return answer, deltas

    answer, deltas = asyncio.run(main())
    assert len(deltas) > 3  # arrived in pieces
    assert "".join(deltas) == answer.text and "IBM 1401 [1]" in answer.text
    assert answer.mode == "llm" and answer.error is None
    assert [n for n, _ in answer.citations] == [1]
    request = llm.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["stream"] is True and request["body"]["model"] == "stub-model"
    prompt = request["body"]["messages"][-1]["content"]
    assert QUESTION in prompt
    for n, source in enumerate(answer.sources, 1):
        assert f"[{n}] (" in prompt
        assert source.text.strip()[:200] in prompt


def test_server_error_is_reported_and_sources_still_given(ask, llm):
    llm.mode = "error"
    answer = ask(llm.url)
    assert answer.error and "HTTP 500" in answer.error and llm.url.rsplit("/v1", 1)[0] in answer.error
    assert answer.sources and answer.mode == "extractive" and "IBM 1401" in answer.text


def test_slow_server_times_out(ask, llm):
    llm.mode = "slow"
    answer = ask(llm.url, llm_timeout=1.0)
    assert answer.error and "did not answer within 1 s" in answer.error
    assert answer.sources and "IBM 1401" in answer.text


def test_connection_refused(ask):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    answer = ask(f"http://127.0.0.1:{port}/v1")
    assert answer.error and "cannot connect" in answer.error
    assert answer.sources


@pytest.mark.model  # the real model's names, vectors or a CLI process
def test_cli_reports_llm_failure_on_one_line(corpus, llm, capsys):
    uri, name, _ = corpus
    llm.mode = "error"
    status = cli(
        ["query", QUESTION, "--uri", uri, "--collection", name, "--llm-base-url", llm.url, "--llm-model", "m", "--json"]
    )
    captured = capsys.readouterr()
    assert status == 1
    result = json.loads(captured.out)
    assert result["sources"] and "HTTP 500" in result["error"]
    assert len(captured.err.strip().splitlines()) == 1 and captured.err.startswith("warning:")
