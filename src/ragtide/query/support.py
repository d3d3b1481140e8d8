"""Groundedness: how much of an answer the passages it cites actually say.

Each sentence of an answer is checked against the passages it cites: supported when most of
its content words are in them (lexically), or, failing that, when it means what one of
their sentences says (cosine similarity with the retrieval model). The answer's support is
the share of its sentences supported; a citation whose passage supports nothing of its
sentence is flagged. An extractive answer quotes its passages, so it is supported by
construction; an LLM's answer is checked after it is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..documents import Source
from ..text import sentence_spans, terms
from .citations import cited_numbers, strip_footnotes, without_citations

if TYPE_CHECKING:
    from ..embedding import Embedder

LEXICAL = 0.6  # share of a sentence's content words its cited passages must hold
MEANING = 0.7  # or: cosine similarity to one of their sentences


@dataclass(frozen=True)
class Support:
    """``score``: the share of the answer's sentences its citations support (None: nothing
    to check, such as "Not found"); ``flagged``: citation numbers that support nothing of
    the sentence citing them."""

    score: float | None
    flagged: tuple[int, ...] = ()


def claims(text: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences, each with the citation numbers it rests on: its own, or, for a
    sentence without any, those of the next sentence that has some ("A. B [1]." cites [1]
    for both)."""
    out: list[tuple[str, list[int]]] = []
    carried: list[int] = []
    for s, e in reversed(sentence_spans(text)):
        sentence = text[s:e]
        carried = cited_numbers(sentence) or carried
        out.append((sentence, carried))
    return out[::-1]


def _lexical(sentence: str, held: set[str]) -> bool:
    wanted = terms(strip_footnotes(without_citations(sentence)))
    if not wanted:
        return True  # nothing to check: "See below."
    return len(wanted & held) / len(wanted) >= LEXICAL


async def check(text: str, sources: list[Source], embedder: Embedder | None = None) -> Support:
    """How well ``sources`` support ``text``, by the citations in it. With ``embedder``,
    sentences not supported word for word are checked by meaning too."""
    found = [(sentence, numbers) for sentence, numbers in claims(text) if sentence.strip()]
    if not found:
        return Support(None)
    supported: list[bool] = []
    flagged: set[int] = set()
    doubtful: list[tuple[int, str, list[Source]]] = []
    passage_terms: dict[int, set[str]] = {}  # each cited passage's terms, once
    for k, (sentence, numbers) in enumerate(found):
        cited = [sources[n - 1] for n in numbers if 1 <= n <= len(sources)]
        flagged.update(n for n in numbers if not 1 <= n <= len(sources))
        held: set[str] = set()
        for n in numbers:
            if 1 <= n <= len(sources):
                held |= passage_terms.setdefault(n, terms(sources[n - 1].text))
        if cited and _lexical(sentence, held):
            supported.append(True)
            continue
        supported.append(False)
        if cited:
            doubtful.append((k, sentence, cited))
    if doubtful and embedder is not None:
        # One embedding call for every doubtful sentence and the sentences of its passages.
        texts: list[str] = []
        spans: list[tuple[int, int, int]] = []  # (claim index, its row, its passages' first row)
        for k, sentence, cited in doubtful:
            pieces = [p.text[s:e] for p in cited for s, e in sentence_spans(p.text)][:64]
            spans.append((k, len(texts), len(texts) + 1))
            texts += [without_citations(sentence), *pieces]
        vectors = await embedder.embed(texts)
        ends = [first for _, first, _ in spans[1:]] + [len(texts)]
        for (k, row, first), end in zip(spans, ends):
            if end > first and float(np.max(vectors[first:end] @ vectors[row])) >= MEANING:
                supported[k] = True
    for (_, numbers), ok in zip(found, supported):
        if not ok:
            flagged.update(n for n in numbers if 1 <= n <= len(sources))
    return Support(round(sum(supported) / len(supported), 4), tuple(sorted(flagged)))
