"""The :class:`Answer`: its text (streamed or whole), the passages it rests on, how it was made."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Any

from ..documents import Source
from ..vocabulary import AnswerMode, Mode
from .citations import cited_numbers

if TYPE_CHECKING:
    from .._loop import LoopThread


@dataclass
class Answer:
    """The answer to a question, with the passages it rests on.

    Iterate it (``async for`` or ``for``) to stream the text as it is generated;
    ``text`` holds what has arrived so far and everything once the stream ends.

    >>> answer = await rag.aquery("What did the author work on?")
    >>> print(answer.text)
    >>> for n, source in answer.citations: print(n, source.source, source.page)

    ``write``, given, produces the text: called with the answer, it returns the stream of
    its pieces, which fills the answer as it goes; ``runner`` is the loop it runs on.
    """

    question: str
    sources: list[Source]
    searched: str = ""  # the question as searched: a follow-up made to stand alone (else the question)
    text: str = ""
    mode: AnswerMode = "extractive"
    error: str | None = None  # why the LLM failed, if it did (the text is then extractive)
    timings: dict[str, float] = field(default_factory=dict)
    retrieval: Mode = "dense"  # how the passages were found
    notes: list[str] = field(default_factory=list)  # e.g. why retrieval was dense only
    reranked_by: str = ""  # the cross-encoder that reordered the passages, if one did
    abstained: bool = False  # the documents do not support an answer: the text says so
    support: float | None = None  # share of the text's sentences its cited passages support
    flagged: list[int] = field(default_factory=list)  # citations whose passage supports nothing of their sentence
    highlights: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # source index -> quoted spans
    write: InitVar[Callable[[Answer], AsyncIterator[str]] | None] = None
    runner: InitVar[LoopThread | None] = None
    _tokens: AsyncIterator[str] | None = field(default=None, init=False, repr=False, compare=False)
    _runner: LoopThread | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self, write: Callable[[Answer], AsyncIterator[str]] | None, runner: LoopThread | None) -> None:
        self._tokens = write(self) if write is not None else None
        self._runner = runner

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

    def __str__(self) -> str:
        """The text, then the sources it cites, one a line: what a reader wants from ``print(answer)``."""
        cited = "".join(f"\n[{n}] {source.cite()}" for n, source in self.citations)
        return self.text + ("\n" + cited if cited else "")

    def __repr__(self) -> str:
        text = " ".join(self.text.split())
        text = text if len(text) <= 80 else text[:79] + "…"
        return (
            f"Answer({text!r}, question={self.question!r}, sources={len(self.sources)}, mode={self.mode!r}, "
            f"retrieval={self.retrieval!r}{', abstained=True' if self.abstained else ''})"
        )

    def to_dict(self) -> dict[str, Any]:
        sources = [s.to_dict() for s in self.sources]
        for k, source in enumerate(sources):
            source["highlights"] = [list(span) for span in self.highlights.get(k, [])]
        out: dict[str, Any] = {
            "answer": self.text,
            "searched": self.searched or None,
            "abstained": self.abstained,
            "support": self.support,
            "flagged_citations": list(self.flagged),
            "sources": sources,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "mode": self.mode,
            "retrieval": {"mode": self.retrieval, "reranked_by": self.reranked_by or None, "notes": list(self.notes)},
        }
        if self.error:
            out["error"] = self.error
        return out
