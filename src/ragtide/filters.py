"""The filter language: what a caller may ask to restrict a search to, parsed, never passed on.

A filter names stored fields and compares them with literals::

    metadata["type"] == "pdf" and page >= 40
    source like "/home/me/papers/%" or not (doc_id in ["3f2a...", "9bc1..."])

Fields: ``source``, ``doc_id`` (strings), ``page``, ``chunk_index`` (integers), and
``metadata["key"]`` (whatever the document's metadata holds under ``key``). Operators:
``== != < <= > >=``, ``in`` and ``not in`` a list, ``like`` a string pattern (``%`` matches
anything; at most :data:`MAX_WILDCARDS`), ``and``, ``or``, ``not``, parentheses. Literals:
strings in double or single quotes, numbers, ``true``, ``false``. Nothing else: no
arithmetic, no functions, no other fields.

Milvus's own expressions are a larger language, and parts of it hurt the server: a
division by zero killed Milvus Lite, a ``like`` with hundreds of wildcards kept Milvus
busy for minutes. So the text a caller sends is parsed into a tree, bounded in length,
depth, comparisons and wildcards, and the expression Milvus gets is written from the
tree. :meth:`Filter.raw` passes an expression through unparsed, for trusted local use.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

MAX_CHARS = 2000
MAX_DEPTH = 8  # nested parentheses and "not"s
MAX_COMPARISONS = 64
MAX_LIST = 256  # values in one "in" list
MAX_WILDCARDS = 4  # "%" in one "like" pattern

STRING_FIELDS = ("source", "doc_id")
NUMBER_FIELDS = ("page", "chunk_index")
_META_KEY = re.compile(r"[A-Za-z0-9_\-. ]{1,64}")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|&&|\|\|)
    )""",
    re.X,
)
_KEYWORDS = {"and", "or", "not", "in", "like", "true", "false"}
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}


@dataclass(frozen=True)
class Filter:
    """A filter ready for Milvus. Build it with :meth:`parse` (anyone's text) or :meth:`raw`
    (a Milvus expression from a trusted caller)."""

    expression: str

    @classmethod
    def parse(cls, text: str) -> Filter:
        """The filter ``text`` says, or a :class:`ConfigError` naming what is wrong and where."""
        return cls(_Parser(text).parse())

    @classmethod
    def raw(cls, expression: str) -> Filter:
        """A Milvus boolean expression, passed on as it is: only for trusted, local callers."""
        return cls(expression)


def narrowed(expression: str, field: str, values: list[str]) -> str:
    """``expression`` (may be empty) and ``field`` being one of ``values``, a string field's."""
    if field not in STRING_FIELDS:
        raise ValueError(f"{field}: not a string field")
    among = f"{field} in [{', '.join(_literal(v) for v in values)}]"
    return f"({expression}) and {among}" if expression else among


def expression(given: str | Filter | None) -> str:
    """The Milvus expression for a filter given as text (parsed) or as a :class:`Filter`."""
    if given is None:
        return ""
    if isinstance(given, Filter):
        return given.expression
    return Filter.parse(given).expression if given.strip() else ""


