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


@functools.lru_cache(maxsize=4096)
def document_terms(source: str) -> frozenset[str]:
    """The terms of a document's file name, its numbers and extension left out: "cp" of
    ".../cp.1.pdf", "dpkg rootless build" of "dpkg-rootless-builds.txt". Only parts that
    begin with a letter: the "c" of a UUID's "415c" is not a word of its name. (Cached: a
    search reads the names of its 20 best passages, and the answer those of its 5 again.)"""
    name = re.split(r"[\\/]", source.rstrip("/\\"))[-1]
    name = name.rsplit(".", 1)[0] if "." in name else name
    return frozenset(terms(" ".join(part for part in re.split(r"[^A-Za-z0-9]+", name) if part[:1].isalpha())))


def names(question: str) -> list[str]:
    """The names in ``question``: capitalised words after its first, acronyms ("Docker", "CUPS")."""
    words = WORD.findall(question)
    return [w for k, w in enumerate(words) if k > 0 and w[:1].isupper() and len(w) > 1 and w.lower() not in STOP_WORDS]


def uncommon_words(question: str) -> list[str]:
    """The uncommon English words of ``question`` (see ``UNCOMMON_BELOW``), its names and the
    kind of answer it asks for aside; each word of "issue-tracker" on its own. A word English
    does not know (a typo, an identifier: "bzip2", whose letters alone are another word) is
    not one: it says nothing of the documents."""
    named = set(names(question))
    asked_for = {w.lower() for m in _ASKED_FOR.finditer(question) for w in m.groups() if w}
    words = [
        part
        for w in WORD.findall(question)
        if w not in named and w.lower() not in asked_for
        for part in re.sub(r"['’]s\b", "", w).split("-")
        if part.isalpha() and part.lower() not in STOP_WORDS  # "bzip2", "x86": an identifier
    ]
    return [w for w in dict.fromkeys(words) if 0 < zipf(w) < UNCOMMON_BELOW]


def held(sources: Iterable[Source]) -> set[str]:
    """The stems ``sources`` hold: their words' and their documents' names' (every line of
    cp's manual is about cp, as its reader knows)."""
    out: set[str] = set()
    for source in sources:
        out |= {stem(w) for w in WORD.findall(source.text)} | document_terms(source.source)
    return out


def mentioned(word: str, stems: Collection[str]) -> bool:
    """Whether ``stems`` hold ``word``'s stem, or, for a stem of five letters or more, one that
    begins with it or it begins with: the stemmer reads "occurs" as "occur" but "occurrences"
    as "occurr", "configuration" as "configur" but "config" as itself."""
    root = stem(word)
    if root in stems:
        return True
    return len(root) >= 5 and any(
        len(other) >= 5 and (other.startswith(root) or root.startswith(other)) for other in stems
    )


def unmentioned(question: str, sources: Sequence[Source]) -> list[str]:
    """The names and uncommon words of ``question`` that no source mentions."""
    named, uncommon = names(question), uncommon_words(question)
    if not named and not uncommon:
        return []
    text = " ".join(s.text for s in sources).lower()
    stems = held(sources)
    missing = [name for name in named if name.lower() not in text and stem(name) not in stems]
    return list(dict.fromkeys(missing + [word for word in uncommon if not mentioned(word, stems)]))
