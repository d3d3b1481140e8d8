"""What a question is about, and whether passages mention it.

A question names things ("Docker", "CUPS") and asks about uncommon ones ("Which dd option
encrypts the output file?"). Passages that mention none of them cannot answer it, however
close their other words or their meaning come: the offline answer then says it was not
found (:mod:`.extract`), and a hybrid search first looks further down its own documents for
a passage that does (:mod:`.retrieve`). Words alone decide, so this holds for every model.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from ..documents import Source
from ..text import STOP_WORDS, WORD, stem, terms, zipf

# A word English uses less than ~30 times a million words ("encrypts", "temperatures",
# "configure") says what the question is about; plain words ("make", "ask", "everything")
# are how questions are put, and passages often say it otherwise ("prompt", "recursively").
# Chosen on the tuning half of tests/data/realset.json: the words its unanswerable questions
# hold and their passages lack lie at 2.8-4.5 on the Zipf scale ("encrypt" to "cloud", in
# their commonest forms), its answerable ones' at 4.6 and up but one ("select", in a passage
# retrieval missed, now found by :func:`.retrieve.covering`).
UNCOMMON_BELOW = 4.5
# "Which dd option", "what block size", "how many lines": the kind of answer asked for, a
# word the answer need not hold ("Which command updates /etc/ssl/certs?"). Its second word
# is not one ending in "s", which is the question's verb ("Which option encrypts ...?").
_ASKED_FOR = re.compile(r"\b(?:which|what|how\s+many|how\s+much)\s+(\S+)(?:\s+(?![^\s]*s\b)(\S+))?", re.I)
# Words asking what kind of answer is wanted that passages rarely repeat: a default is
# stated as "(default: 512)", "instead of 80" or "not 8"; a definition as what a word is.
_FRAMING = frozenset({"default", "defaults", "define", "defines", "defined"})
# Nor does a verb saying only that something happens ("when an error occurs"), nor an adverb
# ("securely", "reliably"): they say how a question is put, not what it is about.
_HAPPENING = frozenset("occur occurs occurred occurring happen happens happened arise arises".split())
# Nor an example the question gives ("a suffix like .txt", "such as commas"): the user's own,
# which a manual names in general terms ("SUFFIX").
_EXAMPLE = re.compile(r"\b(?:like|such\s+as|e\.g\.|for\s+example|for\s+instance)\s+\S+", re.I)


@functools.lru_cache(maxsize=4096)
def document_words(source: str) -> frozenset[str]:
    """The words of a document's file name, lowercased, its numbers and extension left out:
    "cp" of ".../cp.1.pdf", "dpkg rootless builds" of "dpkg-rootless-builds.txt", "zlib" of
    "zlib_how.html". Only parts that begin with a letter: the "c" of a UUID's "415c" is not a
    word of its name. (Cached: a search reads the names of its 20 best passages, and the
    answer those of its 5 again.)"""
    name = re.split(r"[\\/]", source.rstrip("/\\"))[-1]
    name = name.rsplit(".", 1)[0] if "." in name else name
    parts = (part.lower() for part in re.split(r"[^A-Za-z0-9]+", name) if part[:1].isalpha())
    return frozenset(part for part in parts if part not in STOP_WORDS)


@functools.lru_cache(maxsize=4096)
def document_terms(source: str) -> frozenset[str]:
    """The terms (stems) of a document's file name's words (:func:`document_words`)."""
    return frozenset(terms(" ".join(document_words(source))))


# "the third column", "each tail": a word after these is the plain word, not a document's name
# (comm's manual is meant by "the third column of comm's output", not column's), unless a word
# like "command" follows it ("the tail command").
_DETERMINERS = frozenset("the a an this that these those each every its their your my our".split())
_NAME_NOUNS = frozenset(
    """command program utility tool client server daemon service library module package manual page
    documentation readme option options""".split()
)


@functools.lru_cache(maxsize=1024)
def naming_words(question: str) -> frozenset[str]:
    """The words of ``question``, lowercased, that may name a document (:func:`document_words`):
    as they stand, for a name takes no plural ("columns" is the plain word; "comm's" is comm),
    and not after an article or the like within two words; a hyphenated word by its parts too
    ("ca-certificates" names ca-certificates-README.Debian); a dotted name squashed ("Node.js"
    as "nodejs")."""
    words = [_bare(w) for w in WORD.findall(question)]
    return frozenset(
        part
        for k, w in enumerate(words)
        if not _DETERMINERS.intersection(words[max(0, k - 2) : k])
        or (k + 1 < len(words) and words[k + 1] in _NAME_NOUNS)
        for part in {w, *w.split("-")}
        if part
    ) | {_squashed(name) for name in _DOTTED.findall(question)}


# A name written with dots, which a file name writes without: "Node.js" is nodejs-README.odt's.
_DOTTED = re.compile(r"\b[A-Za-z]\w*(?:\.[A-Za-z]\w*)+\b")


def _bare(word: str) -> str:
    """``word`` lowercased, a possessive dropped: "comm's" is "comm"."""
    return re.sub(r"['’]s$", "", word).lower()


def without_names(question: str, sources: Sequence[str]) -> str:
    """``question`` without the words that name ``sources``: within a document its name says
    nothing (every passage of libcbor's README is about libcbor, few say so, and a full-text
    search ranked those first, above the one saying its license); ``question`` itself if
    nothing else is left."""
    naming = {w for w in naming_words(question) if any(names_document(frozenset([w]), s) for s in sources)}
    rest = _DOTTED.sub(lambda m: " " if _squashed(m.group()) in naming else m.group(), question)
    kept = [w for w in WORD.findall(rest) if _bare(w) not in naming]
    return " ".join(kept) if terms(" ".join(kept)) else question


# A word English uses less than ~10 times a million words ("ssh", "pango", "comm") is a proper
# name where it names a document: it names one whose file name holds it with a prefix or a
# suffix ("openssh-client-README.Debian", "libpango-README.docx"), and the question means that
# document, not another that uses the word.
PROPER_BELOW = 4.0


@functools.lru_cache(maxsize=8192)
def names_document(words: frozenset[str], source: str, *, proper: bool = False) -> bool:
    """Whether a question whose :func:`naming_words` are ``words`` names ``source`` (``proper``:
    by a proper name, see ``PROPER_BELOW``). (Cached: a search asks it of each of its 20 to
    40 best passages twice, and the answer of its 5.)"""
    parts = document_words(source)
    return any(
        (w in parts or any(_affixed(w, part) for part in parts)) if _proper(w) else (w in parts and not proper)
        for w in words
    )


@functools.lru_cache(maxsize=8192)
def _proper(word: str) -> bool:
    return len(word) >= 3 and zipf(word) < PROPER_BELOW


def _affixed(word: str, part: str) -> bool:
    bare = part.rstrip("0123456789")  # "libglib2", "libsodium23"
    return bare.endswith(word) or bare.startswith(word)


def names(question: str) -> list[str]:
    """The names in ``question``: capitalised words after its first, acronyms ("Docker", "CUPS")."""
    words = WORD.findall(question)
    return [w for k, w in enumerate(words) if k > 0 and w[:1].isupper() and len(w) > 1 and w.lower() not in STOP_WORDS]


def _asked_for(question: str) -> set[str]:
    """The words naming the kind of answer ``question`` asks for, lowercased ("option" and
    "dd" of "Which dd option"; see ``_ASKED_FOR``)."""
    return {w.lower() for m in _ASKED_FOR.finditer(question) for w in m.groups() if w}


def uncommon_words(question: str) -> list[str]:
    """The uncommon English words of ``question`` (see ``UNCOMMON_BELOW``), its names and the
    kind of answer it asks for aside; each word of "issue-tracker" on its own. A word English
    does not know (a typo, an identifier: "bzip2", whose letters alone are another word) is
    not one: it says nothing of the documents."""
    named = set(names(question))
    asked_for = _asked_for(question)
    words = [
        part
        for w in WORD.findall(_EXAMPLE.sub(" ", question))
        if w not in named and w.lower() not in asked_for and w.lower() not in _FRAMING
        for part in re.sub(r"['’]s\b", "", w).split("-")
        if part.isalpha() and part.lower() not in STOP_WORDS  # "bzip2", "x86": an identifier
    ]
    return [
        w
        for w in dict.fromkeys(words)
        if 0 < zipf(w) < UNCOMMON_BELOW and w.lower() not in _HAPPENING and not w.lower().endswith("ly")
    ]


# How much a word of a question says of what it asks about: the rarer in English, the more
# (this less its Zipf frequency: "permissions" 2.0, "file" 1.8, "new" 0.3, "make" 0). A word
# English does not know ("inputrc") says as much as one used 100 times a billion words.
INFORMATIVE_UNDER = 6.5
_UNKNOWN_ZIPF = 2.0
# The words naming an option ("which gzip option", "which flag"); with "command", "tool" and
# the like, and the verbs questions are put with ("How do I make ...?"), they say how a
# question is put, not what it is about.
OPTION_NOUNS = frozenset("option options flag flags switch switches parameter parameters argument arguments".split())
OPTION_WORDS = "|".join(sorted(OPTION_NOUNS, key=lambda w: (-len(w), w)))  # as a pattern
_PUTTING = STOP_WORDS | _FRAMING | _HAPPENING | _NAME_NOUNS | OPTION_NOUNS | {"make", "use", "want"}


@dataclass(frozen=True)
class Asked:
    """What a question asks about (:func:`asked_about`): its words, lowercased, each with how
    much it says (``INFORMATIVE_UNDER``); and those of them an answer may leave unsaid."""

    words: dict[str, float]
    unsaid: frozenset[str]


def asked_about(question: str, sources: Sequence[Source]) -> Asked:
    """The words of ``question`` that say what it asks about: not the names of ``sources``'
    documents ("comm"), words framing it ("by default", "occurs"), words naming a program or
    an option, nor numbers. An answer may leave unsaid its names and the kind of answer it
    asks for ("how many trips", "which company"): a passage says what it is about once
    ("Viaweb"), then "it" ("we sold it to Yahoo"); "In 1998" answers "which year"."""
    asked_for = _asked_for(question)
    # "libffi" names libffi8-Introduction.html as names_document reads it.
    named = {w for w in naming_words(question) if any(names_document(frozenset({w}), s.source) for s in sources)}
    words: dict[str, float] = {}
    for word in WORD.findall(question):
        lower = _bare(word)
        if lower[:1].isalpha() and lower not in _PUTTING and lower not in named:
            words[lower] = max(0.0, INFORMATIVE_UNDER - (zipf(lower) or _UNKNOWN_ZIPF))
    return Asked(words, frozenset(asked_for | {_bare(name) for name in names(question)}) & words.keys())


def held(sources: Iterable[Source]) -> set[str]:
    """The stems ``sources`` hold: their words' and their documents' names' (every line of
    cp's manual is about cp, as its reader knows)."""
    out: set[str] = set()
    for source in sources:
        words = WORD.findall(source.text)
        out |= {stem(w) for w in words} | document_terms(source.source)
        # "re-installation" mentions "reinstall": a hyphenated word, written whole, too; and
        # "human-readable" mentions "readable".
        for w in words:
            if "-" in w:
                out |= {stem(w.replace("-", ""))} | {stem(part) for part in w.split("-") if part}
    return out


