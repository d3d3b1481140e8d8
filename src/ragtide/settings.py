"""Settings: one typed object, read from arguments, then ``RAGTIDE_*`` variables, then defaults."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .vocabulary import CONSISTENCY_LEVELS, MODES, check, check_hits

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Variables that are not RAGTIDE_<FIELD>, by the names users already know.
_ALIASES = {"llm_api_key": ("RAGTIDE_LLM_API_KEY", "OPENAI_API_KEY")}


@dataclass(frozen=True)
class Settings:
    """Everything ragtide can be configured with.

    >>> Settings.load(uri="http://localhost:19530", collection="docs").collection
    'docs'
    """

    uri: str = "./ragtide.db"
    """Milvus Lite file (``*.db``), ``http(s)://host:port`` of a server, or a Zilliz Cloud URI."""
    token: str = ""
    """Milvus token (``user:password`` or an API key); empty for Lite and open servers."""
    collection: str = "ragtide"
    embed_model: str = ""
    """A sentence-transformers model name or local path. Empty: the collection's own model,
    or for a new collection all-MiniLM-L6-v2, which ships with ragtide."""
    embed_device: str = ""
    """``cpu``, ``cuda``, ``mps``; empty picks what sentence-transformers picks."""
    embed_batch_size: int = 32
    embed_backend: str = ""
    """What runs the model: ``torch``, ``onnx`` or ``openvino``. Empty: OpenVINO on a CPU where
    it is installed (as fast or faster, same vectors: docs/benchmarks.md), torch on an accelerator."""
    embed_quantize: str = ""
    """``none`` or ``int8`` (int8 weights, onnx or openvino). Empty: the collection's, else none.
    int8 vectors differ slightly from fp32's, so a collection holds one kind only."""
    embed_threads: int = 0
    """Threads the embedding backend uses per batch; 0: every core the process may use."""
    cache_dir: str = ""
    """Where exported models are kept; empty: ``$XDG_CACHE_HOME/ragtide`` or ``~/.cache/ragtide``."""
    chunk_tokens: int = 0
    """Chunk size in the embedding model's tokens; 0 means the model's own limit."""
    chunk_overlap: int = 32
    sentence_vectors: bool = True
    """Store the vectors of each chunk's sentences (its answer units) at ingest, so an
    offline answer embeds nothing but the question: about twice the model's work at ingest
    and two thirds more on disk, for answers twice as fast under load (docs/benchmarks.md).
    Off: answers embed the sentences they weigh, keeping them in memory once seen. Changing
    it stores documents again at their next ingest."""
    top_k: int = 5
    mode: str = ""
    """Retrieval: ``dense``, ``lexical`` (BM25) or ``hybrid``. Empty: hybrid where the collection
    has a full-text index, else dense."""
    fusion_candidates: int = 200
    """Hits each leg of a hybrid search fetches before fusion (at least top_k)."""
    fusion_dense_weight: float = 0.6
    """The dense leg's share of a hybrid score (each leg's scores scaled by its best); the
    full-text leg has the rest. 0.6 was best on the dev sets (SciFact train, Uber val, the
    dev questions: docs/benchmarks.md)."""
    fusion_phrase_weight: float = 0.3
    """What a hybrid hit holding all of the question's two-word phrases gains (see
    ``retrieve.PhraseBoost``); 0 turns it off."""
    fusion_name_weight: float = 0.3
    """What a hybrid hit gains when the question names its document ("tail" of tail.1.txt,
    "pip" of pip-authentication.md: see ``retrieve.named_documents_first``); 0 turns it off."""
    rerank_model: str = ""
    """A sentence-transformers CrossEncoder (name or path) to rerank the fused candidates; empty: off."""
    rerank_pool: int = 30
    """How many fused candidates the reranker reads."""
    consistency: str = "Session"
    """Read consistency: Session sees your own writes at a fraction of Strong's cost."""
    retry_s: float = 60.0
    """How long to keep retrying Milvus while it is unreachable (restarting, overloaded) before
    failing; reads give up after at most 10 s."""
    max_file_mb: float = 100.0
    """Files larger than this are refused (memory grows with the largest file: about 3x its text)."""
    max_doc_pages: int = 10_000
    """Documents with more pages are refused."""
    max_doc_chars: int = 20_000_000
    """Documents whose text is longer are refused, as soon as reading them gets that far (and
    any whose text passes a million characters at over 25 a byte of its file: a bomb)."""
    max_doc_chunks: int = 100_000
    """Documents that would make more chunks are refused before any is embedded."""
    max_ocr_pages: int = 300
    """Documents with more scanned pages than this are refused before OCR starts (a page costs
    about a second of a core)."""
    abstain_below: float = -1.0
    """Offline answers say "Not found in your documents." when the best sentence scores below
    this (meaning + words), or when the question is about something no passage found
    mentions (a name: "Docker"; an uncommon English word: "encrypts"). Negative: the
    threshold measured for the model in use (all-MiniLM-L6-v2: 0.53), none for others,
    mentions checked for every model; 0: never."""
    llm_base_url: str = ""
    """An OpenAI-compatible endpoint. Empty (with no llm_model) answers extractively, offline."""
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout: float = 60.0
    """Seconds to wait for the LLM's first and each following token."""

    def __post_init__(self) -> None:
        check("consistency", self.consistency, CONSISTENCY_LEVELS)
        if self.embed_batch_size < 1:
            raise ConfigError(f"embed_batch_size: must be at least 1, got {self.embed_batch_size}")
        for name in ("top_k", "fusion_candidates", "rerank_pool"):
            check_hits(name, getattr(self, name))
        if not 0.0 <= self.fusion_dense_weight <= 1.0:
            raise ConfigError(f"fusion_dense_weight: must be between 0 and 1, got {self.fusion_dense_weight}")
        if not 0.0 <= self.fusion_phrase_weight <= 1.0:
            raise ConfigError(f"fusion_phrase_weight: must be between 0 and 1, got {self.fusion_phrase_weight}")
        if not 0.0 <= self.fusion_name_weight <= 1.0:
            raise ConfigError(f"fusion_name_weight: must be between 0 and 1, got {self.fusion_name_weight}")
        if self.mode:
            check("mode", self.mode, MODES)
        if self.embed_threads < 0:
            raise ConfigError(f"embed_threads: must not be negative, got {self.embed_threads}")
        if self.retry_s < 0:
            raise ConfigError(f"retry_s: must not be negative, got {self.retry_s}")
        if self.max_file_mb <= 0:
            raise ConfigError(f"max_file_mb: must be positive, got {self.max_file_mb}")
        for name in ("max_doc_pages", "max_doc_chars", "max_doc_chunks", "max_ocr_pages"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.chunk_tokens < 0 or self.chunk_overlap < 0:
            raise ConfigError("chunk_tokens and chunk_overlap must not be negative")
        if self.chunk_tokens and self.chunk_overlap >= self.chunk_tokens:
            raise ConfigError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_tokens ({self.chunk_tokens})"
            )
        if self.llm_timeout <= 0:
            raise ConfigError(f"llm_timeout: must be positive, got {self.llm_timeout}")

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_base_url or self.llm_model)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``overrides`` (None means "not given"), then ``env``, then defaults."""
        return cls(**read_fields(cls, "RAGTIDE_", env, overrides, _ALIASES))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def read_fields(
    cls: Any,
    prefix: str,
    env: Mapping[str, str] | None,
    overrides: Mapping[str, Any],
    aliases: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """The values of dataclass ``cls``'s fields: from ``overrides`` (None means "not given"),
    then ``<prefix><FIELD>`` variables of ``env`` (the process's by default), parsed by the
    field's declared type; fields given neither keep their defaults."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(cls):
        if overrides.get(f.name) is not None:
            values[f.name] = overrides[f.name]
            continue
        for var in (aliases or {}).get(f.name, (f"{prefix}{f.name.upper()}",)):
            if env.get(var):
                values[f.name] = _parse(f, var, env[var])
                break
    unknown = set(overrides) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return values


def _boolean(raw: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    try:
        return words[raw.strip().lower()]
    except KeyError:
        raise ValueError(raw) from None


# By the field's declared type, not its default's: bool("false") is True.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _boolean,
    "Path": Path,
    "Path | None": Path,
    "tuple[str, ...]": lambda raw: tuple(part.strip() for part in raw.split(",") if part.strip()),
}


def _parse(f: dataclasses.Field[Any], var: str, raw: str) -> Any:
    kind = str(f.type)
    if kind not in _PARSERS:
        raise ConfigError(f"{var}: {f.name} cannot be set from the environment")
    try:
        return _PARSERS[kind](raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r}: expected {kind}") from None
