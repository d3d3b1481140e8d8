"""HTML: the text a reader sees, nothing of what they do not (scripts, styles, hidden elements)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...documents import Document
from .base import Caps, decode, whole

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
    title, text = visible_text(decode(path, data))
    meta = {"type": "html"}
    if title:
        meta["title"] = title
    return whole(path, text, caps, **meta)


def visible_text(source: str) -> tuple[str, str]:
    """An HTML page's title, and the text a reader sees (the title first)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(source)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    body = tree.body or tree.root
    parts: list[str] = [title, "\n\n"] if title else []
    if body is not None:
        _walk(body, parts)
    text = re.sub(r"[ \t\u00a0]+", " ", "".join(parts))
    return title, re.sub(r" ?\n[ \n]*\n ?", "\n\n", text).strip()


def _walk(node: Any, out: list[str]) -> None:
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
