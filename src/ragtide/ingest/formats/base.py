"""What every format's reader shares: the limits one document may cost, strict decoding of
text, and a document made of one whole text."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...documents import Document, Heading, Page
from ...errors import LoaderError

Loader = Callable[[Path, bytes, "Caps"], Document]
"""A format's reader: the file's path (to name it in errors) and bytes, and the limits."""


@dataclass(frozen=True)
class Caps:
    """What reading one document may cost, checked as it is read: a small file can expand
    (a 165 KB PDF whose 1,000 pages share one content stream holds 50 MB of text), so the
    limits on pages and characters stop it early, not after the fact. None: no limit.

    Besides the limit on characters, a document whose text passes a million characters may
    hold at most ``EXPANSION`` characters per byte of its file: compressed text holds a few
    (a PDF, a docx: 1 to 5), a page stream repeated a thousand times hundreds.
    """

    bytes: int | None = None
    pages: int | None = None
    chars: int | None = None
    ocr_pages: int | None = None  # pages read by OCR
    size: int = 0  # the file's size in bytes

    EXPANSION = 25
    _EXPANSION_FROM = 1_000_000

    def check_chars(self, path: Path, n: int) -> None:
        if self.chars is not None and n > self.chars:
            raise LoaderError(
                str(path),
                f"more than {self.chars:,} characters of text (the limit per document: split it, or raise "
                "RAGTIDE_MAX_DOC_CHARS)",
            )
        if self.size and n > self._EXPANSION_FROM and n > self.EXPANSION * self.size:
            raise LoaderError(
                str(path),
                f"its {self.size / 1024:,.0f} KB expand to more than {n:,} characters of text, over "
                f"{self.EXPANSION} a byte (a repeated or compressed page stream?); refused as a decompression bomb",
            )


def decode(path: Path, data: bytes) -> str:
    """Decode text strictly: a file that is not text must not be indexed as mojibake."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding)
    head = data[:8192]
    if b"\0" in head:
        raise LoaderError(str(path), "binary content (NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LoaderError(
            str(path), f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); convert it to UTF-8"
        ) from None
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\t\n\r\f")
    if controls > 0.05 * min(len(text), 8192):
        raise LoaderError(str(path), "binary content (control characters), not text")
    return text


Outline = Sequence[tuple[int, str]]
"""A document's headings as a reader found them, in order: (level, title), level 1 the top."""


def whole(path: Path, text: str, caps: Caps, *, outline: Outline = (), **metadata: object) -> Document:
    caps.check_chars(path, len(text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise LoaderError(str(path), "no text")
    return make_document(path, text, (Page(None, 0, len(text)),), outline, metadata)


def make_document(path: Path, text: str, pages: tuple[Page, ...], outline: Outline, metadata: dict) -> Document:
    headings = locate(text, outline)
    if headings:
        metadata = {**metadata, "sections": len(headings)}
    return Document(key=str(path), text=text, pages=pages, metadata=metadata, headings=headings)


def locate(text: str, outline: Outline) -> tuple[Heading, ...]:
    """Where each heading of ``outline`` stands in ``text``: the next line, after the previous
    heading, that holds its title alone (markup such as Markdown's ``#`` aside). A title not
    found so is left out rather than guessed."""
    found: list[Heading] = []
    at = 0
    for level, title in outline:
        title = " ".join(title.split())
        if not title:
            continue
        words = r"\s+".join(map(re.escape, title.split()))
        match = re.compile(rf"^[ \t#=*]*{words}[ \t#=*]*$", re.M).search(text, at)
        if match is None:
            continue
        found.append(Heading(match.start(), level, title[:200]))
        at = match.end()
    return tuple(found)


def paged(
    path: Path, parts: list[tuple[str, str]], caps: Caps, *, outline: Outline = (), **metadata: object
) -> Document:
    """A document of labelled parts (slides, sheets), each a page: ("slide 4", its text)."""
    if caps.pages is not None and len(parts) > caps.pages:
        raise LoaderError(str(path), f"{len(parts):,} pages (the limit per document is {caps.pages:,})")
    chunks: list[str] = []
    pages: list[Page] = []
    offset = 0
    for n, (label, text) in enumerate(parts, 1):
        text = text.strip() + "\n\n"
        chunks.append(text)
        pages.append(Page(n, offset, offset + len(text), label))
        offset += len(text)
        caps.check_chars(path, offset)
    full = "".join(chunks)
    if not full.strip():
        raise LoaderError(str(path), "no text")
    return make_document(path, full, tuple(pages), outline, {**metadata, "pages": len(pages)})
