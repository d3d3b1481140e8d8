"""Follow-up questions, read with the conversation before them.

"And the trusted variant of it?" names nothing to search for: what "it" is was said a turn
earlier. Before retrieving, a follow-up becomes a question that stands alone:

- with an LLM, one short call rewrites it from the conversation (the way LlamaIndex's
  condense-question chat engine does); a question that already stands alone is not sent;
- offline, a follow-up that refers back (a pronoun or "that"/"there", an opening "and" or
  "what about", or a question of two content words or fewer) is searched together with the
  previous question as it was searched, so a chain of follow-ups keeps its topic.

A question that stands alone is searched as it is: a user who changes the subject is not
held to the old one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError
from ..text import terms

if TYPE_CHECKING:
    from .llm import LLM

# Who says a turn. (Not a key's role, ragtide.vocabulary.Role: OpenAI calls both "role".)
Speaker = Literal["user", "assistant"]
SPEAKERS: tuple[Speaker, ...] = ("user", "assistant")
# What of a conversation is read: its last turns, each cut to a length (older turns rarely
# decide what "it" is; a bounded prompt keeps the rewrite call short).
MAX_TURNS = 12
MAX_TURN_CHARS = 2000
# What a request may carry (the service refuses more, unread): turns, and characters a turn.
MAX_HISTORY = 1000
MAX_MESSAGE_CHARS = 20_000
MAX_CARRIED = 600  # characters of earlier questions a follow-up carries into its search

_REFERS_BACK = re.compile(
    r"\b(?:it|its|it's|they|them|their|theirs|this|that|these|those|there|he|him|his|she|her|hers|"
    r"former|latter|same|one|ones|else|also|too|either|neither)\b",
    re.IGNORECASE,
)
_OPENING = re.compile(r"^\s*(?:and|but|or|so|then|what about|how about|and what|and how|why not)\b", re.IGNORECASE)

CONDENSE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "replace pronouns and references with what they refer to, keep every other word, add "
    "nothing else. Reply with the question only."
)


@dataclass(frozen=True)
class Turn:
    """One message of a conversation: the user's question or the assistant's answer."""

    role: Speaker
    text: str

    @classmethod
    def parse(cls, value: Turn | Mapping[str, object], where: str = "history") -> Turn:
        """A turn from a :class:`Turn` or a ``{"role": ..., "content": ...}`` mapping (OpenAI's
        message shape); ``where`` names the field in errors."""
        if isinstance(value, Turn):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: each turn must be a mapping with 'role' and 'content'")
        role = value.get("role")
        text = value.get("content", value.get("text"))
        if role not in SPEAKERS:
            raise ConfigError(f"{where}: role must be one of {', '.join(SPEAKERS)}, not {role!r}")
        if not isinstance(text, str):
            raise ConfigError(f"{where}: content must be text")
        return cls(role, text)


def turns(history: Iterable[Turn | Mapping[str, object]] | None) -> list[Turn]:
    """The conversation's last :data:`MAX_TURNS` turns with text, each cut to :data:`MAX_TURN_CHARS`."""
    parsed = [Turn.parse(t, f"history[{k}]") for k, t in enumerate(history or ())]
    kept = [Turn(t.role, t.text.strip()[:MAX_TURN_CHARS]) for t in parsed if t.text.strip()]
    return kept[-MAX_TURNS:]


def refers_back(question: str) -> bool:
    """Whether ``question`` leans on what was said before ("And the trusted one?", "Why?")."""
    return bool(_REFERS_BACK.search(question) or _OPENING.match(question)) or len(terms(question)) <= 2


def offline_standalone(question: str, history: Sequence[Turn]) -> str:
    """The text to search for ``question`` without an LLM: each user turn in order, joined to
    the one before it as searched when it refers back, so a chain of follow-ups keeps its topic."""
    searched = ""
    for text in [t.text for t in history if t.role == "user"] + [question]:
        searched = f"{searched[-MAX_CARRIED:]} {text}".strip() if searched and refers_back(text) else text
    return searched


async def condense(question: str, history: Sequence[Turn], llm: LLM) -> str:
    """``question`` rewritten by ``llm`` to stand alone; the question itself if the reply is empty."""
    lines = [f"{t.role}: {' '.join(t.text.split())}" for t in history]
    messages = [
        {"role": "system", "content": CONDENSE_PROMPT},
        {"role": "user", "content": "Conversation:\n" + "\n".join(lines) + f"\n\nLast question: {question}"},
    ]
    reply = "".join([piece async for piece in llm.stream(messages)]).strip().strip('"').strip()
    return " ".join(reply.split())[: len(question) * 4 + 200] or question
