"""Follow-up questions: read with the conversation before them, offline and with an LLM."""

import asyncio

import pytest

from llm_server import StubLLM
from ragtide import RAG, ConfigError, Conversation
from ragtide.query.conversation import CONDENSE_PROMPT, MAX_TURNS, Turn, offline_standalone, refers_back, turns

# What these show does not depend on the backend (the offline reading is tested on both).
LITE_ONLY = pytest.mark.parametrize("backend", ["lite"], indirect=True)
FIRST = "What computer did the author first write programs on?"
FOLLOW_UP = "Which language did he use on it?"


@pytest.mark.parametrize(
    "question, leans",
    [
        ("When was it finished?", True),
        ("And the Chief Financial Officer?", True),
        ("What about Freight?", True),
        ("Why?", True),
        ("How many Trips were completed on Uber's platform in 2021?", False),
        ("Which company bought Viaweb and when?", False),
    ],
)
def test_a_follow_up_that_refers_back_is_told_from_one_that_stands_alone(question, leans):
    assert refers_back(question) is leans


def test_offline_a_chain_of_follow_ups_keeps_its_topic_and_a_new_subject_drops_it():
    history = [Turn("user", FIRST), Turn("assistant", "The IBM 1401 [1].")]
    assert offline_standalone(FOLLOW_UP, history) == f"{FIRST} {FOLLOW_UP}"
    chain = [*history, Turn("user", FOLLOW_UP), Turn("assistant", "Fortran [1].")]
    assert offline_standalone("And where?", chain) == f"{FIRST} {FOLLOW_UP} And where?"
    new_subject = "Which company bought Viaweb and when?"
    assert offline_standalone(new_subject, chain) == new_subject


def test_history_is_parsed_bounded_and_named_in_errors():
    many = [{"role": "user" if k % 2 == 0 else "assistant", "content": f"turn {k}"} for k in range(50)]
    kept = turns(many)
    assert len(kept) == MAX_TURNS and kept[-1].text == "turn 49"
    with pytest.raises(ConfigError, match=r"history\[1\]: role must be one of user, assistant"):
        turns([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])
    with pytest.raises(ConfigError, match=r"history\[0\]: content must be text"):
        turns([{"role": "user", "content": 7}])


@pytest.mark.model  # the real model's vectors
def test_a_follow_up_is_answered_in_context_offline(corpus, embedder):
    uri, name, _ = corpus

    async def main():
        async with RAG(uri=uri, collection=name, embedder=embedder) as rag:
            chat = rag.conversation()
            first = await chat.aask(FIRST)
            follow = await chat.aask(FOLLOW_UP)
            again = await rag.achat(
                [
                    {"role": "user", "content": FIRST},
                    {"role": "assistant", "content": first.text},
                    {"role": "user", "content": FOLLOW_UP},
                ]
            )
            return chat, first, follow, again

    chat, first, follow, again = asyncio.run(main())
    assert isinstance(chat, Conversation) and "IBM 1401" in first.text
    assert follow.searched == f"{FIRST} {FOLLOW_UP}" and follow.question == FOLLOW_UP
    assert "Fortran" in follow.text  # "it" is the IBM 1401 of the first question
    assert [s.id for s in again.sources] == [s.id for s in follow.sources]  # the stateless form reads the same history
    assert [t.role for t in chat.turns] == ["user", "assistant", "user", "assistant"]
    assert follow.to_dict()["searched"] == follow.searched


@pytest.mark.model  # the real model's vectors
@LITE_ONLY
def test_with_an_llm_a_follow_up_is_rewritten_once_and_a_standalone_question_is_not(corpus, embedder):
    uri, name, _ = corpus
    llm = StubLLM(reply="Which language did the author use on the IBM 1401?")
    try:

        async def main():
            async with RAG(
                uri=uri, collection=name, embedder=embedder, llm_base_url=llm.url, llm_model="stub-model"
            ) as rag:
                history = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": "The IBM 1401 [1]."}]
                follow = await rag.aquery(FOLLOW_UP, history=history)
                calls = len(llm.requests)
                alone = await rag.aquery("Which company bought Viaweb and when?", history=history)
                return follow, calls, alone

        follow, calls, alone = asyncio.run(main())
    finally:
        llm.close()
    condense, answer = llm.requests[0]["body"]["messages"], llm.requests[1]["body"]["messages"]
    assert calls == 2 and condense[0]["content"] == CONDENSE_PROMPT
    assert FIRST in condense[1]["content"] and FOLLOW_UP in condense[1]["content"]
    rewritten = "Which language did the author use on the IBM 1401?"
    assert follow.searched == rewritten and f"Question: {rewritten}" in answer[-1]["content"]
    assert "condense" in follow.timings
    assert len(llm.requests) == 3 and alone.searched == ""  # stood alone: no rewrite call, searched as asked


@pytest.mark.model  # the real model's vectors
@LITE_ONLY
def test_a_failed_rewrite_falls_back_to_the_offline_reading(corpus, embedder):
    uri, name, _ = corpus
    llm = StubLLM()
    llm.mode = "error"
    try:
        with RAG(uri=uri, collection=name, embedder=embedder, llm_base_url=llm.url, llm_model="stub-model") as rag:
            answer = rag.query(FOLLOW_UP, history=[Turn("user", FIRST)])
    finally:
        llm.close()
    assert answer.searched == f"{FIRST} {FOLLOW_UP}"
    assert any("follow-up read without the LLM" in note for note in answer.notes)


@pytest.mark.model  # the real model's vectors and a CLI session
@LITE_ONLY
def test_ragtide_chat_keeps_the_conversation_and_its_commands_work(corpus, monkeypatch, capsys):
    import io

    from ragtide.cli import main as cli

    uri, name, _ = corpus
    script = f"{FIRST}\n{FOLLOW_UP}\n/sources\n/mode lexical\n/mode sideways\n/new\n/help\n/quit\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    assert cli(["chat", "--uri", uri, "--collection", name]) == 0
    out, err = capsys.readouterr()
    assert "IBM 1401" in out and "Fortran" in out and out.count("Sources:") == 2
    assert "paul_graham_essay.txt\n    " in out  # /sources shows the passages' text
    assert "(retrieval: lexical)" in err and "/mode takes one of" in err and "(a new conversation)" in err
    assert "/sources: the last answer's passages" in err
