"""PDF: the text layer page by page, cleaned of page furniture, with scanned pages read by OCR.

What a PDF's text layer holds besides the text: running headers and footers (the same line
on most pages), page numbers, words hyphenated at line ends. Left in, they are quoted as
answers and split words nobody can find, so they are taken out here. A page with pictures
but no text is a scan: it is read by OCR where Tesseract is installed, and otherwise the
document fails naming those pages, never stored silently empty.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from ...documents import Document, Page
from ...errors import LoaderError
from ...tables import label_figures
from . import ocr
from .base import Caps, make_document

# pdfium is not thread-safe: two PDFs parsed at once in one process (ingest reads two
# files at a time) crashed it (SIGTRAP). One PDF at a time, process-wide, like the library.
_PDFIUM = threading.Lock()
EDGE = 3  # lines at the top and bottom of a page where furniture is looked for
_PAGE_NUMBER = re.compile(
    r"(?:page\s+)?[-–—]?\s*(?:\d{1,4}|[ivx]{1,5})\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,4})?", re.IGNORECASE
)
# A term set off by a tab in a manual page: an option or a format sequence ("--tebi", "-k", "%j", "+FORMAT").
_OPTION = re.compile(r"(?:--?|\+|%)[\w#?]\S*")
# A word broken at a line's end: "docu-\nmented", or as pdfium joins such lines, "docu\ufffemented".
_HYPHENATED = re.compile(r"(\S*)(?:-\n|\ufffe)(\w)")


def load_pdf(path: Path, data: bytes, caps: Caps) -> Document:
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise LoaderError(str(path), "not a PDF (no %PDF header)")
    with _PDFIUM:
        texts, read_by_ocr, outline = _read(path, data, caps)
    texts = without_furniture(texts)
    pages: list[Page] = []
    offset = 0
    for number, text in enumerate(texts, 1):
        pages.append(Page(number, offset, offset + len(text)))
        offset += len(text)
    text = "".join(texts)
    if not text.strip():
        raise LoaderError(str(path), f"no text in its {len(pages)} page(s)")
    metadata: dict[str, object] = {"type": "pdf", "pages": len(pages)}
    if read_by_ocr:
        metadata["ocr_pages"] = read_by_ocr
    return make_document(path, text, tuple(pages), outline, metadata)


def _read(path: Path, data: bytes, caps: Caps) -> tuple[list[str], int, Any]:
    """Each page's text (scans read by OCR), how many pages OCR read, and the bookmarks."""
    import pypdfium2

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
        texts, scanned = _text_layer(path, pdf, caps)
        return texts, _read_scans(path, pdf, texts, scanned, caps), _bookmarks(pdf)
    finally:
        pdf.close()


def _text_layer(path: Path, pdf: Any, caps: Caps) -> tuple[list[str], list[int]]:
    """Each page's text, and the pages (0-based) that are pictures without text."""
    import pypdfium2.raw as pdfium

    texts: list[str] = []
    scanned: list[int] = []
    size = 0
    for index in range(len(pdf)):
        page = pdf[index]
        textpage = page.get_textpage()
        text = _laid_out(textpage)
        textpage.close()
        text = text.replace("\x00", "")
        if not text.strip() and next(page.get_objects(filter=(pdfium.FPDF_PAGEOBJ_IMAGE,), max_depth=3), None):
            scanned.append(index)
        page.close()
        texts.append(text)
        size += len(text)
        caps.check_chars(path, size)
    return texts, scanned


