"""Values on their way into Milvus: string literals for filter expressions, VARCHAR text."""

from __future__ import annotations

import json

MAX_VARCHAR = 65535  # Milvus's VARCHAR limit, in bytes


def quote(value: str) -> str:
    """A string literal for a Milvus boolean expression, whatever ``value`` holds.

    Milvus reads the escapes JSON writes (``\\"``, ``\\\\``, ``\\n``, ``\\uXXXX``), so a
    path with quotes or backslashes matches exactly itself (tested on Lite and server).
    """
    return json.dumps(value, ensure_ascii=False)


def clip_utf8(text: str, limit: int = MAX_VARCHAR) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, on a character boundary."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


class varchar(str):
    """A long string on its way into a VARCHAR field.

    pymilvus (3.0.2, and 2.6) checks a row's VARCHAR value by iterating it as though it
    were a list of strings: an isinstance and a len call per character, ~35 us for a
    1,000-character chunk and over a third of the client's time per written row. This
    str iterates as its whole self, so the check still runs (on the whole string) once.
    """

    __slots__ = ()

    def __iter__(self):
        yield str(self)
