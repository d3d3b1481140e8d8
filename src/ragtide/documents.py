"""The data that flows through ragtide: documents in, chunks stored, hits out.

Ids are derived from content, never random, so the same input always maps to the
same rows and re-ingesting is idempotent.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .sentences import SentenceVectors

SECTION_SEP = " › "
CHUNK_KEYS = frozenset({"where", "section"})
"""Metadata keys that describe where a chunk lies, not its document."""


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
class Heading:
    """A heading of a document: where its line starts in Document.text, its level (1 is the
    top) and its title."""

    start: int
    level: int
    title: str


def doc_id(key: str, tenant: str = "") -> str:
    """A document's id: from its key, and its tenant's name when it has one, so two tenants'
    copies of one file are two documents."""
    return digest(tenant, key) if tenant else digest(key)


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
    headings: tuple[Heading, ...] = ()  # in order of their start
    tenant: str = ""  # whose document it is, in a collection shared by tenants ("": the collection's own)

    @property
    def doc_id(self) -> str:
        return doc_id(self.key, self.tenant)

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

    def section_at(self, offset: int) -> str:
        """The path of headings in force at character ``offset``: "Installation › Proxies", or "".
        A document's title (a lone heading above all others) is not part of the path."""
        k = bisect.bisect_right(self._heading_starts, offset) - 1
        return self._section_paths[k] if k >= 0 else ""

    @cached_property
    def _heading_starts(self) -> list[int]:
        return [h.start for h in self.headings]

    @cached_property
    def _section_paths(self) -> list[str]:
        levels = [h.level for h in self.headings]
        titled = len(levels) > 1 and levels[0] == min(levels) and levels.count(levels[0]) == 1
        paths: list[str] = []
        stack: list[Heading] = []
        for k, heading in enumerate(self.headings):
            if titled and k == 0:
                paths.append("")
                continue
            while stack and stack[-1].level >= heading.level:
                stack.pop()
            stack.append(heading)
            paths.append(SECTION_SEP.join(h.title for h in stack))
        return paths

    def top_level_starts(self) -> list[int]:
        """Where each top-level section begins: the shallowest heading level used more than
        once (a lone title above them is not a level of sections)."""
        levels = [h.level for h in self.headings]
        repeated = [level for level in set(levels) if levels.count(level) > 1]
        if not repeated:
            return []
        top = min(repeated)
        return [h.start for h in self.headings if h.level == top]

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
    # Its answer units' vectors, as stored at ingest (none from collections made before them).
    sentences: SentenceVectors = field(default=SentenceVectors(), repr=False, compare=False)

    @property
    def where(self) -> str:
        """Where in its document the passage is: "slide 4", "sheet Revenue", "page 12", or ""."""
        label = self.metadata.get("where") if isinstance(self.metadata, dict) else None
        if label:
            return str(label)
        return f"page {self.page}" if self.page is not None else ""

    @property
    def section(self) -> str:
        """The headings above the passage: "Installation › Proxies", or ""."""
        section = self.metadata.get("section") if isinstance(self.metadata, dict) else None
        return str(section) if section else ""

    def cite(self, name: str | None = None) -> str:
        """How a citation names the passage: "guide.docx › Installation › Proxies, page 3"
        (``name``: how to show the source, by default as stored)."""
        shown = self.source if name is None else name
        if self.section:
            shown += SECTION_SEP + self.section
        return f"{shown}, {self.where}" if self.where else shown

    def __str__(self) -> str:
        return self.cite()

    def __repr__(self) -> str:
        text = " ".join(self.text.split())
        return f"Source({self.cite()!r}, score={self.score:.3f}, text={_clip(text)!r})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "page": self.page,
            "where": self.where,
            "section": self.section,
            "score": round(self.score, 6),
            "metadata": {k: v for k, v in self.metadata.items() if k not in CHUNK_KEYS},
        }


def _clip(text: str, at: int = 80) -> str:
    return text if len(text) <= at else text[: at - 1] + "…"