def mentioned(word: str, stems: Collection[str]) -> bool:
    """Whether ``stems`` hold ``word``'s stem, or, for a stem of five letters or more, one that
    begins with it or it begins with (the stemmer reads "occurs" as "occur" but "occurrences"
    as "occurr", "configuration" as "configur" but "config" as itself), or it after a prefix
    ("redistribute" mentions "distributed")."""
    root = stem(word)
    if root in stems:
        return True
    return len(root) >= 5 and any(
        len(other) >= 5 and (other.startswith(root) or root.startswith(other) or _prefixed(other, root))
        for other in stems
    )


def _prefixed(word: str, root: str) -> bool:
    # "unsupported" mentions "supported" too: the thing is talked of.
    return word.endswith(root) and word[: len(word) - len(root)] in _PREFIXES


_PREFIXES = frozenset({"re", "un", "pre", "non"})


# An identifier: letters, then digits among them ("base32", "sha256", "x86"); not "64-bit" or "1st".
_IDENTIFIER = re.compile(r"\b[A-Za-z][A-Za-z_]*\d[A-Za-z0-9_]*\b")


def identifiers(question: str) -> list[str]:
    """The identifiers of ``question`` ("How do I encode data as base32?"): each names one thing."""
    return list(dict.fromkeys(_IDENTIFIER.findall(question)))


def _squashed(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def unmentioned(question: str, sources: Sequence[Source]) -> list[str]:
    """The names, identifiers and uncommon words of ``question`` that no source mentions (an
    identifier as written, whatever separates its parts: "python3" is in "Python 3.11")."""
    named, uncommon, ids = names(question), uncommon_words(question), identifiers(question)
    if not named and not uncommon and not ids:
        return []
    text = " ".join(s.text for s in sources).lower()
    stems = held(sources)
    missing = [name for name in named if name.lower() not in text and stem(name) not in stems]
    if ids or any(not name.isalpha() for name in missing):
        # "SHA-256" is cksum's "sha256", "Wi-Fi" a "wifi": a name, as an identifier, whatever
        # separates its parts.
        squashed = _squashed(text + " " + " ".join(s.source for s in sources))
        missing = [name for name in missing if name.isalpha() or _squashed(name) not in squashed]
        missing += [i for i in ids if _squashed(i) not in squashed]
    return list(dict.fromkeys(missing + [word for word in uncommon if not mentioned(word, stems)]))
