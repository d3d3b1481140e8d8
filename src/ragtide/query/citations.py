"""Citations: passages are cited as [1], [2], numbered in the order the sources are listed.

Passages often carry footnote markers of their own ("... the summer of 1998. [8]"). Both
ways of keeping them from passing for citations live here: a quote drops them
(:func:`strip_footnotes`), and the passages shown to an LLM write them as "[^8]"
(:func:`without_footnotes`).
"""

from __future__ import annotations

import re

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_FOOTNOTE = re.compile(r"\s?\[\d{1,3}\](?=\s|$|[.,;:])")


def cited_numbers(text: str) -> list[int]:
    """The citation numbers in ``text``, in order: "[1] ... [2, 3]" -> [1, 2, 3]."""
    return [int(n) for group in _CITATION.findall(text) for n in group.split(",")]


def without_citations(text: str) -> str:
    """``text`` without its [n] citations."""
    return _CITATION.sub("", text)


def cite(sentence: str, n: int) -> str:
    """Put the citation before the sentence's closing punctuation: "... in 1986 [2]."."""
    m = re.search(r"[.!?]['\"”’)]*$", sentence)
    if m:
        return f"{sentence[: m.start()]} [{n}]{sentence[m.start() :]}"
    return f"{sentence} [{n}]"


def strip_footnotes(text: str) -> str:
    """``text`` without its footnote markers, for quoting."""
    return _FOOTNOTE.sub("", text).strip()


def without_footnotes(text: str) -> str:
    """``text`` with its footnote markers written so they cannot pass for citations: [13] -> [^13]."""
    return re.sub(r"\[(\d{1,3})\]", r"[^\1]", text)