def _laid_out(textpage: Any) -> str:
    """The page's text with its layout where it means something: each line indented as
    printed (relative to the page's margin), and two spaces after a term set off by a tab
    ("--tebi    Display the amount ..."). A text layer is a stream of lines: without them a
    manual page, a definition list or an outline reads as one flat paragraph."""
    raw = textpage.get_text_range()
    if textpage.count_chars() != len(raw):  # characters beyond the BMP: indexes do not line up
        return re.sub(r"\r\n?", "\n", raw)
    breaks = [(m.start(), m.end()) for m in re.finditer(r"\r\n|\r|\n", raw)]
    spans = list(zip([0] + [end for _, end in breaks], [start for start, _ in breaks] + [len(raw)]))
    lines: list[tuple[int, int, float]] = []  # start and end of each line's text, its left edge
    widths: list[float] = []
    for start, end in spans:
        first = start + len(raw[start:end]) - len(raw[start:end].lstrip())
        last = start + len(raw[start:end].rstrip()) - 1
        if last < first:
            lines.append((start, end, -1.0))
            continue
        left, right = textpage.get_charbox(first)[0], textpage.get_charbox(last)[2]
        if last - first >= 15 and right > left:
            widths.append((right - left) / (last - first + 1))
        lines.append((first, last + 1, left))
    lefts = [left for *_, left in lines if left >= 0]
    if not widths or not lefts:
        return re.sub(r"\r\n?", "\n", raw)
    width = sorted(widths)[len(widths) // 2]
    margin = min(lefts)
    stops = sorted({round(left) for left in lefts})
    out = []
    for first, end, left in lines:
        if left < 0:
            out.append("")
            continue
        line = raw[first:end]
        out.append(" " * min(40, round((left - margin) / width)) + _tabbed(textpage, line, first, width, stops))
    return "\n".join(out)


def _tabbed(textpage: Any, line: str, first: int, width: float, stops: list[int]) -> str:
    """``line`` with two spaces after its first word where it is a term set off by a tab: an
    option or a sequence ("--tebi", "%j") whose next word starts where other lines of the page
    start, or a code of a letter or two ("Z") far from it. (A word of justified prose ending
    at a column by chance is neither.)"""
    gap = re.match(r"(\S+)( +)(?=\S)", line)
    if gap is None:
        return line
    option, code = _OPTION.fullmatch(gap.group(1)), re.fullmatch(r"\w{1,2}", gap.group(1))
    if not option and not code:
        return line
    before = textpage.get_charbox(first + gap.end(1) - 1)[2]
    after = textpage.get_charbox(first + gap.end())[0]
    if after - before > (width if option else 2.5 * width) and _near(stops, after):
        return f"{gap.group(1)}  {line[gap.end() :]}"
    return line


def _near(stops: list[int], x: float) -> bool:
    """Whether one of ``stops`` (sorted) lies within 1.5 points of ``x``: a search, since a
    page can hold thousands of lines, each a stop."""
    k = bisect.bisect_left(stops, x - 1.5)
    return k < len(stops) and stops[k] <= x + 1.5


def _read_scans(path: Path, pdf: Any, texts: list[str], scanned: list[int], caps: Caps) -> int:
    """Read the scanned pages by OCR into ``texts``; how many were read."""
    if not scanned:
        return 0
    if caps.ocr_pages is not None and len(scanned) > caps.ocr_pages:
        raise LoaderError(
            str(path),
            f"{len(scanned):,} scanned pages to read by OCR (the limit per document is {caps.ocr_pages:,}: split "
            "it, or raise RAGTIDE_MAX_OCR_PAGES)",
        )
    if not ocr.available():
        raise LoaderError(
            str(path),
            f"{_pages(scanned)} of {len(pdf)} {'is a picture' if len(scanned) == 1 else 'are pictures'} with no "
            f"text layer (scanned?); reading them needs OCR: {ocr.INSTALL}",
        )
    for index in scanned:
        page = pdf[index]
        image = page.render(scale=ocr.DPI / 72, grayscale=True).to_pil()
        page.close()
        texts[index] = ocr.read(path, image)
    return len(scanned)


def _pages(indexes: list[int]) -> str:
    numbers = [str(i + 1) for i in indexes[:20]] + (["…"] if len(indexes) > 20 else [])
    return ("page " if len(indexes) == 1 else "pages ") + ", ".join(numbers)


def _bookmarks(pdf: Any) -> list[tuple[int, str]]:
    """The PDF's own table of contents (its bookmarks), as headings."""
    try:
        return [(bookmark.level + 1, bookmark.get_title()) for bookmark in pdf.get_toc(max_depth=6)]
    except Exception:  # noqa: BLE001 - a damaged outline costs the sections, not the document
        return []


def without_furniture(texts: list[str]) -> list[str]:
    """The pages' texts without running headers and footers, page numbers and line-end
    hyphens, their figure tables' rows labelled, each page ending in a blank line.

    A running header or footer is a line near a page's top or bottom that recurs (digits
    aside: "Annual Report 2021 | 14", one number varying at most) on at least half the
    pages and on three or more, or on every page of a shorter document: a manual page
    typeset on two pages ("FREE(1) User Commands FREE(1)" above each) has its header too.
    """
    lines = [text.split("\n") for text in texts]
    edge_indexes = [set(_edge_indexes(page)) for page in lines]
    recurring: Counter[str] = Counter()
    numbers: dict[str, set[tuple[str, ...]]] = {}
    for page, edge in zip(lines, edge_indexes):
        edges = {" ".join(page[i].split()) for i in edge}
        recurring.update({_shape(line) for line in edges})
        for line in edges:
            numbers.setdefault(_shape(line), set()).add(tuple(re.findall(r"\d+", line)))
    least = max(2, min(len(texts), max(3, len(texts) // 2)))
    furniture = {shape for shape, n in recurring.items() if n >= least and shape and _one_number_varies(numbers[shape])}
    cleaned = []
    for page, edge in zip(lines, edge_indexes):
        kept = [
            line
            for i, line in enumerate(page)
            if i not in edge or not (_shape(line) in furniture or _PAGE_NUMBER.fullmatch(line.strip()))
        ]
        text = _HYPHENATED.sub(_joined, "\n".join(label_figures(kept)))
        # Blank lines go, not the first line's indentation: on a manual page's second page,
        # below its running head, that line may be an option's indented description.
        cleaned.append(re.sub(r"^\s*\n", "", text).rstrip() + "\n\n")
    return cleaned


def _one_number_varies(seen: set[tuple[str, ...]]) -> bool:
    """Whether lines of one shape differ in one number at most, as a running head's page
    number does ("Annual Report 2021 | 14"); lines of a form differing in several (a
    ledger's "Ledger 3 line 0 holds cargo 1300") are content."""
    if len(seen) <= 1:
        return True
    varying = {k for values in seen for k, value in enumerate(values) if value != next(iter(seen))[k]}
    return len(varying) <= 1


def _joined(match: re.Match[str]) -> str:
    """A word broken at a line's end, whole again: "docu-mented" is "documented", but the
    hyphen stays in a compound ("front-of-house") or before a capital or digit ("10-K")."""
    head, tail = match.group(1), match.group(2)
    if head[-1:].islower() and tail.islower() and "-" not in head:
        return head + tail
    return f"{head}-{tail}"


def _edge_indexes(page: list[str]) -> list[int]:
    filled = [i for i, line in enumerate(page) if line.strip()]
    return filled[:EDGE] + filled[-EDGE:]


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())
