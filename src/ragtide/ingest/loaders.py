"""Turn files into :class:`Document` objects: plain text, Markdown, HTML and PDF.

Each loader reads bytes, checks they are what the extension claims, and returns the
text with page boundaries. Any problem is a :class:`LoaderError` naming the file.
"""

from __future__ import annotations

import codecs
import dataclasses
import errno
import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..documents import Document, Page
from ..errors import LoaderError

Loader = Callable[[Path, bytes, "Caps"], Document]


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


def _decode(path: Path, data: bytes) -> str:
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


def _whole(path: Path, text: str, caps: Caps, **metadata: object) -> Document:
    caps.check_chars(path, len(text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise LoaderError(str(path), "no text (empty file)")
    return Document(key=str(path), text=text, pages=(Page(None, 0, len(text)),), metadata=dict(metadata))


def load_text(path: Path, data: bytes, caps: Caps) -> Document:
    return _whole(path, _decode(path, data), caps, type="text")


_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def load_markdown(path: Path, data: bytes, caps: Caps) -> Document:
    text = _decode(path, data)
    heading = _HEADING.search(text)
    meta = {"type": "markdown"}
    if heading:
        meta["title"] = heading.group(1)
    return _whole(path, text, caps, **meta)


# Elements whose content a reader never sees.
_INVISIBLE = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object", "canvas"}
_BLOCK = {
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "td",
    "th",
    "tr",
    "ul",
    "title",
    "caption",
}


def load_html(path: Path, data: bytes, caps: Caps) -> Document:
    from selectolax.lexbor import LexborHTMLParser

    source = _decode(path, data)
    tree = LexborHTMLParser(source)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    body = tree.body or tree.root
    parts: list[str] = [title, "\n\n"] if title else []
    if body is not None:
        _visible_text(body, parts)
    text = re.sub(r"[ \t\u00a0]+", " ", "".join(parts))
    text = re.sub(r" ?\n[ \n]*\n ?", "\n\n", text).strip()
    meta = {"type": "html"}
    if title:
        meta["title"] = title
    return _whole(path, text, caps, **meta)


def _visible_text(node, out: list[str]) -> None:
    # Iterative walk: real-world HTML nests deeper than Python's recursion limit.
    stack = [(node, False)]
    while stack:
        current, closing = stack.pop()
        tag = current.tag
        if closing:
            out.append("\n\n")
            continue
        if tag == "-text":
            out.append(current.text_content or "")
            continue
        if tag in _INVISIBLE or tag == "-comment":
            continue
        attrs = current.attributes
        if (
            "hidden" in attrs
            or attrs.get("aria-hidden") == "true"
            or "display:none" in (attrs.get("style") or "").replace(" ", "")
        ):
            continue
        if tag in _BLOCK:
            out.append("\n\n" if tag != "br" else "\n")
            stack.append((current, True))
        children = list(current.iter(include_text=True))
        stack.extend((child, False) for child in reversed(children))


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


LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
}


def load(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    max_pages: int | None = None,
    max_chars: int | None = None,
) -> Document:
    """Load one file by its extension. Raises :class:`LoaderError` naming the file.

    Files over ``max_bytes`` are refused: what ingesting a file costs in memory grows
    with its size; so are documents of more than ``max_pages`` pages or ``max_chars``
    characters of text, as soon as reading them gets that far.
    """
    p = Path(path)
    caps = Caps(max_bytes, max_pages, max_chars)
    loader = LOADERS.get(p.suffix.lower())
    if loader is None:
        raise LoaderError(str(p), f"unsupported file type {p.suffix or '(none)'!r}")
    try:
        if max_bytes is not None and (size := p.stat().st_size) > max_bytes:
            raise LoaderError(
                str(p),
                f"too large ({size / 2**20:,.0f} MB; the limit is {max_bytes / 2**20:,.0f} MB: "
                "split the file, or raise --max-file-mb / RAGTIDE_MAX_FILE_MB)",
            )
        data = p.read_bytes()
    except OSError as e:
        raise LoaderError(str(p), f"cannot read ({e.strerror or e})") from None
    if not data.strip():
        raise LoaderError(str(p), "no text (empty file)")
    try:
        doc = loader(p, data, dataclasses.replace(caps, size=len(data)))
    except LoaderError:
        raise
    except Exception as e:  # a parser bug must cost one file, not the whole run
        raise LoaderError(str(p), f"{type(e).__name__}: {e}") from None
    return doc


@dataclass(frozen=True)
class Discovery:
    """What walking the inputs found."""

    files: list[Path]
    skipped: list[Path]  # files with an extension no loader handles
    problems: dict[str, str]  # inputs or files that cannot be read -> why


def discover(
    paths: Iterable[str | os.PathLike[str]],
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> Discovery:
    """Expand files and directories into the files to load, sorted and without duplicates.

    ``include``/``exclude`` are glob patterns matched against the file name and against
    the path relative to the directory given; hidden files and folders are left out.
    What cannot be read (a missing path, a symbolic link loop or a broken link, an
    unreadable folder) is named in ``problems`` and the rest is still found.
    """
    include, exclude = list(include), list(exclude)
    files: dict[Path, None] = {}
    skipped: list[Path] = []
    problems: dict[str, str] = {}
    for given in paths:
        root = Path(given)
        if root.is_dir():
            candidates: Iterator[tuple[Path, str]] = _walk(root, problems)
        elif root.is_file():
            candidates = iter([(root, root.name)])
        else:
            problems[str(given)] = _why_unreadable(root)
            continue
        for path, rel in candidates:
            if include and not _matches(path.name, rel, include):
                continue
            if exclude and _matches(path.name, rel, exclude):
                continue
            if path.suffix.lower() not in LOADERS:
                skipped.append(path)
                continue
            try:
                resolved = path.resolve(strict=True)
            except (OSError, RuntimeError):
                problems[str(path)] = _why_unreadable(path)
                continue
            if not resolved.is_file():
                problems[str(path)] = _why_unreadable(path)
                continue
            files[resolved] = None
    return Discovery(sorted(files), skipped, problems)


def _why_unreadable(path: Path) -> str:
    """Why ``path`` is neither a file nor a folder we can read."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return "symbolic link loop (the link points, through other links, back to itself)"
        except FileNotFoundError:
            return f"broken symbolic link (its target {os.readlink(path)!r} does not exist)"
        except OSError as e:
            if e.errno == errno.ELOOP:
                return "symbolic link loop (the link points, through other links, back to itself)"
            return f"cannot follow symbolic link ({e.strerror or e})"
    if not os.path.lexists(path):
        return "no such file or directory"
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "not a regular file or folder (a socket, pipe or device)"
    return "cannot read"


def _walk(root: Path, problems: dict[str, str]) -> Iterator[tuple[Path, str]]:
    def unreadable(error: OSError) -> None:
        problems[str(error.filename)] = f"cannot read folder ({error.strerror or error})"

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath, name)
            yield path, path.relative_to(root).as_posix()


def _matches(name: str, rel: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(rel, p) for p in patterns)
