"""Split documents into chunks measured in the embedding model's own tokens.

A chunk never holds more tokens than the model reads: a model truncates what is
longer, and truncated text is text nobody can retrieve. Boundaries fall between
sentences where possible, never across PDF pages, and consecutive chunks share up
to ``overlap`` tokens of whole sentences. Chunks do not cross top-level sections either, and
each carries the path of headings above it.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..documents import Chunk, Document, Page, digest
from ..errors import ChunkingError, ConfigError
from ..text import sentence_spans


class Tokenizer(Protocol):
    """What chunking needs from a model: its limit, and where its tokens lie in a text."""

    max_tokens: int

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character (start, end) of each token of each text, special tokens excluded."""
        ...


# Bump when chunk boundaries change for the same text and settings: stored documents are
# then chunked anew on their next ingest.
VERSION = 2

# Characters tokenized at a time. Larger than any page or typical file, so only very
# large documents are chunked window by window (the chunks come out the same).
WINDOW = 200_000


@dataclass(frozen=True)
class Chunker:
    """Sentence-aware, token-bounded chunking.

    ``size`` 0 means the tokenizer's own limit; a larger size is refused rather than
    silently truncated by the model later.
    """

    tokenizer: Tokenizer
    size: int = 0
    overlap: int = 32

    def __post_init__(self) -> None:
        limit = self.tokenizer.max_tokens
        if self.size > limit:
            raise ConfigError(
                f"chunk_tokens: {self.size} exceeds the embedding model's limit of {limit} tokens; "
                f"the model would silently drop the rest of every chunk. Use --chunk-tokens {limit} or less."
            )
        if self.overlap >= self.max_tokens:
            raise ConfigError(f"chunk_overlap ({self.overlap}) must be smaller than chunk_tokens ({self.max_tokens})")

    @property
    def max_tokens(self) -> int:
        return self.size or self.tokenizer.max_tokens

    @property
    def fingerprint(self) -> str:
        """What decides where chunks fall; stored with every document's rows, so a
        document chunked otherwise than now is chunked again on the next ingest."""
        return f"chunking-v{VERSION}:{self.max_tokens}:{self.overlap}"

    def split(self, doc: Document) -> list[Chunk]:
        """The document's chunks, in order. Raises :class:`ChunkingError` rather than
        return chunks that leave some of its text out."""
        return list(self.chunks(doc, self.boundaries(doc)))

    def boundaries(self, doc: Document) -> list[tuple[int, int]]:
        """The (start, end) character span of each of the document's chunks, checked to
        cover its whole text. Memory stays bounded whatever the document's size."""
        pieces: list[tuple[int, int]] = []
        for begin, end in _segments(doc):
            start = begin
            while start < end:
                window_pieces, start = self._split_window(doc.text, start, end)
                pieces.extend(window_pieces)
        _check_coverage(doc, pieces, self.tokenizer)
        return pieces

    def _split_window(self, text: str, start: int, end: int) -> tuple[list[tuple[int, int]], int]:
        """Chunk text[start:] up to at most WINDOW characters; return the chunks and where to go on.

        Tokenizing a whole 50 MB file at once took 8.7 GB; a window at a time keeps memory
        bounded. The window's last chunk may have been cut short by the window's edge,
        so unless the text ends there, the next window starts again at that chunk.
        """
        stop = end if end - start <= WINDOW else _window_end(text, start, start + WINDOW)
        spans = [(s + start, e + start) for s, e in self.tokenizer.token_spans([text[start:stop]])[0]]
        pieces = self._enforce_limit(text, self._pack(text, start, stop, spans, [s for s, _ in spans]))
        if stop < end and len(pieces) > 1:
            return pieces[:-1], pieces[-1][0]
        return pieces, stop

    def _pack(self, text: str, start: int, end: int, spans, starts) -> list[tuple[int, int]]:
        """Pack whole sentences of text[start:end] into chunks of at most max_tokens.

        Works on token ranges. A sentence too long for the space left (a table, a run-on
        line) is cut at a token edge to fill the chunk, so no chunk is left as a sliver.
        """
        limit, overlap = self.max_tokens, self.overlap
        units = []
        for s, e in sentence_spans(text, start, end, abbreviations=False):
            i, j = bisect.bisect_left(starts, s), bisect.bisect_left(starts, e)
            if i < j:
                units.append((i, j))

        chunks: list[tuple[int, int]] = []
        current: list[tuple[int, int]] = []
        used = 0
        queue = list(reversed(units))
        while queue:
            i, j = queue.pop()
            n = j - i
            if used + n <= limit:
                current.append((i, j))
                used += n
                continue
            space = limit - used
            if space > 0 and (n > limit or used < limit // 4):
                # A sentence that can never fit whole, or one that would leave this chunk
                # a sliver, is cut: its head fills this chunk, its tail (with `overlap`
                # tokens of context) starts the next.
                current.append((i, i + space))
                chunks.append((current[0][0], i + space))
                queue.append((max(i + space - overlap, i + 1), j))
                current, used = [], 0
                continue
            chunks.append((current[0][0], current[-1][1]))
            # Carry whole trailing sentences forward as overlap.
            carried: list[tuple[int, int]] = []
            kept = 0
            for prev in reversed(current):
                size = prev[1] - prev[0]
                if kept + size > overlap or kept + size + n > limit:
                    break
                carried.insert(0, prev)
                kept += size
            current, used = carried, kept
            queue.append((i, j))
        if current:
            chunks.append((current[0][0], current[-1][1]))
        return [(spans[i][0], spans[j - 1][1]) for i, j in chunks]

    def _enforce_limit(self, text: str, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
        # Tokenizing a substring can differ from the whole-text count at its edges; check
        # every chunk on its own and cut the rare one that came out too long.
        out: list[tuple[int, int]] = []
        spans_per_piece = self.tokenizer.token_spans([text[s:e] for s, e in pieces])
        for (s, e), spans in zip(pieces, spans_per_piece):
            if len(spans) <= self.max_tokens:
                out.append((s, e))
                continue
            for i in range(0, len(spans), self.max_tokens):
                window = spans[i : i + self.max_tokens]
                out.append((s + window[0][0], s + window[-1][1]))
        return out

    def chunks(self, doc: Document, boundaries: Sequence[tuple[int, int]]) -> Iterator[Chunk]:
        """The chunks at ``boundaries``, made one at a time as they are consumed."""
        seen: Counter[str] = Counter()
        doc_id = doc.doc_id
        for index, (s, e) in enumerate(boundaries):
            body = doc.text[s:e]
            # Identical passages in one document (boilerplate) still need distinct ids.
            seen[body] += 1
            yield (
                Chunk(
                    # A tenant's copy of a file is another document: its chunks get other ids.
                    id=digest(*filter(None, [doc.tenant]), doc.key, body, str(seen[body])),
                    doc_id=doc_id,
                    source=doc.key,
                    text=body,
                    index=index,
                    start=s,
                    end=e,
                    page=doc.page_at(s),
                    metadata=_placed(doc.metadata, doc.label_at(s), doc.section_at(s)),
                )
            )


def _segments(doc: Document) -> list[tuple[int, int]]:
    """The spans no chunk may cross: pages, cut where top-level sections begin."""
    cuts = doc.top_level_starts()
    segments = []
    for page in doc.pages or (Page(None, 0, len(doc.text)),):
        start = page.start
        for cut in cuts[bisect.bisect_right(cuts, page.start) : bisect.bisect_left(cuts, page.end)]:
            segments.append((start, cut))
            start = cut
        segments.append((start, page.end))
    return segments


def _placed(metadata: dict[str, Any], label: str, section: str) -> dict[str, Any]:
    """The document's metadata, with where in it a chunk lies: its page's label and its section."""
    if not label and not section:
        return metadata
    return {**metadata, **({"where": label} if label else {}), **({"section": section} if section else {})}


def _window_end(text: str, start: int, limit: int) -> int:
    """Where to end a window that may not pass ``limit``: a paragraph, line or word break."""
    floor = start + (limit - start) // 2
    for sep in ("\n\n", "\n", ". ", " "):
        cut = text.rfind(sep, floor, limit)
        if cut > start:
            return cut + len(sep)
    return limit


def _check_coverage(doc: Document, pieces: list[tuple[int, int]], tokenizer: Tokenizer) -> None:
    """Every token of the document must lie in some chunk: text between chunks may only
    be whitespace or characters the tokenizer drops."""
    gaps: list[tuple[int, int]] = []
    reached = 0
    for s, e in [*sorted(pieces), (len(doc.text), len(doc.text))]:
        if s > reached and doc.text[reached:s].strip():
            gaps.append((reached, s))
        reached = max(reached, e)
    if not gaps:
        return
    texts = [doc.text[s:e] for s, e in gaps]
    missed = [(s, e) for (s, e), spans in zip(gaps, tokenizer.token_spans(texts)) if spans]
    if missed:
        s, e = missed[0]
        raise ChunkingError(
            f"{doc.key}: chunks leave out characters {s}-{e} of {len(doc.text)} "
            f"({len(missed)} gap(s)); the document was not stored"
        )
