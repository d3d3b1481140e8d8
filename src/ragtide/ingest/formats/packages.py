"""Formats that are zip packages: Word (.docx), PowerPoint (.pptx), Excel (.xlsx),
OpenDocument text (.odt) and EPUB.

A package is checked before anything unpacks it: a few kilobytes can unpack to gigabytes
(a zip bomb), so what its members would unpack to is bounded first. Tables become rows
whose values keep their column's label; slides and sheets are pages of their own, cited
as "slide 4" or "sheet Revenue". Word, PowerPoint and Excel files are read with
python-docx, python-pptx and openpyxl (the ``office`` extra); OpenDocument and EPUB with
the standard library's zip and XML readers and ragtide's HTML reader.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from ...documents import Document
from ...errors import LoaderError
from ...tables import table_rows
from .base import Caps, paged, whole
from .html import visible_text

_UNPACKED_FLOOR = 32 << 20  # a package may always unpack to this much
_UNPACK_RATIO = 100  # beyond it, to at most this many times its own size
_UNPACKED_MAX = 512 << 20


def open_package(path: Path, data: bytes) -> zipfile.ZipFile:
    """The zip inside a package, once what it would unpack to is known to be bounded."""
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(member.file_size for member in package.infolist())
    except (zipfile.BadZipFile, ValueError) as e:
        raise LoaderError(str(path), f"corrupt: not a readable zip package ({e})") from None
    limit = min(_UNPACKED_MAX, max(_UNPACKED_FLOOR, _UNPACK_RATIO * len(data)))
    if unpacked > limit:
        raise LoaderError(
            str(path),
            f"its {len(data) / 2**20:,.1f} MB would unpack to {unpacked / 2**20:,.0f} MB, over the "
            f"{limit / 2**20:,.0f} MB allowed (a zip bomb?); refused",
        )
    return package


def _office(path: Path, data: bytes, module: str, kind: str, opener: str, **options: Any) -> Any:
    """``module.opener(data)`` (python-docx, -pptx, openpyxl), once the package is checked."""
    open_package(path, data)
    try:
        library = __import__(module, fromlist=["_"])
    except ImportError:
        raise LoaderError(
            str(path), f"reading {path.suffix} files needs the office extra: pip install 'ragtide[office]'"
        ) from None
    try:
        return getattr(library, opener)(io.BytesIO(data), **options)
    except Exception as e:  # these libraries raise many kinds on a damaged file
        raise LoaderError(str(path), f"corrupt or unreadable {kind} file ({type(e).__name__}: {e})") from None


def load_docx(path: Path, data: bytes, caps: Caps) -> Document:
    """Paragraphs and tables in reading order; the first heading is the title."""
    document = _office(path, data, "docx", "Word", "Document")
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    lines: list[str] = []
    outline: list[tuple[int, str]] = []
    title = document.core_properties.title or ""
    size = 0
    for element in document.element.body.iterchildren():
        before = len(lines)
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = paragraph.text.strip()
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            level = _heading_level(style)
            if text and level is not None:
                title = title or text
                outline.append((level, text))
            if text and _CODE_STYLE.search(style):
                lines.append(f"```\n{paragraph.text.rstrip()}\n```")  # code, as Markdown marks it
            elif text and _listed(paragraph, style):
                lines.append(f"- {text}")  # an item, as Markdown marks it: not a heading, however short
            elif text:
                lines.append(text)
        elif tag == "tbl":
            lines.extend(table_rows([[cell.text for cell in row.cells] for row in Table(element, document).rows]))
        size += sum(len(line) for line in lines[before:])
        caps.check_chars(path, size)
    meta: dict[str, object] = {"type": "docx"}
    if title:
        meta["title"] = title
    return whole(path, "\n\n".join(lines), caps, outline=outline, **meta)


# Word's paragraph styles for code: "Source Code" (pandoc's), "HTML Preformatted", "Code", "Verbatim".
_CODE_STYLE = re.compile(r"\b(?:code|preformatted|verbatim)\b", re.I)


def _listed(paragraph: Any, style: str) -> bool:
    """Whether a Word paragraph is a list item: numbered or bulleted, or in a list style."""
    properties = paragraph._p.pPr
    return style.lower().startswith("list") or (properties is not None and properties.numPr is not None)


def _heading_level(style: str) -> int | None:
    """A Word paragraph style's heading level: "Heading 2" is 2, "Title" above them all."""
    words = style.lower().split()
    if words[:1] == ["title"]:
        return 0
    if words[:1] == ["heading"]:
        return int(words[1]) if len(words) > 1 and words[1].isdigit() else 1
    return None


def load_pptx(path: Path, data: bytes, caps: Caps) -> Document:
    """Each slide a page: its text boxes, tables and speaker notes."""
    presentation = _office(path, data, "pptx", "PowerPoint", "Presentation")
    slides = []
    outline = []
    for n, slide in enumerate(presentation.slides, 1):
        parts: list[str] = []
        heading = slide.shapes.title
        if heading is not None and heading.has_text_frame and heading.text_frame.text.strip():
            outline.append((1, heading.text_frame.text.strip()))
        for shape in slide.shapes:
            if getattr(shape, "has_table", False) and shape.has_table:
                parts.extend(table_rows([[cell.text for cell in row.cells] for row in shape.table.rows]))
            elif getattr(shape, "has_text_frame", False) and shape.has_text_frame and shape.text_frame.text.strip():
                parts.append(shape.text_frame.text.strip())
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                parts.append(f"Notes: {notes}")
        slides.append((f"slide {n}", "\n\n".join(parts)))
    return paged(path, slides, caps, outline=outline, type="pptx")


