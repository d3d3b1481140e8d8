"""What the engine needs from a vector store, and the data that crosses that seam."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..documents import CHUNK_KEYS, Chunk, Source
from ..sentences import SentenceVectors
from ..vocabulary import MODES, Mode
from .values import clip_utf8, varchar


@dataclass(frozen=True)
class Fusion:
    """How a hybrid search merges its dense and full-text legs.

    Each leg fetches ``candidates`` hits (at least top_k). A leg's scores are scaled by its
    best one (cosine similarity and BM25 live on different scales), so its best hit scores 1,
    and a chunk's fused score is ``dense_weight`` times its dense share plus the rest times
    its full-text share. Unlike reciprocal rank fusion this keeps how far ahead a leg's best
    hits are; it beat RRF on SciFact train and Uber's eval and tied on the dev questions
    (docs/benchmarks.md, "Retrieval and answer quality").

    A chunk one leg did not return scores there that leg's last (lowest) returned score:
    the most it can have, as the leg returned its best. Counting it 0 instead sank a chunk
    that only the full-text leg found -- the one holding a 10-K's exact phrase -- below a
    hundred dense hits whose cosines all sit close to the best. A leg that returned fewer
    than it was asked for holds every chunk it can score, so a chunk it missed gets 0.
    """

    candidates: int = 200
    dense_weight: float = 0.6

    def leg_limit(self, top_k: int) -> int:
        """How many hits each leg fetches for ``top_k`` fused results."""
        return max(top_k, self.candidates)

    def fuse(
        self, dense: Sequence[tuple[str, float]], lexical: Sequence[tuple[str, float]], limit: int
    ) -> list[tuple[str, float]]:
        """The ``limit`` best (id, fused score) of the legs' (id, score) hits, best first;
        ties go to the dense leg's order. Each leg is its best ``leg_limit(limit)`` hits."""
        shares: list[dict[str, float]] = []
        floors: list[float] = []
        for leg, weight in ((dense, self.dense_weight), (lexical, 1.0 - self.dense_weight)):
            if not leg:
                shares.append({})
                floors.append(0.0)
                continue
            best = max(score for _, score in leg)
            # Measured from zero; from the leg's lowest score if that is below zero (a cosine
            # can be), so that scaling never turns the order round.
            lowest = min(score for _, score in leg)
            low = min(0.0, lowest)
            span = best - low or 1.0
            shares.append({item: weight * (score - low) / span for item, score in leg})
            floors.append(weight * (lowest - low) / span if len(leg) >= self.leg_limit(limit) else 0.0)
        order = list(dict.fromkeys([*shares[0], *shares[1]]))
        fused = {item: shares[0].get(item, floors[0]) + shares[1].get(item, floors[1]) for item in order}
        return sorted(fused.items(), key=lambda kv: -kv[1])[:limit]


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection remembers about how it was built, and what it holds."""

    name: str
    model: str
    dim: int
    chunks: int = 0
    documents: int = 0  # complete documents
    lexical: bool = False  # has a full-text (BM25) index, so lexical and hybrid retrieval work
    incomplete: dict[str, str] = field(default_factory=dict)  # source -> what is missing
    note: str = ""  # why the collection has no full-text index, and how to get one
    quantize: str = "none"  # "int8": its vectors came from int8 weights
    embedded_with: str = ""  # the backend that created it, e.g. "openvino fp32"
    sentences: bool = False  # stores its chunks' answer units' vectors (see ragtide.sentences)

    @property
    def modes(self) -> tuple[Mode, ...]:
        return MODES if self.lexical else ("dense",)

    @property
    def default_mode(self) -> Mode:
        return "hybrid" if self.lexical else "dense"


@dataclass(frozen=True)
class DocumentInfo:
    """One stored document, as ``ragtide list`` shows it."""

    doc_id: str
    source: str
    chunks: int
    metadata: dict[str, Any] = field(default_factory=dict)  # the readers', the ingest's and the user's

    @property
    def format(self) -> str:
        return str(self.metadata.get("type", ""))

    @property
    def pages(self) -> int | None:
        pages = self.metadata.get("pages")
        return int(pages) if isinstance(pages, int) else None

    @property
    def sections(self) -> int | None:
        """How many headings its reader found (documents without headings: None)."""
        sections = self.metadata.get("sections")
        return int(sections) if isinstance(sections, int) else None

    @property
    def size(self) -> int | None:
        """The file's size in bytes when it was ingested (documents ingested before it was recorded: None)."""
        size = self.metadata.get("bytes")
        return int(size) if isinstance(size, int) else None

    @property
    def ingested(self) -> str:
        """When this version was stored (ISO 8601, UTC), or ""."""
        return str(self.metadata.get("ingested", ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.doc_id,
            "source": self.source,
            "format": self.format,
            "pages": self.pages,
            "sections": self.sections,
            "chunks": self.chunks,
            "bytes": self.size,
            "ingested": self.ingested or None,
            "title": self.metadata.get("title"),
            "metadata": {k: v for k, v in self.metadata.items() if k not in CHUNK_KEYS},
        }


@dataclass(frozen=True)
class DocState:
    """What the store holds of one document: its version hash and how many chunks carry it."""

    doc_hash: str
    chunks: int  # rows carrying doc_hash (-1: rows of several versions)
    expected: int  # how many chunks that version has

    @property
    def complete(self) -> bool:
        return self.chunks == self.expected


@dataclass
class Row:
    """A chunk with its vector (and its answer units' vectors), as written to Milvus."""

    chunk: Chunk
    vector: np.ndarray
    doc_hash: str
    n_chunks: int
    sentences: SentenceVectors = SentenceVectors()

    def to_entity(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "id": c.id,
            "doc_id": c.doc_id,
            "doc_hash": self.doc_hash,
            "n_chunks": self.n_chunks,
            "source": varchar(c.source),
            "page": -1 if c.page is None else c.page,
            "chunk_index": c.index,
            "start": c.start,
            "end": c.end,
            "text": varchar(clip_utf8(c.text)),
            "metadata": c.metadata,
            "vector": self.vector,
        }

    @property
    def nbytes(self) -> int:
        return self.vector.nbytes + len(self.chunk.text) + len(self.sentences.encoded) + 256


class Store(Protocol):
    """What the engine needs from a vector store."""

    tenant: str | None  # whose rows it reads and writes (None: every tenant's; see scoped)

    def scoped(self, tenant: str) -> Store: ...

    async def open(
        self, model: str, dim: int, *, create: bool = True, quantize: str = "none", backend: str = ""
    ) -> CollectionInfo: ...
    async def exists(self) -> bool: ...
    async def write(self, rows: Sequence[Row]) -> None: ...
    async def search(
        self,
        vector: np.ndarray | None,
        top_k: int,
        *,
        text: str = "",
        mode: Mode = "dense",
        filter: str = "",
        consistency: str | None = None,
        fusion: Fusion = Fusion(),
        sentences: bool = False,
    ) -> list[Source]: ...
    async def doc_states(self, doc_ids: Sequence[str]) -> dict[str, DocState]: ...
    async def confirm(self) -> None: ...
    async def delete_stale(self, doc_id: str, doc_hash: str) -> None: ...
    async def delete_version(self, doc_id: str, doc_hash: str) -> None: ...
    async def delete_docs(self, doc_ids: Sequence[str]) -> int: ...
    async def documents(self) -> dict[str, str]: ...
    async def catalog(self) -> list[DocumentInfo]: ...
    async def info(self) -> CollectionInfo | None: ...
    async def chunks(self) -> int: ...
    async def stored_model(self) -> tuple[str, int, str] | None: ...
    async def collections(self) -> list[str]: ...
    async def close(self) -> None: ...
