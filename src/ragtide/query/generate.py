"""The answer step: what was retrieved becomes an :class:`Answer`, written by the LLM when
one is configured, else quoted from the passages (:mod:`.extract`).

An LLM that fails before saying anything is replaced by the extractive answer, its error
kept in ``Answer.error``; one that fails midway keeps what it said, flagged the same way.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import numpy as np

from ..embedding import Embedder
from ..errors import LLMError
from .answer import Answer
from .extract import NOT_FOUND, Abstention, extract
from .llm import LLM
from .prompt import build_messages
from .retrieve import Retrieval
from .support import check

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
    abstain_below: float = -1.0,
    searched: str = "",
) -> Answer:
    """The answer to ``question`` from ``found``; its text is written as it is read
    (``started``: when the question arrived, for the timings; ``abstain_below``: the
    setting, see :func:`.extract.abstain_threshold`; ``searched``: the question as searched,
    when a follow-up was made to stand alone)."""
    timings = {"retrieve": time.perf_counter() - started}
    abstain = Abstention.setting(embedder.name, abstain_below)

    # The question's vector, as retrieval computed it, unless retrieval searched another text
    # (a follow-up made to stand alone): the answer is to the question as asked.
    vector = found.vector if searched in ("", question) else None

    def write(answer: Answer) -> AsyncIterator[str]:
        return _write(answer, embedder, llm, started, abstain, vector)

    return Answer(
        question,
        found.sources,
        searched=searched if searched != question else "",
        timings=timings,
        retrieval=found.mode,
        notes=[found.note] if found.note else [],
        reranked_by=found.reranked_by,
        write=write,
        runner=runner,
    )


async def _write(
    answer: Answer,
    embedder: Embedder,
    llm: LLM | None,
    started: float,
    abstain: Abstention,
    vector: np.ndarray | None,
) -> AsyncIterator[str]:
    """Produce the answer's text, filling ``answer`` as it goes."""
    generated = time.perf_counter()
    # The offline answer is also the support signal the LLM is told of: one short embedding
    # call of the best few sentences.
    # A follow-up's passages were found with what came before; its answer is to the follow-up
    # itself (the earlier question's words would pick the earlier answer again). An LLM gets
    # the rewritten question, which stands alone.
    extraction = await extract(answer.question, answer.sources, embedder, abstain=abstain, question_vector=vector)
    if llm is not None and answer.sources:
        answer.mode = "llm"
        try:
            messages = build_messages(answer.searched or answer.question, answer.sources, weak=not extraction.found)
            async for delta in llm.stream(messages):
                answer.timings.setdefault("first_token", time.perf_counter() - started)
                answer.text += delta
                yield delta
        except LLMError as e:
            answer.error = str(e)
            if answer.text:  # keep what the LLM said; say it was cut short
                await _judge(answer, embedder)
                return
            answer.mode = "extractive"
        else:
            answer.timings["generate"] = time.perf_counter() - generated
            await _judge(answer, embedder)
            answer.timings["total"] = time.perf_counter() - started
            return
    answer.text = extraction.text
    answer.abstained = not extraction.found
    for quote in extraction.quotes:
        answer.highlights.setdefault(quote.source, []).append((quote.start, quote.end))
    await _judge(answer, None)  # quotes: words suffice
    answer.timings["generate"] = time.perf_counter() - generated
    answer.timings["total"] = time.perf_counter() - started
    yield answer.text


async def _judge(answer: Answer, embedder: Embedder | None) -> None:
    """Fill the answer's support and flagged citations; an LLM saying "not found" abstained."""
    if answer.mode == "llm":
        answer.abstained = NOT_FOUND.rstrip(".").lower() in answer.text.lower()
    if answer.abstained:
        return
    support = await check(answer.text, answer.sources, embedder)
    answer.support, answer.flagged = support.score, list(support.flagged)
