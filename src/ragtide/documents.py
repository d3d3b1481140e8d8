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
    """A span of a document's text that came from one page (PDFs), slide, sheet or chapter,
    or the whole file."""

    number: int | None  # 1-based page number, None for formats without pages
    start: int  # character offset of the page in Document.text
    end: int
    label: str = ""  # how to cite it when not "page N": "slide 4", "sheet Revenue"


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
        page = self._page_of(offset)
        return page.number if page is not None else None

    def label_at(self, offset: int) -> str:
        """How to cite the page holding character ``offset`` ("slide 4"), or "" for "page N"."""
        page = self._page_of(offset)
        return page.label if page is not None else ""

    def _page_of(self, offset: int) -> Page | None:
        for page in self.pages:
            if page.start <= offset < page.end:
                return page
        return self.pages[-1] if self.pages else None


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

    @property
    def where(self) -> str:
        """Where in its document the passage is: "slide 4", "sheet Revenue", "page 12", or ""."""
        label = self.metadata.get("where") if isinstance(self.metadata, dict) else None
        if label:
            return str(label)
        return f"page {self.page}" if self.page is not None else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "page": self.page,
            "where": self.where,
            "score": round(self.score, 6),
            "metadata": {k: v for k, v in self.metadata.items() if k != "where"},
        }
