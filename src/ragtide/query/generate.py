"""The answer step: what was retrieved becomes an :class:`Answer`, written by the LLM when
one is configured, else quoted from the passages (:mod:`.extract`).

An LLM that fails before saying anything is replaced by the extractive answer, its error
kept in ``Answer.error``; one that fails midway keeps what it said, flagged the same way.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..embedding import Embedder
from ..errors import LLMError
from .answer import Answer
from .extract import extractive_answer
from .llm import LLM
from .prompt import build_messages
from .retrieve import Retrieval

if TYPE_CHECKING:
    from .._loop import LoopThread


def answer(
    question: str,
    found: Retrieval,
    *,
    embedder: Embedder,
    llm: LLM | None,
    runner: LoopThread,
    started: float,
) -> Answer:
    """The answer to ``question`` from ``found``; its text is written as it is read
    (``started``: when the question arrived, for the timings)."""
    timings = {"retrieve": time.perf_counter() - started}

    def write(answer: Answer) -> AsyncIterator[str]:
        return _write(answer, embedder, llm, started)

    return Answer(
        question,
        found.sources,
        timings=timings,
        retrieval=found.mode,
        notes=[found.note] if found.note else [],
        reranked_by=found.reranked_by,
        write=write,
        runner=runner,
    )


async def _write(answer: Answer, embedder: Embedder, llm: LLM | None, started: float) -> AsyncIterator[str]:
    """Produce the answer's text, filling ``answer`` as it goes."""
    generated = time.perf_counter()
    if llm is not None and answer.sources:
        answer.mode = "llm"
        try:
            async for delta in llm.stream(build_messages(answer.question, answer.sources)):
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
    answer.text = await extractive_answer(answer.question, answer.sources, embedder)
    answer.timings["generate"] = time.perf_counter() - generated
    answer.timings["total"] = time.perf_counter() - started
    yield answer.text
