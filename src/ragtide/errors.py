"""One exception hierarchy, so callers catch by meaning.

Every message names the file, field or endpoint involved and, where there is one,
what to do about it. The CLI prints ``str(error)`` on one line.
"""

from __future__ import annotations


class RagtideError(Exception):
    """Base class of every error ragtide raises on purpose."""


class ConfigError(RagtideError, ValueError):
    """A setting is missing, malformed or inconsistent with the collection."""


class LoaderError(RagtideError):
    """A document could not be read or parsed. ``path`` names the file."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ChunkingError(RagtideError):
    """Chunks would not cover their document's whole text; nothing of it is stored."""


class EmbeddingError(RagtideError):
    """The embedding model could not be loaded or failed to encode."""


class StoreError(RagtideError):
    """Milvus could not be reached or refused a request."""


class LLMError(RagtideError):
    """The LLM endpoint failed: down, too slow, or answered with an error."""
