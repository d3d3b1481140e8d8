"""Metadata a user attaches to documents (``--meta team=legal``): checked, typed, and kept
apart from what readers record themselves, so filters can use it
(``metadata["team"] == "legal"``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigError

Value = str | int | float | bool
KEY = re.compile(r"[A-Za-z0-9_\-. ]{1,64}")  # what the filter language can name
MAX_KEYS = 32
MAX_VALUE_CHARS = 512
# Set by the readers and the ingest itself: a user's value would be overwritten, or would lie.
RESERVED = frozenset(
    {"type", "title", "pages", "where", "section", "sections", "ocr_pages", "columns", "rows", "records"}
    | {"bytes", "ingested"}
)


def checked(values: Mapping[str, Any]) -> dict[str, Value]:
    """``values`` as document metadata, or a :class:`ConfigError` naming the key at fault."""
    if len(values) > MAX_KEYS:
        raise ConfigError(f"metadata: at most {MAX_KEYS} keys, got {len(values)}")
    out: dict[str, Value] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise ConfigError(f"metadata: key {key!r} is not 1 to 64 letters, digits, spaces or _ - .")
        if key in RESERVED:
            raise ConfigError(f"metadata: {key!r} is set by ragtide itself; choose another key")
        if not isinstance(value, (str, int, float, bool)) or isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise ConfigError(
                f"metadata: {key!r} must be a string (at most {MAX_VALUE_CHARS} characters), number or boolean"
            )
        out[key] = value
    return out


def parse_pairs(pairs: Iterable[str]) -> dict[str, Value]:
    """``["team=legal", "year=2024"]`` as metadata: numbers and true/false typed, the rest strings."""
    values: dict[str, Value] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ConfigError(f"metadata: {pair!r} is not KEY=VALUE")
        values[key.strip()] = _typed(raw.strip())
    return checked(values)


def _typed(raw: str) -> Value:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if re.fullmatch(r"-?\d{1,15}", raw):
        return int(raw)
    if re.fullmatch(r"-?\d+\.\d+", raw):
        return float(raw)
    return raw


def stamp(size: int) -> dict[str, Value]:
    """What the ingest records of a file as it stores it: its size, and when."""
    return {"bytes": size, "ingested": datetime.now(UTC).isoformat(timespec="seconds")}
