"""HTML: the text a reader sees, nothing of what they do not (scripts, styles, hidden elements)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

from ...documents import Document
from ...tables import table_rows
from .base import Caps, Outline, decode, whole

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


_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class Visible(NamedTuple):
    """What a reader sees of a page: its title, its text (the title first) and its headings."""

    title: str
    text: str
    outline: Outline


def load_html(path: Path, data: bytes, caps: Caps) -> Document:
    page = visible_text(decode(path, data))
    meta = {"type": "html"}
    if page.title:
        meta["title"] = page.title
    return whole(path, page.text, caps, outline=page.outline, **meta)


_FILE_NAME = re.compile(r"[\w.-]+\.x?html?", re.I)


def visible_text(source: str) -> Visible:
    """An HTML page's title, the text a reader sees, and its headings (h1 to h6)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(source)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    if _FILE_NAME.fullmatch(title):  # "ch001.xhtml", as converters title a chapter: not a title
        title = ""
    body = tree.body or tree.root
    parts: list[str] = [title, "\n\n"] if title else []
    outline: list[tuple[int, str]] = []
    if body is not None:
        _walk(body, parts, outline)
    text = re.sub(r"[ \t\u00a0]+", " ", "".join(parts))
    text = _TERMED.sub(_term, text)
    text = text.replace(_TERM_OPEN, "").replace(_TERM_CLOSE, "\n\n").replace(_DEFINES, "\n\n").replace(_PRE, "")
    text = _ITEMS.sub(lambda m: "- " if m.end() < len(text) and not text[m.end()].isspace() else "", text)
    return Visible(title, re.sub(r" ?\n[ \n]*\n ?", "\n\n", text).strip(), outline)


# Where a definition list's term opens and closes, where the description after it opens, and
# where preformatted text opens: control characters no text node keeps (_walk drops them),
# replaced once the text is whole. (Python counts them as whitespace: patterns name the spaces.)
_TERM_OPEN, _TERM_CLOSE, _DEFINES, _PRE = "\x1c", "\x1d", "\x1e", "\x1f"
# And where a list item opens: it is marked as Markdown marks one ("- "), so that a short item
# ("HarfBuzz for complex text shaping") is read as an item, not as a heading.
_ITEM = "\x1a"
_ITEMS = re.compile(f"(?:{_ITEM}[ \\n]*)+")
_MARKS = str.maketrans("", "", _TERM_OPEN + _TERM_CLOSE + _DEFINES + _PRE + _ITEM)
_PLAIN = f"[^\\n{_TERM_OPEN}{_TERM_CLOSE}{_DEFINES}{_PRE}]"
_TERMED = re.compile(
    f"{_TERM_OPEN} *({_PLAIN}{{1,60}}?)[ \\n]*{_TERM_CLOSE}[ \\n]*{_DEFINES}[ \\n]*({_PLAIN}+(?:\\n{_PLAIN}+)*)"
)


def _term(match: re.Match[str]) -> str:
    # A short term and the first paragraph of its description read as one line, "-k --keep:
    # Keep (don't delete) input files ...", as a reader reads the list; apart, the description
    # lost what it describes. A term with a label of its own ("Function: ffi_call (...)", as
    # Texinfo writes an API entry) stays a heading above its description, and so does one
    # whose description opens with code.
    term, described = match.group(1).strip(), " ".join(match.group(2).split())
    if ": " in term or term.endswith(":"):
        return f"{term}\n\n{match.group(2)}"
    return f"{term}: {described}"


def _walk(node: Any, out: list[str], outline: list[tuple[int, str]]) -> None:
    # Iterative walk: real-world HTML nests deeper than Python's recursion limit.
    stack = [(node, False, False)]  # (node, closing, inside a list)
    while stack:
        current, closing, in_list = stack.pop()
        tag = current.tag
        if closing:
            out.append(_TERM_CLOSE if tag == "dt" else "\n\n")
            continue
        if tag == "-text":
            out.append((current.text_content or "").translate(_MARKS))
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
        children = list(current.iter(include_text=True))
        if _navigates(current, children, in_list):
            continue
        if tag == "table" and len(current.css("table")) <= 1:  # css() counts the node itself
            # A table of its own (no table inside): rows whose values keep their column's label.
            rows = [[" ".join(cell.text().split()) for cell in row.css("th, td")] for row in current.css("tr")]
            out.append("\n\n" + "\n".join(table_rows(rows)) + "\n\n")
            continue
        if tag in _HEADINGS:
            outline.append((_HEADINGS[tag], " ".join(current.text().split())))
        if tag in _BLOCK:
            out.append(
                {"br": "\n", "dt": _TERM_OPEN, "dd": _DEFINES, "pre": "\n\n" + _PRE, "li": "\n\n" + _ITEM}.get(
                    tag, "\n\n"
                )
            )
            stack.append((current, True, in_list))
        inner = in_list or tag in _LISTS
        stack.extend((child, False, inner) for child in reversed(children))


_LISTS = ("ul", "ol", "dl")  # a table of contents is one of them (DocBook writes a <dl>)
# Link relations that move through a site or a book rather than point at a source.
_RELS = frozenset({"next", "prev", "previous", "up", "index", "contents", "toc", "start", "first", "last", "home"})
_LABEL = 12  # characters of its own a navigation bar may hold per link: "Next: ", ", Up: ", " [", "]"


def _navigates(node: Any, children: list[Any], in_list: bool) -> bool:
    """Whether ``node`` (its ``children`` read already) only navigates: a ``<nav>`` (or ``role="navigation"``); a bar of
    links to the next, previous or enclosing page ("Next: Using libffi, Previous: libffi,
    Up: libffi [Index]", as Texinfo writes them); or a table of contents, a list of nothing
    but links to sections. A reader skips them; quoted, they answer nothing, and retrieved,
    they crowd out the text they point to. Each element is weighed once (a list inside a
    list is weighed with it), so a page costs its size, however deeply it nests."""
    if node.tag == "nav" or node.attributes.get("role") == "navigation":
        return True
    if node.tag in _LISTS and not in_list:
        links = node.css("a")
        if not links or not all("#" in (link.attributes.get("href") or "") for link in links):
            return False
        text = len("".join(node.text().split()))
        return text - sum(len("".join(link.text().split())) for link in links) <= len(links)
    if node.tag in ("p", "div"):
        links = [child for child in children if child.tag == "a"]
        if not links or any(child.tag not in ("a", "-text", "br") for child in children):
            return False
        if not all(_RELS.intersection((link.attributes.get("rel") or "").lower().split()) for link in links):
            return False
        said = sum(len((child.text_content or "").strip()) for child in children if child.tag == "-text")
        return said <= _LABEL * len(links)
    return False
