"""Formats read as text: plain text, Markdown, reStructuredText, CSV/TSV, JSON, JSON Lines, e-mail."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...documents import Document
from ...errors import LoaderError
from ...tables import labelled_row
from .base import Caps, decode, whole
from .html import visible_text


def load_text(path: Path, data: bytes, caps: Caps) -> Document:
    text = decode(path, data)
    if _MAN_HEAD.search(text[:2000]) is None:
        return whole(path, text, caps, type="text")
    text = _MAN_HYPHEN.sub(r"\1\2", without_running_heads(text))
    return whole(path, text, caps, outline=[(1, m.group(0)) for m in _MAN_SECTION.finditer(text)], type="text")


# A rendered manual page's running head, "TAR(1)   GNU TAR Manual   TAR(1)", and foot,
# "TAR   July 13, 2020   TAR(1)": furniture, not content, however often it is quoted.
_MAN_HEAD = re.compile(r"^(\S+)\((\d\w*)\)[ \t]{2,}\S.*?[ \t]{2,}\1\(\2\)[ \t]*$", re.M)
# man breaks words across lines with U+2010: "inter‐\n       active".
_MAN_HYPHEN = re.compile(r"(\w)\u2010\n[ \t]*(\w)")
# Its sections: NAME, SYNOPSIS, EXIT STATUS, SEE ALSO, capitals at the margin.
_MAN_SECTION = re.compile(r"^[A-Z][A-Z0-9 /&,()-]{1,40}[A-Z)]$", re.M)


def without_running_heads(text: str) -> str:
    """``text`` without a manual page's running heads and feet (other text is left as it is)."""
    head = _MAN_HEAD.search(text[:2000])
    if head is None:
        return text
    name, section = re.escape(head.group(1)), re.escape(head.group(2))
    furniture = re.compile(rf"^(?:{name}\({section}\)[ \t]{{2,}}.*|\S.*[ \t]{{2,}}{name}\({section}\))[ \t]*\n?", re.M)
    return furniture.sub("", text)


_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def load_markdown(path: Path, data: bytes, caps: Caps) -> Document:
    text = decode(path, data)
    return _titled(path, text, caps, "markdown", markdown_outline(text))


def markdown_outline(text: str) -> list[tuple[int, str]]:
    """Markdown's headings, ``#`` and underlined, outside fenced code (a shell comment is not one)."""
    outline: list[tuple[int, str]] = []
    fence = ""
    previous = ""
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if opening and (not fence or opening.group(1)[0] == fence[0]):
            fence = "" if fence else opening.group(1)
            previous = ""
            continue
        if fence:
            continue
        atx = _ATX.match(line)
        if atx:
            outline.append((len(atx.group(1)), atx.group(2)))
        elif previous.strip() and _SETEXT.match(line) and not previous.lstrip().startswith(("-", "*", ">", "|", "#")):
            outline.append((1 if line.strip()[0] == "=" else 2, previous.strip()))
        previous = line
    return outline


# An RST title: a line of text under- (and maybe over-) lined with one punctuation character.
_RST_TITLE = re.compile(r"^(?:([=\-~^\"'`#*+:.])\1{2,}\n)?(\S.*)\n([=\-~^\"'`#*+:.])\3{2,}\s*$", re.M)


def load_rst(path: Path, data: bytes, caps: Caps) -> Document:
    text = decode(path, data).replace("\r\n", "\n")
    styles: list[tuple[str, str]] = []  # RST ranks title styles by the order they first appear
    outline = []
    for match in _RST_TITLE.finditer(text):
        style = (match.group(1) or "", match.group(3))
        if style not in styles:
            styles.append(style)
        outline.append((styles.index(style) + 1, match.group(2).strip()))
    return _titled(path, text, caps, "rst", outline)


def _titled(path: Path, text: str, caps: Caps, kind: str, outline: list[tuple[int, str]]) -> Document:
    """A text whose first heading is its title."""
    titled = {"title": outline[0][1].strip()} if outline else {}
    return whole(path, text, caps, outline=outline, type=kind, **titled)


def load_table(path: Path, data: bytes, caps: Caps) -> Document:
    """CSV or TSV: each row a line, its values labelled by the header row's."""
    text = decode(path, data)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff_delimiter(text)
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(rows, [])
        lines = [labelled_row(header, row) for row in rows if any(cell.strip() for cell in row)]
    except csv.Error as e:
        raise LoaderError(str(path), f"not a well-formed table ({e})") from None
    body = "\n".join(line for line in lines if line)
    return whole(path, body, caps, type="table", columns=len(header), rows=len(lines))


def _sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def load_json(path: Path, data: bytes, caps: Caps) -> Document:
    """JSON: every value on a line of its own, after its path ("owner › name: Ada")."""
    try:
        value = json.loads(decode(path, data))
    except ValueError as e:
        raise LoaderError(str(path), f"not valid JSON ({e})") from None
    return whole(path, "\n".join(_flatten(value)), caps, type="json")


def load_jsonl(path: Path, data: bytes, caps: Caps) -> Document:
    """JSON Lines: each record flattened as in :func:`load_json`, records a paragraph each."""
    records = []
    for n, line in enumerate(decode(path, data).splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append("\n".join(_flatten(json.loads(line))))
        except ValueError as e:
            raise LoaderError(str(path), f"line {n} is not valid JSON ({e})") from None
    return whole(path, "\n\n".join(records), caps, type="jsonl", records=len(records))


def _flatten(value: Any, prefix: str = "") -> Iterator[str]:
    stack: list[tuple[str, Any]] = [(prefix, value)]  # iterative: nesting is the file's to choose
    while stack:
        key, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((f"{key} › {k}" if key else str(k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list) and any(isinstance(v, (dict, list)) for v in item):
            stack.extend((f"{key}[{i}]", v) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, list):
            yield f"{key}: {', '.join(map(str, item))}" if key else ", ".join(map(str, item))
        elif item is not None and str(item).strip():
            yield f"{key}: {item}" if key else str(item)


def load_email(path: Path, data: bytes, caps: Caps) -> Document:
    """An e-mail (.eml): who, when and the subject, then the text of its body."""
    from email import policy
    from email.parser import BytesParser

    message = BytesParser(policy=policy.default).parsebytes(data)
    head = [f"{name}: {message[name]}" for name in ("From", "To", "Cc", "Date", "Subject") if message[name]]
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        content = body.get_content()
        text = visible_text(content).text if body.get_content_type() == "text/html" else str(content)
    meta: dict[str, Any] = {"type": "email"}
    if message["Subject"]:
        meta["title"] = str(message["Subject"])
    return whole(path, "\n".join(head) + "\n\n" + text, caps, **meta)