class _Parser:
    """Recursive descent over the tokens; emits the Milvus expression as it goes."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_CHARS:
            raise ConfigError(f"filter: at most {MAX_CHARS:,} characters, got {len(text):,}")
        self._text = text
        self._tokens = self._tokenize(text)
        self._at = 0
        self._comparisons = 0

    def _tokenize(self, text: str) -> list[tuple[str, str, int]]:
        tokens = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                start = pos + len(text[pos:]) - len(text[pos:].lstrip())
                raise self._error(f"unexpected {text[start]!r}", start)
            group = kind = m.lastgroup or ""
            value = m.group(group)
            if kind == "name" and value.lower() in _KEYWORDS:
                kind, value = "keyword", value.lower()
            elif kind == "op" and value in ("&&", "||"):
                kind, value = "keyword", "and" if value == "&&" else "or"
            tokens.append((kind, value, m.start(group)))
            pos = m.end()
        return tokens

    def _error(self, what: str, at: int | None = None) -> ConfigError:
        where = len(self._text) if at is None else at
        shown = self._text if len(self._text) <= 80 else self._text[:77] + "..."
        return ConfigError(f"filter: {what} at character {where + 1} of {shown!r}")

    def _peek(self) -> tuple[str, str, int] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _where(self) -> int | None:
        token = self._peek()
        return token[2] if token is not None else None

    def _next(self, expected: str) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise self._error(f"{expected} expected, the filter ended")
        self._at += 1
        return token

    def _accept(self, kind: str, value: str) -> bool:
        token = self._peek()
        if token is not None and token[0] == kind and token[1] == value:
            self._at += 1
            return True
        return False

    def parse(self) -> str:
        if not self._tokens:
            raise self._error("empty filter", 0)
        out = self._or(0)
        token = self._peek()
        if token is not None:
            raise self._error(f"unexpected {token[1]!r}", token[2])
        return out

    def _or(self, depth: int) -> str:
        parts = [self._and(depth)]
        while self._accept("keyword", "or"):
            parts.append(self._and(depth))
        return " or ".join(parts)

    def _and(self, depth: int) -> str:
        parts = [self._unary(depth)]
        while self._accept("keyword", "and"):
            parts.append(self._unary(depth))
        return " and ".join(parts)

    def _unary(self, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise self._error(f"nested deeper than {MAX_DEPTH} levels", self._where())
        if self._accept("keyword", "not"):
            return f"not ({self._unary(depth + 1)})"
        if self._accept("op", "("):
            inner = self._or(depth + 1)
            kind, value, at = self._next("')'")
            if (kind, value) != ("op", ")"):
                raise self._error(f"')' expected, not {value!r}", at)
            return f"({inner})"
        return self._comparison()

    def _comparison(self) -> str:
        self._comparisons += 1
        if self._comparisons > MAX_COMPARISONS:
            raise self._error(f"more than {MAX_COMPARISONS} comparisons", self._where())
        field, kind = self._field()
        token = self._next("an operator")
        op = token[1]
        if token[0] == "op" and op in _COMPARE:
            value = self._literal()
            self._check_type(field, kind, value, token[2])
            if op not in ("==", "!=") and isinstance(value, (str, bool)) and kind != "json":
                raise self._error(f"{op} compares numbers; {field} holds strings", token[2])
            return f"{field} {op} {_literal(value)}"
        if token[0] == "keyword" and op == "not":
            if not self._accept("keyword", "in"):
                raise self._error("'in' expected after 'not'", token[2])
            return f"{field} not in {self._list(field, kind)}"
        if token[0] == "keyword" and op == "in":
            return f"{field} in {self._list(field, kind)}"
        if token[0] == "keyword" and op == "like":
            at = self._where()
            pattern = self._literal()
            if not isinstance(pattern, str) or kind == "number":
                raise self._error(f'like matches strings: {field} with a quoted pattern such as "abc%"', at)
            if pattern.count("%") > MAX_WILDCARDS:
                raise self._error(f"a like pattern may hold at most {MAX_WILDCARDS} '%'", at)
            return f"{field} like {_literal(pattern)}"
        raise self._error(f"an operator (== != < <= > >= in like) expected, not {op!r}", token[2])

    def _field(self) -> tuple[str, str]:
        kind, value, at = self._next("a field")
        if kind != "name":
            raise self._error(f"a field expected, not {value!r}", at)
        if value in STRING_FIELDS:
            return value, "string"
        if value in NUMBER_FIELDS:
            return value, "number"
        if value == "metadata":
            if not self._accept("op", "["):
                raise self._error('metadata needs a key: metadata["key"]', at)
            key_kind, key, key_at = self._next("a quoted key")
            if key_kind != "string":
                raise self._error('metadata needs a quoted key: metadata["key"]', key_at)
            name = _string(key)
            if not _META_KEY.fullmatch(name):
                raise self._error("a metadata key is 1 to 64 letters, digits, spaces or _ - .", key_at)
            if not self._accept("op", "]"):
                raise self._error("']' expected after the metadata key", key_at)
            return f"metadata[{json.dumps(name)}]", "json"
        known = ", ".join([*STRING_FIELDS, *NUMBER_FIELDS, 'metadata["key"]'])
        raise self._error(f"unknown field {value!r} (fields: {known})", at)

    def _literal(self) -> Any:
        kind, value, at = self._next("a value")
        if kind == "string":
            return _string(value)
        if kind == "number":
            number = float(value) if any(c in value for c in ".eE") else int(value)
            if isinstance(number, float) and not math.isfinite(number) or abs(number) >= 2**63:
                raise self._error(f"{value} is out of range", at)
            return number
        if kind == "keyword" and value in ("true", "false"):
            return value == "true"
        raise self._error(f"a value (a quoted string, a number, true or false) expected, not {value!r}", at)

    def _list(self, field: str, kind: str) -> str:
        kind_, value, at = self._next("'['")
        if (kind_, value) != ("op", "["):
            raise self._error(f"a list in brackets expected, not {value!r}", at)
        values: list[Any] = []
        while not self._accept("op", "]"):
            if values and not self._accept("op", ","):
                token = self._peek()
                raise self._error("',' or ']' expected", token[2] if token else None)
            token_at = self._where()
            item = self._literal()
            self._check_type(field, kind, item, token_at)
            values.append(item)
            if len(values) > MAX_LIST:
                raise self._error(f"a list may hold at most {MAX_LIST} values", token_at)
        if not values:
            raise self._error("an empty list", at)
        return "[" + ", ".join(_literal(v) for v in values) + "]"

    def _check_type(self, field: str, kind: str, value: Any, at: int | None) -> None:
        if kind == "string" and not isinstance(value, str):
            raise self._error(f"{field} holds strings: compare it with a quoted string", at)
        if kind == "number" and (isinstance(value, (str, bool))):
            raise self._error(f"{field} holds whole numbers: compare it with a number", at)


def _string(token: str) -> str:
    body = token[1:-1]
    if token[0] == "'":
        body = body.replace("\\'", "'").replace('"', '\\"')
    try:
        value = json.loads(f'"{body}"')
    except ValueError:
        raise ConfigError(f"filter: {token} is not a well-formed string") from None
    return str(value)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)
