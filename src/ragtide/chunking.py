"""Split documents into chunks measured in the embedding model's own tokens.

A chunk never holds more tokens than the model reads: a model truncates what is
longer, and truncated text is text nobody can retrieve. Boundaries fall between
sentences where possible, never across PDF pages, and consecutive chunks share up
to ``overlap`` tokens of whole sentences.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass
from typing import Protocol, Sequence

from .documents import Chunk, Document, Page, digest
from .errors import ConfigError


class Tokenizer(Protocol):
    """What chunking needs from a model: its limit, and where its tokens lie in a text."""

    max_tokens: int

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character (start, end) of each token of each text, special tokens excluded."""
        ...


# A sentence ends at . ! ? (plus closing quotes/brackets) before whitespace and a capital
# or digit ("e.g. this" does not end one), or at a blank line. Group 1 is the gap.
_SENTENCE_END = re.compile(r"""[.!?]["'”’)\]]*(\s+)(?=["'“‘(\[]?[A-Z0-9])|(\n\s*\n)""")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences in ``text[start:end]``, whitespace trimmed."""
    end = len(text) if end is None else end
    spans = []
    pos = start
    for m in _SENTENCE_END.finditer(text, start, end):
        gap = 1 if m.group(1) is not None else 2
        spans.append((pos, m.start(gap)))
        pos = m.end(gap)
    spans.append((pos, end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


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

    def split(self, doc: Document) -> list[Chunk]:
        spans = self.tokenizer.token_spans([doc.text])[0]
        starts = [s for s, _ in spans]
        pieces: list[tuple[int, int]] = []
        for page in doc.pages or (Page(None, 0, len(doc.text)),):
            pieces.extend(self._pack(doc.text, page.start, page.end, spans, starts))
        pieces = self._enforce_limit(doc.text, pieces)
        return self._chunks(doc, pieces)

    def _pack(self, text: str, start: int, end: int, spans, starts) -> list[tuple[int, int]]:
        """Pack whole sentences of text[start:end] into chunks of at most max_tokens.

        Works on token ranges. A sentence too long for the space left (a table, a run-on
        line) is cut at a token edge to fill the chunk, so no chunk is left as a sliver.
        """
        limit, overlap = self.max_tokens, self.overlap
        units = []
        for s, e in sentence_spans(text, start, end):
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

    def _chunks(self, doc: Document, pieces: list[tuple[int, int]]) -> list[Chunk]:
        seen: Counter[str] = Counter()
        doc_id = doc.doc_id
        chunks = []
        for index, (s, e) in enumerate(pieces):
            body = doc.text[s:e]
            # Identical passages in one document (boilerplate) still need distinct ids.
            seen[body] += 1
            chunks.append(
                Chunk(
                    id=digest(doc.key, body, str(seen[body])),
                    doc_id=doc_id,
                    source=doc.key,
                    text=body,
                    index=index,
                    start=s,
                    end=e,
                    page=doc.page_at(s),
                    metadata=doc.metadata,
                )
            )
        return chunks
