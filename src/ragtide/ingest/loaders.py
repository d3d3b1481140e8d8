"""Turn files into :class:`Document` objects, by their type.

A file's type is its suffix (``.docx``); a compressed file (``.gz``) is read as what it
holds; a file of any other suffix, or none (``README.Debian``), is read as plain text when
its first bytes are text. Readers live in :mod:`.formats`; others are added by packages
through the ``ragtide.loaders`` entry-point group, each entry named for the suffix it reads
and pointing at a function ``(path: Path, data: bytes, caps: Caps) -> Document``::

    # pyproject.toml of a package "ragtide-org"
    [project.entry-points."ragtide.loaders"]
    ".org" = "ragtide_org:load_org"

Any problem is a :class:`LoaderError` naming the file.
"""

from __future__ import annotations

import dataclasses
import errno
import fnmatch
import functools
import gzip
import io
import os
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..documents import Document
from ..errors import LoaderError
from .formats import BUILTIN, Caps, Loader, ocr
from .formats.plain import load_text

COMPRESSED = ".gz"
SNIFF_BYTES = 8192  # how much of a file of no known type is read to tell whether it is text


@functools.cache
def registry() -> dict[str, Loader]:
    """Every reader, by suffix: ragtide's own, then those packages add (which may replace them)."""
    readers = dict(BUILTIN)
    for entry in metadata.entry_points(group="ragtide.loaders"):
        suffix = entry.name.lower() if entry.name.startswith(".") else f".{entry.name.lower()}"
        try:
            readers[suffix] = entry.load()
        except Exception as e:  # a broken plug-in costs its own format, not ragtide
            readers[suffix] = _broken(entry.value, e)
    return readers


def _broken(where: str, error: Exception) -> Loader:
    def refuse(path: Path, data: bytes, caps: Caps) -> Document:
        raise LoaderError(str(path), f"the reader for {path.suffix} ({where}) cannot load: {error}")

    return refuse


def supported() -> list[str]:
    """The suffixes ragtide reads (besides plain text of any suffix, detected by content)."""
    return sorted([*registry(), COMPRESSED])


def unsupported(path: Path) -> str:
    what = f"{path.suffix!r}" if path.suffix else "(no suffix)"
    return f"unsupported file type {what}: not text, nor one of {', '.join(supported())}"


def known_type(path: Path) -> bool:
    """Whether ``path``'s suffix says what it is: a type a reader reads, or compressed."""
    suffix = path.suffix.lower()
    return suffix in registry() or suffix == COMPRESSED


def readable(path: Path) -> bool:
    """Whether ragtide reads ``path``: a known type, or text by its first bytes."""
    if known_type(path):
        return True
    try:
        with open(path, "rb") as f:
            return looks_like_text(f.read(SNIFF_BYTES))
    except OSError:
        return True  # let loading say why it cannot be read


def looks_like_text(head: bytes) -> bool:
    """Whether these first bytes of a file are text (UTF-8 or UTF-16 with a BOM, few control characters)."""
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    if not head.strip() or b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.reason != "unexpected end of data":  # only a character cut at the end is allowed
            return False
        text = head[: e.start].decode("utf-8")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    return controls <= 0.05 * len(text)


def load(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    max_pages: int | None = None,
    max_chars: int | None = None,
    max_ocr_pages: int | None = None,
) -> Document:
    """Load one file by its type. Raises :class:`LoaderError` naming the file.

    Files over ``max_bytes`` are refused (and compressed ones unpacking past it): what
    ingesting a file costs in memory grows with its size; so are documents of more than
    ``max_pages`` pages or ``max_chars`` characters of text, as soon as reading them gets
    that far, or with more than ``max_ocr_pages`` scanned pages.
    """
    p = Path(path)
    caps = Caps(max_bytes, max_pages, max_chars, max_ocr_pages)
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
    name = p
    if p.suffix.lower() == COMPRESSED:
        data, name = _gunzip(p, data, max_bytes), p.with_suffix("")
    if not data.strip():
        raise LoaderError(str(p), "no text (empty file)")
    loader = registry().get(name.suffix.lower())
    if loader is None:
        if not looks_like_text(data[:SNIFF_BYTES]):
            raise LoaderError(str(p), unsupported(name))
        loader = load_text
    try:
        doc = loader(p, data, dataclasses.replace(caps, size=len(data)))
    except LoaderError:
        raise
    except Exception as e:  # a parser bug must cost one file, not the whole run
        raise LoaderError(str(p), f"{type(e).__name__}: {e}") from None
    return doc


def _gunzip(path: Path, data: bytes, limit: int | None) -> bytes:
    """A gzip file's contents, refused past ``limit`` bytes (a gzip bomb stops there)."""
    cap = limit if limit is not None else 1 << 30
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            out = f.read(cap + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise LoaderError(str(path), f"corrupt gzip file ({e})") from None
    if len(out) > cap:
        raise LoaderError(str(path), f"unpacks to more than {cap / 2**20:,.0f} MB (the file size limit)")
    return out


@dataclass(frozen=True)
class Discovery:
    """What walking the inputs found."""

    files: list[Path]
    skipped: list[Path]  # files in the folders given that are not text and of no type a loader reads
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
            if path != root and path.suffix.lower() in ocr.PICTURES and not ocr.available():
                skipped.append(path)  # pictures in a folder are read only where OCR can read them
                continue
            if not readable(path):
                if path == root:  # named explicitly: an error, not a skip
                    problems[str(path)] = unsupported(path)
                else:
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
