"""Answers: an LLM's, grounded in numbered passages, or an extractive one built offline
(:mod:`ragtide.extract`).

Both cite passages as [1], [2], numbered in the order the sources are listed. Footnote
markers in the passages ("[13]") are shown to the LLM as "[^13]", so they cannot pass
for citations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

from .documents import Source
from .extract import without_footnotes

if TYPE_CHECKING:
    from ._loop import LoopThread

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. "
    "After each claim, cite the passage(s) it comes from as [1], [2]. "
    "If the passages do not contain the answer, say that they do not."
)


@dataclass
class Answer:
    """The answer to a question, with the passages it rests on.

    Iterate it (``async for`` or ``for``) to stream the text as it is generated;
    ``text`` holds what has arrived so far and everything once the stream ends.

    >>> answer = await rag.aquery("What did the author work on?")
    >>> print(answer.text)
    >>> for n, source in answer.citations: print(n, source.source, source.page)
    """

    question: str
    sources: list[Source]
    text: str = ""
    mode: str = "extractive"  # "llm" or "extractive"
    error: str | None = None  # why the LLM failed, if it did (the text is then extractive)
    timings: dict[str, float] = field(default_factory=dict)
    retrieval: str = "dense"  # how the passages were found: "dense", "lexical" or "hybrid"
    notes: list[str] = field(default_factory=list)  # e.g. why retrieval was dense only
    reranked_by: str = ""  # the cross-encoder that reordered the passages, if one did
    _tokens: AsyncIterator[str] | None = field(default=None, repr=False, compare=False)
    _runner: "LoopThread | None" = field(default=None, repr=False, compare=False)

    @property
    def citations(self) -> list[tuple[int, Source]]:
        """The sources the text cites, as (number, source), in order of number."""
        cited = sorted({n for n in cited_numbers(self.text) if 1 <= n <= len(self.sources)})
        return [(n, self.sources[n - 1]) for n in cited]

    async def __aiter__(self) -> AsyncIterator[str]:
        if self._tokens is None:
            if self.text:
                yield self.text
            return
        tokens, self._tokens = self._tokens, None
        stream = self._runner.aiter(tokens) if self._runner else tokens
        async for delta in stream:
            yield delta

    def __iter__(self) -> Iterator[str]:
        if self._tokens is None:
            if self.text:
                yield self.text
            return
        if self._runner is None:
            raise RuntimeError("this answer streams asynchronously; use 'async for'")
        tokens, self._tokens = self._tokens, None
        yield from self._runner.iter(tokens)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "answer": self.text,
            "sources": [s.to_dict() for s in self.sources],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "mode": self.mode,
            "retrieval": {"mode": self.retrieval, "reranked_by": self.reranked_by or None, "notes": list(self.notes)},
        }
        if self.error:
            out["error"] = self.error
        return out


def cited_numbers(text: str) -> list[int]:
    return [int(n) for group in _CITATION.findall(text) for n in group.split(",")]


def build_messages(question: str, sources: list[Source]) -> list[dict[str, str]]:
    """The chat messages for an LLM: the numbered passages, then the question."""
    blocks = []
    for n, source in enumerate(sources, 1):
        where = source.source + (f", page {source.page}" if source.page is not None else "")
        blocks.append(f"[{n}] ({where})\n{without_footnotes(source.text.strip())}")
    passages = "\n\n".join(blocks) or "(no passages were found)"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Passages:\n\n{passages}\n\nQuestion: {question}"},
    ]
