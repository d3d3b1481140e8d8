"""The offline answer: the sentence (or table row) of the retrieved passages that answers.

A sentence *about* the topic is not an answer; the one that *holds the fact* is. The
candidates are the passages' prose sentences (cut where sentences end, not at "e.g." or
"Fig."), list items, table rows with their column header, definitions ("-x, --extract:
Extract files ...", "%j: day of year", "excl: fail if the output file already exists", an
API reference's "Function: ..."), and sentences that introduce a command or a list, completed
with it ("... use this command: gpg --verify ...", "... such as: PNG, JPEG, GIF"); a short
sentence leaning on the one before ("This is the default.") stays with it; never headings
(underlined ones too), page furniture, pointers elsewhere ("See section ...") or lines that
only introduce what follows. Each is scored on four things, then the best one or two are
quoted, cited:

- meaning: cosine similarity to the question, with the model that retrieved the passages;
- the question's terms: the share of the question's content words (stemmed, weighted by
  how rare they are among the candidates) that the candidate contains, its document's
  name included (every line of cp's manual is about cp), and not those it says do not
  happen ("do not overwrite") unless the question asks for something not to happen;
- the kind of answer asked for: "how many / how much / which version" wants a number,
  "when" a date, "who / which company" a name, "which option / flag" an option, "what
  file / how do I" code (an option, a path, a command); a candidate holding such a token
  that the question does not already hold is preferred;
- a definition of what the question names ("-9", "Z") or describes ("ignore case" for
  "--ignore-case").

Footnote markers in the source text ("... the summer of 1998. [8]") are dropped from
quotes, so they cannot be mistaken for citations.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..documents import Source
from ..tables import is_row
from ..text import STOP_WORDS, WORD, sentence_spans, stem, terms, zipf
from .citations import cite, strip_footnotes
from .mentions import (
    OPTION_NOUNS,
    OPTION_WORDS,
    UNCOMMON_BELOW,
    asked_about,
    document_terms,
    document_words,
    held,
    mentioned,
    names_document,
    naming_words,
    unmentioned,
    without_names,
)

if TYPE_CHECKING:
    from ..embedding import Embedder

# Weights of the signals, and how close a second candidate must come to be quoted too. Chosen
# on tests/data/devset.json (the first three) and the tuning half of tests/data/realset.json
# (NAMED_WEIGHT: 0.2 to 0.4 score alike there), held against the 12 original questions and
# reported on realset's test half (docs/benchmarks.md).
TERMS_WEIGHT = 0.5
KIND_WEIGHT = 0.2
NAMED_WEIGHT = 0.3  # a definition of what the question names ("-9", "Z") or describes ("--ignore-case")
RANK_WEIGHT = 0.04
SECOND_WITHIN = 0.06
# Candidates whose meaning is weighed (embedded), the best by their words: 3 to 5 answer
# alike on both dev sets (8 lost one dev-set answer, 2 one realset answer). When the best
# word score is under WEAK_WORDS, every candidate within SHORTLIST_WITHIN of it, up to
# SHORTLIST_MAX: a paraphrase's answer may tie with others on its one shared word
# (docs/benchmarks.md).
SHORTLIST = 4
SHORTLIST_WITHIN, SHORTLIST_MAX, WEAK_WORDS = 0.15, 8, 0.3

_NUMBER = re.compile(r"^\$?\(?\d[\d,]*(?:\.\d+)?\)?%?$")
_YEAR = re.compile(r"^(1[6-9]|20)\d\d$")
_MONTH = frozenset("january february march april may june july august september october november december".split())
# Code and markup that is not prose: a shell prompt, a quoted block, a Markdown table or heading.
_CODE = re.compile(r"^\s*(?:[|#>]|\$ )")
# A term that a description follows: an option ("-x, --extract", "--best"), a format sequence ("%j").
# ("--raw-output / -r" too, as jq's manual writes it).
_TERM = re.compile(r"^(?:--?[\w#?][^\s]*|%\S+|\+\S+)(?:[ ,|/]+(?:--?[\w#][^\s]*|<[^>]+>|\[[^\]]+\]|[\w=.-]+,?))*$")
# A bullet before a term on its own line ("○   --raw-output / -r:").
_BULLET = "○•●◦▪"
# A term and its description on one line, after a gap of two spaces or more.
# (A short code such as ps's state "Z" needs a longer description, to tell it from prose.)
_DEFINITION = re.compile(
    r"^\s*(?:((?:--?[\w#][^\s]*|%\S+)(?:,? --?[\w-]+(?:=\S+)?)*)\s{2,}(?=\S.{2,}$)|(\S{1,2})\s{2,}(?=\S.{8,}$))(.*)$"
)
# A definition heading of API documentation (Texinfo's HTML among others), the paragraph below it its description.
_API = re.compile(
    r"^(?:Function|Macro|Data type|Variable|Command|Method|Constructor|Special Form|User Option|Typedef):\s+(.+?)\s*¶?$"
)
# A heading inside a passage: Markdown's ("## Building"), a short line in capitals ("OPTIONS").
_UNDERLINE = re.compile(r"^(?:={3,}|-{3,})$")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(\S.{0,80}?)\s*#*\s*$")
_CAPS_HEADING = re.compile(r"^(?=.*[A-Z]{2})[^a-z]{2,60}$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")


@dataclass(frozen=True)
class Candidate:
    """A quotable piece of a passage."""

    source: int  # index into the sources
    order: int  # position in the passage, for reading order
    text: str
    table: bool = False
    term: str = ""  # what a definition defines: "-x, --extract", "%j", "Z"
    heading: str = ""  # the heading it lies under in its passage ("Supported versions"), if any
    summary: bool = False  # a manual's NAME line ("tac - concatenate and print files in reverse")


@dataclass
class _Section:
    """The heading the lines being read lie under, and the line just read if it was a heading
    or a label with nothing quotable after it yet ("Fedora & RPM friends", above a command)."""

    heading: str = ""
    label: str = ""
    # A sentence ending in a colon, which the list items below it complete: its index in the
    # units, and how many units there were when it was last completed (-1: none to complete).
    listing: int = -1
    listed: int = -1


def candidates(sources: list[Source]) -> list[Candidate]:
    """The sentences, list items, option entries and table rows of the passages, in reading order."""
    out: list[Candidate] = []
    for i, source in enumerate(sources):
        prose: list[str] = []
        order = 0
        section = _Section()
        lines = _reindented(source.text.split("\n"))
        fenced = False
        directives: list[str] = []  # the fences of the MyST directives open around the line ("````")
        after_prose: int | None = None  # out's index of the sentence a blank line followed: it may introduce code
        k = 0
        while k < len(lines):
            line = lines[k]
            stripped = line.strip()
            k += 1
            if stripped.startswith(("```", "~~~")):
                order, introducer = _flushed(i, prose, order, out, after_prose, section)
                directive = None if fenced else _DIRECTIVE.match(stripped)
                if directive and directive.group(2).lower() in _PROSE_DIRECTIVES:
                    # "```{versionchanged} 21.3" holds prose, as Sphinx shows it: "Changed in version 21.3: ..."
                    directives.append(directive.group(1))
                    versioned = _VERSIONED.get(directive.group(2).lower())
                    if versioned and directive.group(3):
                        prose.append(f"{versioned} {directive.group(3).strip()}:")
                    continue
                if not fenced and directives and stripped == directives[-1]:
                    directives.pop()
                    continue
                fenced = not fenced
                if fenced:
                    _introduce(out, introducer, lines[k:])
                    if introducer is None and section.label:
                        order = _labelled(i, order, out, section, lines[k:])
                after_prose = None
                continue
            if fenced:
                continue
            if not stripped:
                if prose:
                    order, after_prose = _flushed(i, prose, order, out, after_prose, section)
                continue
            if _UNDERLINE.match(stripped) and len(prose) == 1:
                # "GdkPixbuf: Image loading library" above "=====": a heading (Markdown's other form).
                section.heading = section.label = prose.pop().strip()
                section.listed = -1
                after_prose = None
                continue
            if is_row(stripped):
                order = _flush(i, prose, order, out, section)
                section.label = ""
                out.append(Candidate(i, order, stripped, table=True, heading=section.heading))
                order += 1
                after_prose = None
                continue
            if _CODE.match(line):
                order, introducer = _flushed(i, prose, order, out, after_prose, section)
                heading = _MARKDOWN_HEADING.match(line)
                if heading:
                    section.heading = section.label = heading.group(1)
                if stripped.startswith(_PROMPTS):
                    _introduce(out, introducer, lines[k - 1 :])
                after_prose = None
                continue
            entry = _entry(lines, k - 1)
            if entry is not None:
                order = _flush(i, prose, order, out, section)
                section.label = ""
                term, units, k = entry
                for unit in units:
                    out.append(Candidate(i, order, unit, term=term, heading=section.heading))
                    order += 1
                after_prose = None
                continue
            if _CAPS_HEADING.match(stripped) and len(stripped.split()) <= 6 and not _LIST_ITEM.match(line):
                order = _flush(i, prose, order, out, section)
                section.heading = stripped
                after_prose = None
                continue
            if _LIST_ITEM.match(line):
                # An item starts a unit of its own (marker kept: see _flush).
                order = _flush(i, prose, order, out, section)
            prose.append(line)
        _flush(i, prose, order, out, section)
    # A sentence ending in a colon introduces what follows it (what it was not completed with:
    # a table, an entry): not an answer by itself.
    return [c for c in out if not _introduces(c.text)]


# A MyST directive's fence ("```{note}", "````{versionchanged} 21.3"), and the directives whose
# body is prose (others, "```{code-block}", "```{pip-cli}", hold code or what a project made up).
_DIRECTIVE = re.compile(r"^(`{3,}|~{3,})\{([\w-]+)\}(.*)$")
_PROSE_DIRECTIVES = frozenset(
    """note warning tip important caution attention danger error hint seealso admonition topic sidebar
    dropdown versionadded versionchanged deprecated versionremoved""".split()
)
_VERSIONED = {
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
    "versionremoved": "Removed in version",
}


def _introduces(sentence: str) -> bool:
    """Whether ``sentence`` means something only with what follows it: "The ffi_type has the
    following members:", "Use this command:", "To see a list of build options:", "Common
    options include:" (not "The TSC has final authority over this project, including:", which
    says its fact before its list)."""
    if not sentence.endswith(":"):
        return False
    words = sentence[:-1].lower().split()
    return (
        len(words) <= 4
        or words[0] in ("to", "for")  # "To see a list of build options:", a purpose
        or bool(_LEADS_ON.intersection(words))
        or words[-1] in _OPEN_ENDS
    )


_LEADS_ON = frozenset({"following", "follows", "below", "here"})
_OPEN_ENDS = frozenset(
    {"are", "is", "include", "includes", "with", "by", "as", "like", "of", "to", "for", "from", "be"}
)


def _reindented(lines: list[str]) -> list[str]:
    """A passage's lines, an option (or a code: "~C      Open command line.") on its first
    line indented as the least indented of the others that are: a passage cut from a document
    starts at its first word, so an option that opened it would look less indented than the
    text after its description, and take that as its own."""
    rest = [_indent(line) for line in lines[1:] if line.strip() and _indent(line)]
    if lines and rest and not _indent(lines[0]) and (_TERM.match(lines[0].strip()) or _DEFINITION.match(lines[0])):
        return [" " * min(rest) + lines[0]] + lines[1:]
    return lines


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _entry(lines: list[str], k: int) -> tuple[str, list[str], int] | None:
    """A definition at line ``k`` -- a term (an option such as "-x, --extract", a format
    sequence such as "%j", a word in an aligned list of words and their meanings) with its
    description, on the same line after a wide gap or on the more indented lines below -- as
    units "TERM: first sentence(s)", then "TERM: sentence" for each later sentence (each says
    what it is about); with the term, and the line after it."""
    line = lines[k]
    same_line = _DEFINITION.match(line)
    if (
        same_line
        and same_line.group(2)
        and (
            not same_line.group(2).strip(_BULLET)  # "○   --raw-output / -r:": a bullet, then a term
            or not _among_codes(lines, k)
        )
    ):
        same_line = None  # "to  track its end.": a justified line of prose, not a code and its meaning
    api = _API.match(line.strip())
    column = None if same_line or api else _word_list_column(lines, k)
    if api:
        # "Function: ffi_status ffi_prep_cif (ffi_cif *cif, ...)": what it names, then its paragraph.
        call = re.search(r"([A-Za-z_][\w:.]*)\s*\(", api.group(1))
        term = call.group(1) if call else api.group(1).split()[-1]
        stop = k + 1
        while stop < len(lines) and not lines[stop].strip():
            stop += 1
        description = []
        while stop < len(lines) and lines[stop].strip() and not _API.match(lines[stop].strip()):
            description.append(lines[stop])
            stop += 1
        if not description:
            return None
    elif same_line:
        term, description, stop = same_line.group(1) or same_line.group(2), [same_line.group(3)], k + 1
        column = same_line.start(3)  # the description wraps onto lines indented to it
        while stop < len(lines) and _indent(lines[stop]) >= column and not _DEFINITION.match(lines[stop]):
            description.append(lines[stop])
            stop += 1
    elif column is not None:
        # "excl   fail if the output file already exists", one of a list of such words
        item = _WORD_ITEM.match(line)
        assert item is not None  # it has a column
        term, description, stop = item.group(2), [item.group(4) or ""], k + 1
        while stop < len(lines) and lines[stop].strip() and _indent(lines[stop]) >= column:
            description.append(lines[stop])
            stop += 1
    else:
        term = line.strip().lstrip(_BULLET).strip()
        term = term[:-1] if term.endswith(":") and term[:1] in "-%+" else term
        # An option takes an argument or two ("-mtime n"); more plain words are prose
        # ("--reference, change the owner and group of each FILE to those of RFILE.").
        plain = [w for w in re.split(r"[ ,|/]+", term) if w and w[0] not in "-<[%+"]
        if not _TERM.match(term) or len(term) > 80 or len(plain) > 2:
            return None
        stop = k + 1
        description = []
        while stop < len(lines) and (not lines[stop].strip() or _indent(lines[stop]) > _indent(line)):
            if not lines[stop].strip() and description:
                break
            description.append(lines[stop])
            stop += 1
        if not "".join(description).strip():
            return None
    text = " ".join(" ".join(description).split())
    spans = sentence_spans(text) or [(0, len(text))]
    head = 2 if len(spans) > 1 and spans[0][1] - spans[0][0] < 60 else 1  # "Extract files." says little alone
    units = [f"{term}: {strip_footnotes(text[spans[0][0] : spans[head - 1][1]])}"]
    units += [f"{term}: {strip_footnotes(text[s:e])}" for s, e in spans[head:] if _quotable(text[s:e])]
    return term, units, stop


def _among_codes(lines: list[str], k: int) -> bool:
    """Whether the short code at line ``k`` has another beside it, at its indentation (ps's
    "D", "R", "S"; nl's "a", "t", "n"): one alone ("jq  usually  outputs ...") is a justified
    line of prose."""
    indent = _indent(lines[k])
    for step in (-1, 1):
        j = k + step
        # Past blank lines and the lines a description wraps onto.
        while 0 <= j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > indent):
            j += step
        if 0 <= j < len(lines) and _indent(lines[j]) == indent:
            other = _DEFINITION.match(lines[j])
            if other and other.group(2) or step < 0 and lines[j].rstrip().endswith(":"):
                return True  # another code, or the line introducing the list ("The escapes are:")
    return False


# A word and what it means, in an aligned list ("excl   fail if the output file already
# exists"), or a word alone on its line, its meaning on the lines below ("unblock").
_WORD_ITEM = re.compile(r"^(\s*)([a-z][\w/.+-]{1,15})(?:( +)(\S.*))?$")


def _word_list_column(lines: list[str], k: int) -> int | None:
    """The column where line ``k``'s description starts, if it is an item of a list of words
    and their meanings: three items or more, at one indentation, their descriptions starting
    at one column, most after a gap of two spaces or more (or on the lines below). Prose
    whose justified gaps happen to line up is not one: it runs on into the items, without
    a blank line or a colon between."""
    item = _WORD_ITEM.match(lines[k])
    first = _item(lines, k, len(item.group(1))) if item else None
    if item is None or first is None:
        return None
    indent, (column, _) = len(item.group(1)), first
    items = [first]
    for step in (-1, 1):
        j, beside = k + step, True  # beside: the line just passed was an item
        while 0 <= j < len(lines):
            other = _item(lines, j, indent)
            if other is not None and other[0] == column:
                items.append(other)
                beside = True
            elif not lines[j].strip() or _indent(lines[j]) >= column:  # a gap, or a description's continuation
                beside = False
            else:
                if beside and not (step < 0 and lines[j].rstrip().endswith(":")):
                    return None
                break
            j += step
    if len(items) < 3 or sum(wide for _, wide in items) * 2 < len(items):
        return None
    return column


def _item(lines: list[str], j: int, indent: int) -> tuple[int, bool] | None:
    """If line ``j`` is an item of a word list at ``indent``: the column its description
    starts at, and whether a wide gap (two spaces or more, or a line) sets it off."""
    item = _WORD_ITEM.match(lines[j])
    if item is None or len(item.group(1)) != indent:
        return None
    if item.group(4):
        return item.start(4), len(item.group(3)) >= 2
    below = lines[j + 1] if j + 1 < len(lines) else ""
    return (_indent(below), True) if below.strip() and _indent(below) > indent else None


def _flushed(
    source: int, prose: list[str], order: int, out: list[Candidate], before: int | None, section: _Section
) -> tuple[int, int | None]:
    """:func:`_flush`, and out's index of the last sentence of the paragraph just ended
    (``before`` if these lines held none): a sentence that may introduce what follows it."""
    added = len(out)
    order = _flush(source, prose, order, out, section)
    return order, len(out) - 1 if len(out) > added else before


def _labelled(source: int, order: int, out: list[Candidate], section: _Section, code: list[str]) -> int:
    """A command under a heading of its own, nothing between ("Fedora & RPM friends" above
    `yum install libcbor-devel`), as a unit "LABEL: COMMAND"; return the next order."""
    line = _unprompted(next((c.strip() for c in code if c.strip()), ""))
    label, section.label = section.label, ""
    if not _COMMAND.match(line) or len(line) > 160:
        return order
    out.append(Candidate(source, order, f"{label}: {line}", heading=section.heading))
    return order + 1


# A shell's prompt and Python's, before what is typed at them.
_PROMPTS = ("$ ", ">>> ")


def _unprompted(line: str) -> str:
    """``line`` without the prompt it was typed at: "yaml.safe_load(stream)" of ">>> yaml.safe_load(stream)"."""
    return next((line[len(p) :] for p in _PROMPTS if line.startswith(p)), line)


# A command line: a program's name ("yum", "sudo", "./configure") and its arguments.
_COMMAND = re.compile(r"^(?:\./)?[a-z][\w.+-]*(?: +\S+)+$")


def _introduce(out: list[Candidate], k: int | None, code: list[str]) -> None:
    """Complete out[k], a sentence introducing a command ("To verify the tarball, use this
    command"), with the command's first line: "how do I" is answered by the command."""
    if k is None or out[k].text.rstrip().endswith((".", "!", "?")):
        return
    line = _unprompted(next((c.strip() for c in code if c.strip() and not c.lstrip().startswith(("```", "~~~"))), ""))
    if line and len(line) <= 160:
        out[k] = replace(out[k], text=f"{out[k].text.rstrip().rstrip(':')}: {line}")


def _flush(source: int, prose: list[str], order: int, out: list[Candidate], section: _Section) -> int:
    """Add the quotable sentences of the prose lines gathered so far (under ``section``'s
    heading, which a heading among them replaces); return the next order."""
    while len(prose) > 1 and _is_title(prose[0]) and prose[1].lstrip()[:1].isupper():
        # a heading above the text ("Human Capital at Uber"), not the start of its first sentence
        section.heading = prose.pop(0).strip()
    item = _LIST_ITEM.match(prose[0]) if prose else None
    if item:
        prose[0] = prose[0][item.end() :]
    text = " ".join(" ".join(prose).split())
    lone_line = len(prose) == 1
    prose.clear()
    if not text:
        return order
    listing = section.listing if section.listed == len(out) else -1
    if item and listing >= 0 and len(out[listing].text) + len(text) <= _LISTED_MAX:
        # "GdkPixbuf can load image data encoded in different formats, such as:" and its items
        # ("- PNG", "- JPEG"): what it says is the list.
        lead = out[listing].text
        out[listing] = replace(out[listing], text=f"{lead}{' ' if lead.endswith(':') else ', '}{text.rstrip('.;,')}")
    elif lone_line and listing >= 0 and out[listing].text.endswith(":") and _completes(text):
        # "... it's postinst should run:" above "/usr/sbin/add-shell /path/to/shell": what to run.
        out[listing] = replace(out[listing], text=f"{out[listing].text} {text}")
        section.label, section.listed = "", -1
        return order
    if _asks(text):
        # "How to get rid off annoying beeps for ambiguous completions?": a FAQ's question, which
        # the text below it answers.
        section.heading, section.label, section.listed = text, "", -1
        return order
    if lone_line and not item and _WHATIS.match(text):
        # A manual's NAME line, "tac - concatenate and print files in reverse": what it is.
        out.append(Candidate(source, order, text, heading=section.heading, summary=True))
        section.label, section.listed = "", -1
        return order + 1
    if lone_line and not item and len(text.split()) <= 8 and not text.endswith((".", "!", "?", ":")):
        # A heading, a title, a line of page furniture (a short list item is none of them).
        section.heading = text if _is_title(text) else ""
        section.label = text
        section.listed = -1
        return order
    section.label = ""
    added = len(out)
    unit_start = -1  # where the unit just added (the sentence before) starts in text; -1: none was
    for s, e in sentence_spans(text):
        if unit_start >= 0 and _leans_back(text[s:e]):
            # "This is the default." says what it is only with the sentence before it.
            out[-1] = replace(out[-1], text=strip_footnotes(text[unit_start:e]))
            continue
        sentence = strip_footnotes(text[s:e])
        unit_start = s if _quotable(sentence) else -1
        if unit_start >= 0:
            out.append(Candidate(source, order, sentence, heading=section.heading))
            order += 1
    if item:
        section.listed = len(out) if listing >= 0 else -1  # the item's own unit does not end the list
    elif len(out) > added and out[-1].text.endswith(":"):
        section.listing, section.listed = len(out) - 1, len(out)
    else:
        section.listed = -1
    return order


_LISTED_MAX = 400  # characters of a sentence completed with its list


def _completes(line: str) -> bool:
    """Whether ``line``, alone below a sentence ending in a colon, completes it: a command,
    a path or a setting ("set bell-style none"), not a sentence or a title of its own."""
    return len(line.split()) <= 12 and not line.endswith((".", "!", "?", ":")) and not _is_title(line)


def _asks(text: str) -> bool:
    """Whether ``text`` is one question, as a FAQ asks it: a short sentence ending in "?"."""
    return text.endswith("?") and len(text.split()) <= 25 and len(sentence_spans(text)) == 1


# A manual's NAME line: its names, a dash, what it does ("cp - copy files and directories").
_WHATIS = re.compile(r"^[\w.+\[-]+(?:,\s*[\w.+\[-]+)*\s+\\?[-–—]\s+[a-z]\w*(?:\s+\S+){2,}$")


def _leans_back(sentence: str) -> bool:
    """A short sentence whose subject is the sentence before it ("This is the default.")."""
    return len(sentence) < 60 and bool(re.match(r"(?:This|That|It|These|Those|Such)\b", sentence))


def _is_title(line: str) -> bool:
    """A short line in title case without an ending stop: "Opinions on the Financial Statements"."""
    words = line.split()
    long = [w for w in words if len(w) > 3]
    return (
        0 < len(words) <= 12
        and words[0][:1].isupper()
        and not line.rstrip().endswith((".", "!", "?", ":", ",", ";"))
        and sum(w[:1].isupper() for w in long) >= 0.75 * len(long)
    )


def _quotable(sentence: str) -> bool:
    # Headings, page furniture, fragments and pointers elsewhere ("See section X") are not answers.
    # A sentence has two words in lower case at least: "cp [OPTION]... -t DIRECTORY SOURCE..."
    # (a usage line) or "GNU coreutils 9.1 September 2022" (a page's footer) has one.
    return (
        len(sentence.split()) >= 4
        and len(sentence) <= 800
        and len(set(_PROSE_WORD.findall(sentence))) >= 2
        and not _POINTER.match(sentence)
    )


_PROSE_WORD = re.compile(r"(?<![-\w])[a-z]{2,}\b(?![-(])")


_POINTER = re.compile(
    r"^(?:(?:please\s+)?(?:see|refer to)|for (?:more|further|additional) (?:details|information)|full documentation)\b",
    re.I,
)  # "Full documentation <https://...> or available locally via: info '(coreutils) paste invocation'"


# -- scoring -----------------------------------------------------------------------------


_NUMBER_WORDS = (
    r"revenues?|income|loss|losses|costs?|bookings|ebitda|budget|price|number|count|amount|margin|rate|"
    r"expenses?|cash|earnings|profit|sales|funding|valuation|debt|headcount|employees|share|percentage"
)


def answer_kinds(question: str) -> set[str]:
    """What kinds of token would answer ``question``: number, date, name, option, code, or a
    default as a manual states it ("What width does fold use by default?": "instead of 80");
    empty if any will do."""
    q = " " + " ".join(question.lower().split()) + " "
    kinds = set()
    if re.search(
        rf"\b(how many|how much|how large|how big|how long|how old|{_VERSION}|{_PORT}|"
        r"what (?:percentage|percent|share|proportion|fraction|number|amount))\b",
        q,
    ) or re.search(rf"\bwhat (?:was|were|is|are)\b[^?]{{0,40}}\b(?:{_NUMBER_WORDS})\b", q):
        kinds.add("number")
    # "When did ...?" asks for a date; "... when NEWCOLOR is given none?" names a condition.
    if re.search(r"^\W*when\b|\bwhen\W*$|\b(what year|which year|what date|since when|by when|and when)\b", q):
        kinds.add("date")
    if re.search(
        r"\b(who|whom|whose|which|where|called|named|what is the name|what (?:\w+ )?(?:company|language|computer|"
        r"country|city|name|school|firm|product))\b",
        q,
    ):
        kinds.add("name")
    if re.search(rf"\b(?:{_VERSION}|{_PORT})\b", q):
        kinds.discard("name")  # "which version" asks for a number, not a capitalised name
    code = re.search(rf"\b(?:which|what)\s+(?:[\w/-]+\s+){{0,2}}({_CODE_WORDS})\b", q)
    if code:
        # "which option" asks for an option ("-Dntp-servers="), not just any code ("time.google.com")
        kinds.add("option" if code.group(1) in OPTION_NOUNS else "code")
        kinds.discard("name")  # nor for a capitalised name
    if re.search(r"\bhow (?:do|can|could|should) (?:i|you|we|one)\b|\bhow (?:can|could|should) \S+\b|\bhow to\b", q):
        # "how do I ..." or "how can xargs ..." is answered by a command or an option, where there is one
        kinds.add("code")
    if re.search(_DEFAULT_ASKED, q) and not kinds & {"option", "code"}:
        # Not "Which configure parameter sets the default NTP servers?": that asks for the parameter.
        kinds.add("default")
    return kinds


# "What port does PostgreSQL listen on?", "What is the default port of the debugger?": a number.
_PORT = r"(?:what|which)\s+(?:(?:is|was)\s+the\s+)?(?:[\w.+-]+\s+){0,2}?port\b"
# "Which Pango version", "What is the minimum Python version" (not "What version control system").
_VERSION = r"(?:what|which)\s+(?:(?:is|was)\s+the\s+)?(?:[\w.+-]+\s+){0,2}?version\b(?!\s+control)"
# A question asking for a number itself ("How many ...?", "Which Pango version ...?"), not one
# asking how to do something with one ("How do I limit how many bytes cmp compares?").
_NUMBER_ASKED = re.compile(
    rf"^\s*(?:how\s+(?:many|much)|(?:since\s+)?{_VERSION}|what\s+(?:percentage|percent|share|proportion|fraction)"
    rf"|{_PORT})\b",
    re.I,
)
_SPELLED = frozenset(
    """one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty hundred
    thousand million billion dozen dozens half twice""".split()
)


def _gives_number(question: str, text: str) -> bool:
    """Whether ``text`` gives a number ``question`` does not hold (digits, or a number word:
    "eight"), or the question asks for none."""
    if not _NUMBER_ASKED.match(question):
        return True
    asked = {w.lower() for w in WORD.findall(question)} | terms(question)
    return bool(_kinds_held(text, {"number"}, asked)) or any(
        w.lower() in _SPELLED and w.lower() not in asked for w in WORD.findall(text)
    )


# An option as written on a command line: "-k", "--keep", "-Dntp-servers=" (in backquotes too).
_OPTION_TOKEN = re.compile(r"(?:^|[\s(\[`])--?[A-Za-z]")
# What names a piece of code, a file or a setting in a question ("which gzip option", "what file").
_CODE_WORDS = (
    OPTION_WORDS + r"|commands?|programs?|tools?|files?|fields?|tests?|"
    r"actions?|sequences?|directives?|variables?|settings?|keys?|keywords?|paths?|directory|directories|"
    r"functions?|macros?|methods?|types?|constants?"
)
# A token of code: an option, a format sequence, a path, a backquoted or quoted command, name=value,
# an identifier (snake_case, a call "f()"). A field name such as "Rules-Requires-Root" or
# "Content-Type" counts: it is typed as written.
_CODE_TOKEN = re.compile(
    r"(?:^|[\s(\[])(?:--?[A-Za-z]|%[A-Za-z]|~?/\w|\.\w)|`[^`]+`|'[a-z][^'\n]*'|\w=|\b[A-Za-z]\w*_\w+|\w\(\)"
    r"|\b[A-Z][a-z]+(?:-[A-Z][a-z]+)+\b"
)


# In "which company bought Viaweb", "company" names the kind of answer, not a word the answer holds.
_KIND_NOUN = re.compile(
    r"\b(?:which|what)\s+(?:\w+\s+)?(company|companies|firm|language|computer|country|countries|city|"
    r"cities|school|schools|year|person|product|name)\b",
    re.I,
)


# How a manual states a default: "(default: 512)", "the default is", "instead of 80".
_STATES_DEFAULT = re.compile(r"\bdefault(?:s|ed)?\b|\binstead of (?:the (?:first |last )?)?\d", re.I)
# A question about a default: "by default", "the default width", "when none is given", "if omitted".
_DEFAULT_ASKED = (
    r"\bdefaults?\b|\b(?:when|if|unless)\s+(?:none|nothing|no\s+\w+)\s+(?:is|are)\s+(?:given|specified|set)\b"
    r"|\b(?:when|if)\s+(?:it\s+is\s+|they\s+are\s+)?(?:omitted|unspecified|not\s+(?:given|specified|set))\b"
)


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+|\bwww\.\S+", re.I)
_TOKEN_KINDS = frozenset({"number", "date", "name"})  # kinds a word of the candidate holds


def _kinds_held(candidate: str, kinds: set[str], question_words: set[str]) -> int:
    """How many of ``kinds`` ``candidate`` holds a token of, not counting the question's own
    words, nor the insides of addresses ("%20" of a URL is no number, "PJK" of one no name)."""
    held = 0
    if "default" in kinds and _STATES_DEFAULT.search(candidate):
        held += 1
    if "code" in kinds and _CODE_TOKEN.search(candidate):
        held += 1
    if "option" in kinds and _OPTION_TOKEN.search(candidate):
        held += 1
    if not kinds & _TOKEN_KINDS:
        return held
    words = WORD.findall(_URL.sub(" ", candidate) if "://" in candidate or "www." in candidate else candidate)
    novel = [(k, w) for k, w in enumerate(words) if w.lower() not in question_words and stem(w) not in question_words]
    if "number" in kinds and any(
        w[:1].isdigit() and not _YEAR.match(w) and not (k and words[k - 1].lower() in _MONTH) for k, w in novel
    ):
        held += 1
    if "date" in kinds and any(_YEAR.match(w) or w.lower() in _MONTH for _, w in novel):
        held += 1
    # A capitalised word that does not start the sentence, or a capitalised acronym.
    if "name" in kinds and any(
        (k > 0 and w[0].isupper() or w.isupper() and len(w) > 1) and w.lower() not in STOP_WORDS for k, w in novel
    ):
        held += 1
    return held


def named(term: str, question: str) -> float:
    """How well ``question`` names the definition's ``term``: 1 when it holds one of its
    forms ("-9", "--best", "Z", "%j"); else the share of a long form's words it holds
    ("ignore case distinctions" for "--ignore-case"; "--no-ignore-case" gets 2 of 3). A
    one-word form ("--keep", "--sparse=WHEN") is named by its word only in a question
    asking for code or an option ("Which gzip option keeps ..."): "What does cp do with
    sparse files?" asks what cp does, which "--sparse=WHEN: control creation of sparse
    files. See below" does not say; and by a plain English word only half: "How do I make
    tail keep printing lines ...?" does not name "--lines" as "... send an extra header with
    curl?" names "--header"."""
    return _named(term, _naming(question))


@dataclass(frozen=True)
class _Naming:
    """What of a question can name a term: its tokens as typed, its words' stems (less those
    it negates: ``unwanted``), and whether it asks for code or an option."""

    tokens: frozenset[str]
    stems: frozenset[str]
    asks_code: bool
    unwanted: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()  # its words, lowercased, in order


def _naming(question: str, kinds: set[str] | None = None) -> _Naming:
    kinds = answer_kinds(question) if kinds is None else kinds
    not_wanted = frozenset(unwanted(question))
    return _Naming(
        frozenset(t.strip("?,.;:!\"'()") for t in question.split()),
        frozenset(stem(w) for w in WORD.findall(question)) - contrasted(question) - not_wanted,
        bool(kinds & {"code", "option"}),
        not_wanted,
        tuple(w.lower() for w in WORD.findall(question) if w.isalpha()),
    )


def _abbreviates(name: str, words: tuple[str, ...]) -> bool:
    """Whether an option's uncommon name word abbreviates words of the question: "dir" a
    "directory", "regex" a "regular expression" (the first letters of one, or of two in turn)."""
    name = name.lower()
    if len(name) < 3 or name in STOP_WORDS or zipf(name) >= UNCOMMON_BELOW:
        return False
    if any(len(w) > len(name) + 1 and w.startswith(name) for w in words):
        return True
    return any(
        a.startswith(name[:k]) and b.startswith(name[k:])
        for a, b in zip(words, words[1:])
        for k in range(2, len(name) - 1)
    )


# "characters rather than bytes", "append instead of overwriting": the word after these is what
# the question does not want; a candidate holding it is not the better for it (wc's "-c,
# --bytes" for "Which wc option counts characters rather than bytes?"). Not "not": "when
# TMPDIR is not set" is answered by "$TMPDIR, if set".
_CONTRAST = re.compile(r"\b(?:rather\s+than|instead\s+of)\b((?:\s+[\w'’-]+){1,4})", re.I)


def contrasted(question: str) -> set[str]:
    """The stems of the words ``question`` sets against what it asks ("bytes" of "characters
    rather than bytes"): the first content word after "rather than" or "instead of", unless
    the question also asks for it elsewhere."""
    out: set[str] = set()
    spans: list[tuple[int, int]] = []
    for m in _CONTRAST.finditer(question):
        first = next((w for w in WORD.findall(m.group(1)) if w.lower() not in STOP_WORDS), None)
        if first is not None:
            out.add(stem(first))
            spans.append(m.span())
    return out - terms(_outside(question, spans)) if spans else out


def _outside(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without the (start, end) ``spans``, in order, that do not overlap."""
    for start, end in reversed(spans):
        text = text[:start] + " " + text[end:]
    return text


# "not", "no", "never", "don't": the words a few after it are said not to happen.
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|\w+n['’]t)\b((?:\s+[\w'’-]+){1,3})", re.I)


def negated(text: str) -> set[str]:
    """The stems of the content words ``text`` says do not happen ("overwrite" of "do not
    overwrite an existing file"), unless it also says they do."""
    out: set[str] = set()
    spans: list[tuple[int, int]] = []
    for m in _NEGATION.finditer(text):
        out |= terms(m.group(1))
        spans.append(m.span())
    # Most candidates negate nothing: their words are not read again.
    return out - terms(_outside(text, spans)) if spans else out


# "How do I *stop* head from printing headers?", "*without* a header", "*disable* colours": a
# question asking for something not to happen, as "not" does.
_UNWANTED = re.compile(
    r"\b(?:stop|stops|prevent|prevents|avoid|avoids|disable|disables|suppress|without|turn\s+off)\b", re.I
)


# "when TMPDIR is not set": a condition the answer holds under, answered by "$TMPDIR, if set".
_CONDITION = re.compile(r"\b(?:when|whenever|if|unless|once)\b[^,;?]*", re.I)


def unwanted(question: str) -> set[str]:
    """The stems of what ``question`` asks not to be the case ("repeated" of "the lines that
    are not repeated"), not of the conditions it asks under ("when TMPDIR is not set")."""
    return negated(_CONDITION.sub(" ", question))


def asks_not(question: str) -> bool:
    """Whether ``question`` asks for something not to happen ("How do I stop head from
    printing headers?"), when "-q: never print headers" answers it."""
    return bool(_UNWANTED.search(question) or negated(question))


def _named(term: str, naming: _Naming) -> float:
    if not term:
        return 0.0
    # Its forms: options and sequences, not their arguments ("n" of "-mtime n"); or a short code.
    forms = [f for f in re.split(r"[,\s|]+", term) if f[:1] in "-%+"] or [term]
    best = 0.0
    for form in forms:
        if form in naming.tokens:
            return 1.0
        name = re.split(r"[=\[<]", form.lstrip("-+%"), maxsplit=1)[0]
        words = [w for w in re.split(r"[-_]", name) if w]
        if form.startswith("-") and len(name) > 2 and (len(words) > 1 or words and naming.asks_code):
            share = sum(stem(w) in naming.stems or _abbreviates(w, naming.words) for w in words) / len(words)
            denied = sum(stem(w) in naming.unwanted for w in words[1:]) if words[0] == "no" else 0
            if denied:
                # "not dereference" names "--no-dereference", as "not repeated" does not name "--repeated".
                share = max(share, (1 + denied) / len(words))
            if len(words) == 1 and zipf(words[0]) >= UNCOMMON_BELOW:
                # A plain word ("lines", "times") is how the question is put more often than
                # an option's name; an uncommon one ("header", "append") names it.
                share /= 2
            best = max(best, share)
    return best


# "What is polkit?", "What is polkit used for?", "What does asn1Parser do?": the question asks
# what its subject is, and the sentence that says so has that subject ("polkit is a toolkit ...").
_WHAT_IS = re.compile(
    r"^\s*what\s+(?:is|are)\s+(?:an?\s+|the\s+)?(?P<x>[^\s?]+(?:\s+[^\s?]+){0,2}?)(?:\s+(?:used\s+)?for)?\s*\?*\s*$"
    r"|^\s*what\s+(?:does|do)\s+(?:an?\s+|the\s+)?(?P<y>[^\s?]+(?:\s+[^\s?]+){0,2}?)\s+do\s*\?*\s*$",
    re.I,
)


def subject(question: str) -> str:
    """What ``question`` asks to be defined ("polkit" of "What is polkit used for?"); "" if none."""
    return _asked(question)[0]


def _asked(question: str) -> tuple[str, bool]:
    """The subject ``question`` asks to be defined, and whether it asks what it does."""
    match = _WHAT_IS.match(question)
    if match is None:
        return "", False
    x = match.group("x") or match.group("y")
    # "What is the default value of X?" asks for a value, not what something is.
    if re.search(r"\b(?:of|in|on|to|by|with)\b", x, re.I):
        return "", False
    return x, match.group("y") is not None


def _definition(question: str) -> re.Pattern[str] | None:
    """How a sentence saying what the question's subject is (or does) opens: the subject,
    perhaps a parenthesis, then a verb of being ("polkit is", "FFI stands for") or, for
    "what does X do", any verb ("asn1Parser reads")."""
    defined, doing = _asked(question)
    if not defined:
        return None
    verb = r"[a-z]+" if doing else r"(?:is|are|was|were|means|stands\s+for|refers\s+to)"
    return re.compile(rf"(?:the\s+|an?\s+)?{re.escape(defined)}\s*(?:\([^)]{{0,60}}\)\s*)?,?\s+{verb}\b", re.I)


def _in_context(candidate: Candidate) -> str:
    # "Automake (use 1.11.3 or later)" means "the version Automake must have" only under its
    # heading ("Building"): its meaning is read with the heading, as a reader reads it. A
    # table's row carries its labels already ("Trips (in millions): 2020: ..."); a heading
    # above the table only blurs it.
    if candidate.heading and not candidate.table:
        return f"{candidate.heading}: {candidate.text}"
    return candidate.text


def unit_texts(passage: str) -> list[str]:
    """The units of ``passage`` whose meaning an answer may weigh, each once, as it embeds
    them: ingest stores their vectors (:mod:`ragtide.sentences`)."""
    return list(dict.fromkeys(_in_context(c) for c in candidates([Source("", passage, "", 0.0)])))


async def _meanings(found: list[Candidate], sources: list[Source], embedder: Embedder) -> np.ndarray:
    """The vectors of ``found``: as stored with their passage at ingest, else embedded now."""
    texts = [_in_context(c) for c in found]
    vectors = np.empty((len(found), embedder.dim), dtype=np.float32)
    missing: list[int] = []
    for k, (candidate, text) in enumerate(zip(found, texts)):
        stored = sources[candidate.source].sentences.get(text)
        if stored is None or stored.shape != vectors[k].shape:  # none, or another tool's
            missing.append(k)
        else:
            vectors[k] = stored
    if missing:
        vectors[missing] = await embedder.embed_sentences([texts[k] for k in missing])
    return vectors


def word_scores(question: str, found: list[Candidate], sources: Sequence[Source] = ()) -> np.ndarray:
    """Each candidate's score from its words alone: question terms covered + the kind of
    answer asked for + a little for the passage's rank. Cheap; meaning is added after.

    A candidate holds the terms of its document's name (``sources``, the passages it was
    read from) as well as its own: every line of cp's manual is about cp, as its reader
    knows. "What exit status does diff return when the files differ?" then weighs "exit
    status" and "differ", not "diff", which every line of diff's manual holds, and the
    sentence saying so no longer loses to ones that happen to name diff. And a question
    naming a document ("How can touch copy the times of another file?", touch.1.txt) means
    that document by the word: in another one's text (tar's "-m, --touch") it is another
    thing, neither a term held nor an option named.
    """
    wanted = terms(question, frozenset(m.lower() for m in _KIND_NOUN.findall(question))) - contrasted(question)
    question_words = {w.lower() for w in WORD.findall(question)} | wanted
    candidate_terms = [terms(c.text) for c in found]
    where = question_words & _WHERE
    if where:
        # "the text printed after each line number": "add STRING after (possible) line number".
        wanted |= where
        candidate_terms = [
            ts | (where & {w.lower() for w in WORD.findall(c.text)}) for c, ts in zip(found, candidate_terms)
        ]
    kinds = answer_kinds(question)
    naming = _naming(question, kinds)
    asking_not = asks_not(question)
    if naming.unwanted or not asking_not:
        said_not = [negated(c.text) for c in found]
        # "How do I make cp ask before overwriting?" is not answered by "-n: do not overwrite";
        # "Which uniq option prints the lines that are not repeated?" not by "-d: print repeated lines".
        candidate_terms = [
            (ts if asking_not else ts - no) - (naming.unwanted - no) for ts, no in zip(candidate_terms, said_not)
        ]
    by_name: set[str] = set()  # the question's words that name one of the documents
    about = [True] * len(found)  # whether each candidate's document is one the question names
    if sources:
        names = [document_terms(source.source) for source in sources]
        asked = naming_words(question)
        named = [names_document(asked, source.source) for source in sources]
        name_words = set().union(*(document_words(source.source) for source in sources))
        by_name = wanted & {stem(w) for w in asked & name_words}
        about = [not by_name or named[c.source] for c in found]
        candidate_terms = [
            ts | names[c.source] if named_here else ts - by_name
            for c, ts, named_here in zip(found, candidate_terms, about)
        ]
    elsewhere = replace(naming, stems=naming.stems - by_name)
    n = len(found)
    df = {t: sum(t in ts for ts in candidate_terms) for t in wanted}
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in wanted}
    total = sum(idf.values()) or 1.0
    definition = _definition(question)
    out = np.empty(n, dtype=np.float32)
    for k, (candidate, ts) in enumerate(zip(found, candidate_terms)):
        coverage = sum(idf[t] for t in wanted & ts) / total
        fits = _kinds_held(candidate.text, kinds, question_words) / len(kinds) if kinds else 0.0
        rank = 1.0 / (1 + candidate.source)
        names_it = _named(candidate.term, naming if about[k] else elsewhere)
        out[k] = (
            TERMS_WEIGHT * coverage
            + KIND_WEIGHT * fits
            + RANK_WEIGHT * rank
            + NAMED_WEIGHT * max(names_it, float(bool(definition and definition.match(candidate.text))))
        )
    return out


# Words of where or when, stop words elsewhere, that tell one option from the next ("add STRING
# after", "prompt before overwrite").
_WHERE = frozenset({"after", "before", "between", "above", "below", "until"})


# "Which head option", "head's options": the program whose manual answers, however common a
# word its name is ("head", "column").
_WHOSE_OPTION = re.compile(rf"\b([A-Za-z][\w.+-]*)(?:['’]s)?\s+(?:{OPTION_WORDS})\b")


def _file_names(sources: Sequence[Source]) -> str:
    """The file names of ``sources``' documents, each once, in order: "cmp.1.txt, tac.1.txt"."""
    return ", ".join(dict.fromkeys(re.split(r"[\\/]", s.source)[-1] for s in sources))


NOT_FOUND = "Not found in your documents."
# Below a model's threshold, the best candidate's score (meaning + words, as ranked above)
# says it does not answer the question: the answer says so. Scores are on each model's own
# cosine scale, so a threshold holds for the model it was chosen with; others abstain only
# when the user sets one (Settings.abstain_below). all-MiniLM-L6-v2's was chosen on the
# tuning half of tests/data/realset.json, the first dev set and the demo's question: their
# off-topic questions score 0.26-0.40; the lowest answerable one, a paraphrase sharing few
# words with its answer (the demo's), 0.67; 0.53 lies midway. (On-topic questions the
# documents cannot answer score 0.78 and up, with the answerable: the score cannot tell them
# apart, so they are answered with the nearest passage, cited.) A question naming a document
# found is on that document's topic: the threshold does not apply to it.
CALIBRATED = {"all-MiniLM-L6-v2": 0.53}


def abstain_threshold(model: str, setting: float) -> float:
    """The score below which answers abstain: ``setting`` when it is 0 or more, else the
    model's calibrated threshold, else 0 (never)."""
    return setting if setting >= 0 else CALIBRATED.get(model, 0.0)


@dataclass(frozen=True)
class Quote:
    """Where a quoted sentence lies: in sources[source], characters start to end of its text."""

    source: int
    start: int
    end: int


@dataclass(frozen=True)
class Extraction:
    """The offline answer: its text, where its quotes lie, how well the best one fits the
    question (``score``), and whether that was enough (``found``: else the text says so)."""

    text: str
    quotes: tuple[Quote, ...] = ()
    score: float = 0.0
    found: bool = True


# "Which cmp option ignores differences in white space?": a question asking a program for an
# option is answered by an entry of its manual. When the passages hold three entries of the
# manual it names or more and none comes within this of it in meaning (the question's
# vector without the name, which every entry shares, against each entry's), the manual has no
# such option. On each model's own cosine scale, like CALIBRATED. all-MiniLM-L6-v2's was
# chosen on the tuning half of tests/data/realset.json: its unanswerable option questions'
# nearest entries lie at 0.26-0.50, seven of 17 under 0.34, its answerable ones' at 0.34
# (dd's, whose operands "status=LEVEL" are no entries: two entries found, so none is
# weighed) and 0.41 up; the fresh part's at 0.20 and 0.30 (unanswerable), 0.35 up
# (answerable). 0.33 keeps clear of the answerable (docs/benchmarks.md).
OPTIONS_CALIBRATED = {"all-MiniLM-L6-v2": 0.33}
ENTRIES_WEIGHED = 3  # fewer entries found: the manual's options may be written otherwise
# "How do I delete a folder with rm?": rm's manual says "remove" and "directory", never
# "delete" or "folder". An English word of the question no passage holds is said there
# otherwise when one of the passages' words comes within this of it in meaning (each word
# embedded alone); names and identifiers ("Docker", "base32") are never said otherwise. On
# each model's own cosine scale; other models read words alone. all-MiniLM-L6-v2's was chosen
# on the tuning half of tests/data/realset.json, its fresh and unseen parts and 66 questions
# over 27 documents none of them holds (docs/benchmarks.md): the answerable questions' missing
# words lie at 0.67-0.80 from their nearest ("megabytes": "bytes", "folder": "directory") but
# one ("erase": "shredding", 0.55), the unanswerable ones' at 0.34-0.54 ("encrypts": "https",
# "disk": "device") but one ("ignores": comm's "suppress", 0.68, now answered with "-3:
# suppress column 3"). 0.6 keeps clear of all the unanswerable but that one.
WORDING_CALIBRATED = {"all-MiniLM-L6-v2": 0.6}
# "Which comm option ignores case when comparing lines?" is answered by none of comm's entries,
# though its manual says "case" and "lines" somewhere: the nearest entry found ("--check-order:
# check that the input is correctly sorted") holds almost nothing the question asks about. The
# quotes must hold, in its words or in others within WORDING_CALIBRATED, this share of what the
# question asks about (:func:`.mentions.asked_about`, its words weighed by how rare they are),
# when it asks about that much (QUESTION_SAYS); only for a model with a wording calibration.
# Chosen on the tuning half of tests/data/realset.json and its fresh, unseen and probe parts:
# of their answered questions, five of the 19 unanswerable ones' quotes hold none of it, the
# 256 answered right 0.18 and up (docs/benchmarks.md).
QUOTE_HOLDS = 0.1
QUESTION_SAYS = 3.0  # "What is polkit used for?" asks about little but polkit: its quote is not weighed
WORDS_WEIGHED = 16  # of the question's words the quotes lack, the rarest looked for in other words


@dataclass(frozen=True)
class Abstention:
    """When the offline answer says "Not found in your documents." instead of quoting: its
    best candidate scores under ``below``, or (``mentions``) the question is about something
    no passage mentions (:func:`unmentioned`) or asks for a number the quotes chosen do not
    give, or it asks a program for an option and none of its entries found comes within
    ``options`` of it in meaning (``OPTIONS_CALIBRATED``), or the quotes chosen hold under
    ``held`` of what it asks about (``QUOTE_HOLDS``)."""

    below: float = 0.0
    mentions: bool = False
    options: float = 0.0
    wording: float = 0.0  # a word no passage holds is said otherwise by one this near (WORDING_CALIBRATED)
    held: float = 0.0  # the quotes must hold this share of what the question asks about (QUOTE_HOLDS)

    @classmethod
    def setting(cls, model: str, abstain_below: float) -> Abstention:
        """The rule for ``Settings.abstain_below`` with ``model``: 0 never abstains; else what
        the question is about must be mentioned (in other words, for a model calibrated for
        it), the threshold is :func:`abstain_threshold`'s, an option asked for must be near
        one found, for a model calibrated for it, and the quotes must hold some of what the
        question asks about (in other words too), for a model whose wording is calibrated."""
        if abstain_below == 0:
            return cls()
        return cls(
            abstain_threshold(model, abstain_below),
            mentions=True,
            options=OPTIONS_CALIBRATED.get(model, 0.0),
            wording=WORDING_CALIBRATED.get(model, 0.0),
            held=QUOTE_HOLDS if model in WORDING_CALIBRATED else 0.0,
        )


async def extract(
    question: str,
    sources: list[Source],
    embedder: Embedder,
    *,
    max_quotes: int = 2,
    abstain: Abstention = Abstention(),
    question_vector: np.ndarray | None = None,
) -> Extraction:
    """Quote the sentence or table row of the passages that answers ``question``, cited;
    or, as ``abstain`` says, that it was not found (``question_vector``: the question's
    embedding, if retrieval made it already).

    The best candidate is quoted; a second only if it scores nearly as well (within
    ``SECOND_WITHIN``), so the answer stays a sentence or two; or, for a question naming no
    program, the NAME line of the manual quoted (:func:`_named_program`).
    """
    if not sources:
        return Extraction(NOT_FOUND, found=False)
    asked = naming_words(question)
    whose = frozenset(m.lower() for m in _WHOSE_OPTION.findall(question)) & asked
    optioned = [bool(whose) and names_document(whose, source.source) for source in sources]
    own = [names_document(asked, source.source, proper=True) or o for source, o in zip(sources, optioned)]
    on_topic = any(names_document(asked, source.source) for source in sources)
    program_asked = bool(_PROGRAM_ASKED.match(question))
    if abstain.mentions:
        # What the question asks of head's manual must be in head's passages, not in ps's.
        scope = [source for source, o in zip(sources, optioned) if o] or sources
        missing = unmentioned(question, scope)
        if missing and abstain.wording:
            missing = await _unsaid(missing, scope, embedder, abstain.wording)
        if missing:
            listed = ", ".join(f"“{word}”" for word in missing)
            where = "passages found" if len(scope) == len(sources) else "passages of " + _file_names(scope)
            return Extraction(f"{NOT_FOUND} None of the {where} mentions {listed}.", found=False)
    found = every = candidates(sources)
    if any(own):
        # "Which comm option ...?" is answered from comm's manual, not from column's "-s, --separator".
        found = [c for c in found if own[c.source]]
    if _definition(question) is None and (on_topic or not program_asked):
        # A manual's NAME line says what the program is: what "What does tac do?" asks, and
        # which program does what "How do I create a named pipe?" asks ("mkfifo - make FIFOs
        # (named pipes)"), not how the program named does something.
        found = [c for c in found if not c.summary]
    if not found:
        # Only fragments (headings, code): show the best passage (of the document named) itself, cited.
        first = own.index(True) if any(own) else 0
        return Extraction(cite(" ".join(strip_footnotes(sources[first].text).split())[:600], first + 1))
    if abstain.options:
        unoffered = await _unoffered(question, found, sources, embedder, abstain.options)
        if unoffered:
            return Extraction(f"{NOT_FOUND} No option of {unoffered} found does what the question asks.", found=False)
    words = word_scores(question, found, sources)
    # Embedding every sentence of five passages costs more than the whole retrieval
    # (about 0.6 s on two cores); the words already rule most out.
    ranked = np.argsort(-words, kind="stable")
    # When the words find no candidate clearly (a paraphrase: "What happens when I ingest the
    # same files again?" shares one word with its answer), meaning weighs more of them.
    size = SHORTLIST
    if words[ranked[0]] < WEAK_WORDS:
        size = min(max(SHORTLIST, int(np.sum(words >= words[ranked[0]] - SHORTLIST_WITHIN))), SHORTLIST_MAX)
    shortlist = [int(i) for i in ranked[:size]]
    found = [found[i] for i in shortlist]
    q = question_vector if question_vector is not None else await embedder.embed_query(question)
    scores = await _meanings(found, sources, embedder) @ q + words[shortlist]
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    # The threshold tells questions off every document's topic; one naming a document found is
    # on its topic, however far its words lie from the answer's ("What does paste put between
    # the lines it merges?": "separated by TABs").
    if best < abstain.below and not on_topic:
        return Extraction(NOT_FOUND, score=best, found=False)
    chosen: list[Candidate] = []
    seen: set[str] = set()
    for idx in order:
        if len(chosen) == max_quotes or scores[idx] < best - SECOND_WITHIN:
            break
        candidate = found[idx]
        if candidate.text.lower() in seen:
            continue
        seen.add(candidate.text.lower())
        chosen.append(candidate)
    if abstain.mentions and not any(_gives_number(question, c.text) for c in chosen):
        # "How much does the bug bounty pay?" is not answered by a sentence without an amount.
        return Extraction(f"{NOT_FOUND} No passage found gives the number asked for.", score=best, found=False)
    if abstain.held:
        unheld = await _unheld(question, chosen, sources, embedder, abstain)
        if unheld:
            listed = ", ".join(f"“{word}”" for word in unheld)
            return Extraction(
                f"{NOT_FOUND} The closest passage found says nothing of {listed}.", score=best, found=False
            )
    if program_asked and not on_topic:
        chosen = _named_program(chosen, every, sources)
    chosen.sort(key=lambda c: (not c.summary, c.source, c.order))
    parts: list[str] = []
    quotes: list[Quote] = []
    for k, candidate in enumerate(chosen):
        # A table row, and a NAME line another quote follows, end as a sentence does.
        ends = candidate.table or (candidate.summary and k + 1 < len(chosen))
        text = candidate.text.rstrip(".") + "." if ends else candidate.text
        last_of_source = k + 1 == len(chosen) or chosen[k + 1].source != candidate.source
        parts.append(cite(text, candidate.source + 1) if last_of_source else text)
        span = locate(sources[candidate.source].text, candidate.text)
        if span is not None:
            quotes.append(Quote(candidate.source, *span))
    return Extraction(" ".join(parts), tuple(quotes), best)


def _named_program(chosen: list[Candidate], every: list[Candidate], sources: list[Source]) -> list[Candidate]:
    """``chosen`` led by the NAME line of the manual its best quote is from, when that quote
    does not name the program: "How do I create a named pipe?" is answered by "mkfifo - make
    FIFOs (named pipes)" as much as by "Create named pipes (FIFOs) with the given NAMEs", which
    a manual's reader knows to be mkfifo's, and an asker who named no program does not."""
    best = chosen[0]
    if any(c.summary for c in chosen):
        return chosen
    manual = sources[best.source].source
    for line in every:
        if line.summary and sources[line.source].source == manual:
            program = line.text.split()[0].rstrip(",")
            return chosen if re.search(rf"(?<![\w-]){re.escape(program)}(?![\w-])", best.text) else [line, best]
    return chosen


async def _unsaid(words: list[str], sources: Sequence[Source], embedder: Embedder, within: float) -> list[str]:
    """Those of ``words`` (missing from ``sources``) that none of the sources' words comes
    ``within`` of in meaning; a name or an identifier ("Docker", "base32") always."""
    english = [w for w in words if w.isalpha() and w.islower()]
    if not english:
        return words
    vocabulary = sorted(
        {w.lower() for s in sources for w in WORD.findall(s.text) if w.isalpha() and len(w) > 2} - STOP_WORDS
    )
    if not vocabulary:
        return words
    nearest = np.max((await embedder.embed_sentences(vocabulary)) @ (await embedder.embed_sentences(english)).T, axis=0)
    said = {w for w, cos in zip(english, nearest) if cos >= within}
    return [w for w in words if w not in said]


async def _unheld(
    question: str, chosen: list[Candidate], sources: list[Source], embedder: Embedder, abstain: Abstention
) -> list[str]:
    """What ``question`` asks about that the ``chosen`` quotes do not hold (in their words or
    others within ``abstain.wording``), its rarest words first, when they hold under
    ``abstain.held`` of it; else nothing. A word an answer may leave unsaid (a name, the kind
    of answer asked for) counts only when held."""
    asked = asked_about(question, sources)
    quoted = [Source(id="", text=" ".join(c.text for c in chosen), source="", score=0.0)]
    stems = held(quoted)
    quoted_words = {w for w in asked.words if mentioned(w, stems)}
    weighed = {w: weight for w, weight in asked.words.items() if w in quoted_words or w not in asked.unsaid}
    says = sum(weighed.values())
    missing = sorted((w for w in weighed if weighed[w] > 0 and w not in quoted_words), key=lambda w: -weighed[w])
    if says < QUESTION_SAYS or sum(weighed[word] for word in missing) <= (1 - abstain.held) * says:
        return []  # held in its own words: no word need be embedded
    # Each is embedded alone: a long question's rarest weigh enough, and bound the work.
    missing = await _unsaid(missing[:WORDS_WEIGHED], quoted, embedder, abstain.wording) + missing[WORDS_WEIGHED:]
    if sum(weighed[word] for word in missing) <= (1 - abstain.held) * says:
        return []
    return missing[:3]


# A question a program answers: "How do I create a named pipe?", "Which command converts
# spaces back to tabs?" (not "Which command's output ...?").
_PROGRAM_ASKED = re.compile(
    r"^\s*how\s+(?:do|can|could|should)\s+(?:i|you|we|one)\b|^\s*how\s+to\b"
    r"|^\s*(?:which|what)\s+(?:\w+\s+)?(?:command|program|tool|utility)\b(?!['’])",
    re.I,
)


# The verb after "I", "you", "we" or "to": what the question asks to do ("How do I install ...").
_DOING = re.compile(r"\b(?:i|you|we|to)\s+([a-z]+)\b", re.I)


async def _unoffered(
    question: str, found: list[Candidate], sources: list[Source], embedder: Embedder, within: float
) -> str:
    """The name of the document ``question`` asks an option of, when the passages hold
    ``ENTRIES_WEIGHED`` of its entries or more and none comes ``within`` of the question in
    meaning; else ""."""
    if not answer_kinds(question) & {"option", "code"}:
        return ""
    # "How do I install the packages ...?" asks how to install, not install(1) for an option.
    asked = naming_words(question) - {m.lower() for m in _DOING.findall(question)}
    named = {k for k, source in enumerate(sources) if names_document(asked, source.source)}
    entries = [c for c in found if c.term and c.source in named]
    if len({(c.source, c.term) for c in entries}) < ENTRIES_WEIGHED:
        return ""
    manuals = [sources[k] for k in dict.fromkeys(c.source for c in entries)]
    bare = await embedder.embed_query(without_names(question, [m.source for m in manuals]))
    if float(np.max(await _meanings(entries, sources, embedder) @ bare)) >= within:
        return ""
    return _file_names(manuals)


def locate(passage: str, quote: str) -> tuple[int, int] | None:
    """Where ``quote`` lies in ``passage``: its words in order, whatever lies between them
    (line breaks, the ": " an option entry adds, a footnote marker dropped)."""
    words = re.findall(r"\w+", quote)
    if not words:
        return None
    pattern = r"\W+(?:\d{1,3}\W+)?".join(map(re.escape, words))
    match = re.search(pattern, passage)
    if match is None:
        # A sentence completed with the command below it: the command's block lies between.
        return locate(passage, quote.rsplit(": ", 1)[0]) if ": " in quote else None
    start, end = match.start(), match.end()
    lead = quote.lstrip()[: len(quote.lstrip()) - len(quote.lstrip().lstrip("-%$+#(["))]  # "-x", "%j", "$4.2"
    if lead and passage[max(0, start - len(lead)) : start] == lead:
        start -= len(lead)
    if end < len(passage) and passage[end] in ".!?" and quote.rstrip().endswith(passage[end]):
        end += 1
    return start, end
