"""The data that flows through ragtide: documents in, chunks stored, hits out.

Ids are derived from content, never random, so the same input always maps to the
same rows and re-ingesting is idempotent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def digest(*parts: str, size: int = 32) -> str:
    """A stable hex digest of ``parts`` (NUL-separated so ("ab", "c") != ("a", "bc"))."""
    h = hashlib.blake2b(digest_size=size // 2)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Page:
    """A span of a document's text that came from one page (PDFs) or the whole file."""

    number: int | None  # 1-based page number, None for formats without pages
    start: int  # character offset of the page in Document.text
    end: int


@dataclass(frozen=True)
class Document:
    """A loaded document: its full text and where each page lies in it.

    ``key`` identifies the document across ingests (the file path, or an id the
    caller chose); ``doc_id`` and ``content_hash`` are derived from it and the text.
    """

    key: str
    text: str
    pages: tuple[Page, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def doc_id(self) -> str:
        return digest(self.key)

    @property
    def content_hash(self) -> str:
        return digest(self.text, *(f"{p.number}:{p.start}:{p.end}" for p in self.pages))

    def page_at(self, offset: int) -> int | None:
        """The page number holding character ``offset``."""
        for page in self.pages:
            if page.start <= offset < page.end:
                return page.number
        return self.pages[-1].number if self.pages else None


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough for the embedding model to see whole."""

    id: str
    doc_id: str
    source: str
    text: str
    index: int  # position of the chunk in its document
    start: int  # character offsets into Document.text
    end: int
    page: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """A retrieved passage, as shown to the user and cited in answers."""

    id: str
    text: str
    source: str
    score: float
    page: int | None = None
    chunk_index: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    start: int = 0  # character offsets of the passage in its document's text
    end: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "page": self.page,
            "score": round(self.score, 6),
        }
