"""ragtide's words, each defined once: retrieval modes, consistency levels, embedding
backends and weights, answer modes, roles, tenants' names, and Milvus's limit on hits.

The CLI's choices, the HTTP schema, settings and every check read them from here, so a
new mode or level is one line.
"""

from __future__ import annotations

from typing import Literal, TypeVar, get_args

from .errors import ConfigError

Mode = Literal["dense", "lexical", "hybrid"]
"""How passages are found: dense vectors, BM25 full text, or both fused."""
MODES: tuple[Mode, ...] = get_args(Mode)

Consistency = Literal["Strong", "Session", "Bounded", "Eventually"]
"""Milvus's read consistency levels. Session sees your own writes at a fraction of Strong's cost."""
CONSISTENCY_LEVELS: tuple[Consistency, ...] = get_args(Consistency)

Backend = Literal["torch", "onnx", "openvino"]
"""What runs the embedding model."""
BACKENDS: tuple[Backend, ...] = get_args(Backend)

Quantize = Literal["none", "int8"]
"""The embedding model's weights: as trained, or int8 (onnx and openvino only)."""
QUANTIZATIONS: tuple[Quantize, ...] = get_args(Quantize)

AnswerMode = Literal["llm", "extractive"]
"""Who wrote an answer: the LLM, or ragtide quoting the passages."""

MAX_HITS = 16384
"""Milvus's limit on hits per search (and on questions per request)."""

Role = Literal["read", "write", "admin"]
"""What a service key may do, each including the one before: ask and list; also upload and
delete; also see every tenant and the collections."""
ROLES: tuple[Role, ...] = get_args(Role)

MAX_TENANT = 64  # characters of a tenant's name

W = TypeVar("W", bound=str)


def check(field: str, value: str, allowed: tuple[W, ...]) -> W:
    """``value`` if it is one of ``allowed``, else a :class:`ConfigError` naming ``field``."""
    if value not in allowed:
        raise ConfigError(f"{field}: {value!r} is not one of {', '.join(allowed)}")
    return value


def check_hits(field: str, value: int) -> int:
    """``value`` if it is a valid number of hits (1..MAX_HITS), else a :class:`ConfigError`."""
    if value < 1:
        raise ConfigError(f"{field}: must be at least 1, got {value}")
    if value > MAX_HITS:
        raise ConfigError(f"{field}: at most {MAX_HITS:,} (Milvus's limit on hits per search), got {value:,}")
    return value


def check_tenant(tenant: str) -> str:
    """``tenant``, if it is a tenant's name (1-64 letters, digits, "_", "-", "."); else ConfigError."""
    if not (0 < len(tenant) <= MAX_TENANT) or not all(c.isalnum() or c in "_-." for c in tenant):
        raise ConfigError(f"tenant {tenant[:80]!r}: 1-{MAX_TENANT} letters, digits, '_', '-' or '.'")
    return tenant
