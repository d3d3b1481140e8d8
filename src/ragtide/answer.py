"""Answers: an LLM's, grounded in numbered passages, or an extractive one built offline.

Both cite passages as [1], [2], numbered in the order the sources are listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

import numpy as np

from .chunking import sentence_spans
from .documents import Source

if TYPE_CHECKING:
    from ._loop import LoopThread
    from .embedding import Embedder

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
            "retrieval": {"mode": self.retrieval, "notes": list(self.notes)},
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
        blocks.append(f"[{n}] ({where})\n{source.text.strip()}")
    passages = "\n\n".join(blocks) or "(no passages were found)"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Passages:\n\n{passages}\n\nQuestion: {question}"},
    ]


@dataclass(frozen=True)
class _Sentence:
    source: int  # index into sources
    start: int
    text: str


async def extractive_answer(
    question: str, sources: list[Source], embedder: "Embedder", *, max_sentences: int = 3, margin: float = 0.12
) -> str:
    """Pick the sentences of the passages that best answer ``question``, in reading order, cited.

    Sentences are scored with the same embedding model that retrieved the passages; the
    best one and those close to it are kept, so the answer is short when one sentence
    says it all.
    """
    candidates: list[_Sentence] = []
    for i, source in enumerate(sources):
        for s, e in sentence_spans(source.text):
            for start, text in _lines(source.text, s, e):
                words = len(text.split())
                # Headings, table rows, code and page furniture are not answers.
                if words < 4 or len(text) > 800 or not re.search(r"[a-z]", text) or text.count("|") >= 2:
                    continue
                candidates.append(_Sentence(i, start, text))
    if not candidates:
        if not sources:
            return "No passage in the collection answers this question."
        # Only fragments (tables, headings): show the best passage itself, cited.
        return _cite(" ".join(sources[0].text.split())[:600], 1)
    q = await embedder.embed_query(question)
    vectors = await embedder.embed([c.text for c in candidates])
    # Passage rank breaks near-ties: the retriever already judged the passage as a whole.
    scores = vectors @ q + np.array([0.05 * sources[c.source].score for c in candidates])
    order = np.argsort(-scores)
    best = float(scores[order[0]])
    chosen: list[_Sentence] = []
    seen: set[str] = set()
    for idx in order:
        if len(chosen) == max_sentences or scores[idx] < best - margin:
            break
        sentence = candidates[idx]
        if sentence.text.lower() in seen:
            continue
        seen.add(sentence.text.lower())
        chosen.append(sentence)
    chosen.sort(key=lambda c: (c.source, c.start))
    parts: list[str] = []
    for k, sentence in enumerate(chosen):
        parts.append(sentence.text)
        last_of_source = k + 1 == len(chosen) or chosen[k + 1].source != sentence.source
        if last_of_source:
            parts[-1] = _cite(parts[-1], sentence.source + 1)
    return " ".join(parts)


_CODE_OR_TABLE = re.compile(r"^(?: {4}|\t|\s*[|#>]|\s*```)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def _lines(text: str, start: int, end: int) -> list[tuple[int, str]]:
    """The prose of a sentence span: table rows, headings and code are dropped, list
    items stand alone, and wrapped lines are joined back into one sentence."""
    line_start = text.rfind("\n", 0, start) + 1
    if not text[line_start:start].strip():
        start = line_start  # keep the indentation that marks code
    pieces: list[tuple[int, str]] = []
    current: list[str] = []
    current_start = start
    offset = start
    for line in text[start:end].split("\n"):
        structural = _CODE_OR_TABLE.match(line)
        item = _LIST_ITEM.match(line)
        if (structural or item) and current:
            pieces.append((current_start, " ".join(current)))
            current = []
        if not structural:
            if not current:
                current_start = offset
            current.append(" ".join(line[item.end() if item else 0 :].split()))
        offset += len(line) + 1
    if current:
        pieces.append((current_start, " ".join(current)))
    return [(s, t) for s, t in pieces if t]


def _cite(sentence: str, n: int) -> str:
    """Put the citation before the sentence's closing punctuation: "... in 1986 [2]."."""
    m = re.search(r"[.!?]['\"”’)]*$", sentence)
    if m:
        return f"{sentence[: m.start()]} [{n}]{sentence[m.start():]}"
    return f"{sentence} [{n}]"
