"""PDF: the text layer, page by page, with each page's place in the text."""

from __future__ import annotations

from pathlib import Path

from ...documents import Document, Page
from ...errors import LoaderError
from .base import Caps


def load_pdf(path: Path, data: bytes, caps: Caps) -> Document:
    import pypdfium2

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise LoaderError(str(path), "not a PDF (no %PDF header)")
    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as e:
        reason = str(e).split(":")[-1].strip().rstrip(".") or "cannot be parsed"
        if "password" in reason.lower():
            raise LoaderError(str(path), "encrypted PDF (it needs a password); decrypt it first") from None
        raise LoaderError(str(path), f"corrupt or unreadable PDF ({reason})") from None
    try:
        if caps.pages is not None and len(pdf) > caps.pages:
            raise LoaderError(
                str(path),
                f"{len(pdf):,} pages (the limit per document is {caps.pages:,}: split it, or raise RAGTIDE_MAX_DOC_PAGES)",
            )
        parts: list[str] = []
        pages: list[Page] = []
        offset = 0
        for number in range(1, len(pdf) + 1):
            page = pdf[number - 1]
            textpage = page.get_textpage()
            text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
            textpage.close()
            page.close()
            text = text.strip() + "\n\n"
            parts.append(text)
            pages.append(Page(number, offset, offset + len(text)))
            offset += len(text)
            caps.check_chars(path, offset)
    finally:
        pdf.close()
    text = "".join(parts)
    if not text.strip():
        raise LoaderError(str(path), f"no extractable text in {len(pages)} page(s) (scanned? run OCR first)")
    return Document(key=str(path), text=text, pages=tuple(pages), metadata={"type": "pdf", "pages": len(pages)})
