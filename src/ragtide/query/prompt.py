"""What an LLM is told: answer from the numbered passages only, citing them."""

from __future__ import annotations

from ..documents import Source
from .citations import without_footnotes

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. "
    "After each claim, cite the passage(s) it comes from as [1], [2]. "
    "If the passages do not contain the answer, say that they do not."
)


WEAK_SUPPORT = (
    "Note: no passage seems to answer this question well. Unless one clearly does, answer "
    "exactly: Not found in your documents."
)


def build_messages(question: str, sources: list[Source], *, weak: bool = False) -> list[dict[str, str]]:
    """The chat messages for an LLM: the numbered passages, then the question (``weak``:
    with a warning that the passages seem not to answer it)."""
    blocks = []
    for n, source in enumerate(sources, 1):
        blocks.append(f"[{n}] ({source.cite()})\n{without_footnotes(source.text.strip())}")
    passages = "\n\n".join(blocks) or "(no passages were found)"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": f"Passages:\n\n{passages}\n\nQuestion: {question}" + (f"\n\n{WEAK_SUPPORT}" if weak else ""),
        },
    ]