def load_xlsx(path: Path, data: bytes, caps: Caps) -> Document:
    """Each sheet a page, each row a line whose values keep their column's label."""
    workbook = _office(path, data, "openpyxl", "Excel", "load_workbook", read_only=True, data_only=True)
    sheets = []
    size = 0
    try:
        for sheet in workbook.worksheets:
            rows = ([("" if v is None else str(v)) for v in row] for row in sheet.iter_rows(values_only=True))
            lines = []
            for line in table_rows(rows):
                size += len(line) + 1
                caps.check_chars(path, size)
                lines.append(line)
            sheets.append((f"sheet {sheet.title}", "\n".join(lines)))
    finally:
        workbook.close()
    return paged(path, sheets, caps, type="xlsx")


_ODF = {
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
}


def load_odt(path: Path, data: bytes, caps: Caps) -> Document:
    """OpenDocument text: headings, paragraphs and list items in order, tables as labelled rows."""
    package = open_package(path, data)
    try:
        root = ElementTree.fromstring(package.read("content.xml"))
    except (KeyError, ElementTree.ParseError) as e:
        raise LoaderError(str(path), f"corrupt OpenDocument file ({e})") from None
    body = root.find("office:body/office:text", _ODF)
    if body is None:
        raise LoaderError(str(path), "no text body (an OpenDocument file, but not a text document)")
    lines: list[str] = []
    outline: list[tuple[int, str]] = []
    stack = list(reversed(list(body)))
    while stack:
        element = stack.pop()
        tag = element.tag
        if tag == f"{{{_ODF['table']}}}table":
            rows = [
                ["".join(cell.itertext()) for cell in row.iter(f"{{{_ODF['table']}}}table-cell")]
                for row in element.iter(f"{{{_ODF['table']}}}table-row")
            ]
            lines.extend(table_rows(rows))
        elif tag in (f"{{{_ODF['text']}}}h", f"{{{_ODF['text']}}}p"):
            text = "".join(element.itertext()).strip()
            if text and tag.endswith("}h"):
                level = element.get(f"{{{_ODF['text']}}}outline-level", "1")
                outline.append((int(level) if level.isdigit() else 1, text))
            if text:
                lines.append(text)
        elif tag == f"{{{_ODF['text']}}}list-item":
            # An item, as Markdown marks it (not a heading, however short); its first paragraph
            # carries the mark.
            first = element.find("text:p", _ODF)
            text = "".join(first.itertext()).strip() if first is not None else ""
            if text:
                lines.append(f"- {text}")
            stack.extend(reversed([child for child in element if child is not first]))
        else:
            stack.extend(reversed(list(element)))
        caps.check_chars(path, sum(map(len, lines)))
    meta: dict[str, object] = {"type": "odt"}
    if outline:
        meta["title"] = outline[0][1]
    return whole(path, "\n\n".join(lines), caps, outline=outline, **meta)


# A cover or title page, as EPUB 3 marks them (pandoc writes one before the first chapter).
_TITLE_PAGE = re.compile(r"""epub:type=["'][^"']*\b(?:titlepage|cover)\b""")


def load_epub(path: Path, data: bytes, caps: Caps) -> Document:
    """An e-book: its chapters in reading order (the package's spine), each a page."""
    package = open_package(path, data)
    try:
        container = ElementTree.fromstring(package.read("META-INF/container.xml"))
        rootfile = next(e for e in container.iter() if e.tag.endswith("rootfile")).attrib["full-path"]
        opf = ElementTree.fromstring(package.read(rootfile))
    except (KeyError, StopIteration, ElementTree.ParseError) as e:
        raise LoaderError(str(path), f"corrupt EPUB: no readable package document ({e})") from None
    folder = posixpath.dirname(rootfile)
    manifest = {e.attrib.get("id"): e.attrib.get("href", "") for e in opf.iter() if e.tag.endswith("}item")}
    spine = [e.attrib.get("idref") for e in opf.iter() if e.tag.endswith("}itemref")]
    book_title = next((e.text or "" for e in opf.iter() if e.tag.endswith("}title")), "")
    chapters = []
    outline: list[tuple[int, str]] = []
    size = 0
    for n, idref in enumerate(spine, 1):
        href = manifest.get(idref, "")
        try:
            source = package.read(posixpath.normpath(posixpath.join(folder, href))).decode("utf-8", "replace")
        except KeyError:
            continue
        chapter = visible_text(source)
        size += len(chapter.text)
        caps.check_chars(path, size)
        if _TITLE_PAGE.search(source) and not chapter.text.replace(book_title.strip(), "").strip():
            continue  # the book's title again, nothing else (an author would be kept): its metadata has it
        label = chapter.title or (chapter.outline[0][1] if chapter.outline else f"chapter {n}")
        chapters.append((label, chapter.text))
        outline.extend(chapter.outline)
    titled = {"title": book_title.strip()} if book_title.strip() else {}
    return paged(path, [c for c in chapters if c[1].strip()], caps, outline=outline, type="epub", **titled)
