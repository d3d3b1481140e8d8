"""Text as ragtide reads it: sentences, and words as English stems with the stop words left out.

Shared by chunking (sentence boundaries), the hybrid search's phrase step
(:mod:`.query.retrieve`) and the offline answer (:mod:`.query.extract`), so that all read
"reportable segments" and "reportable segment" alike.
"""

from __future__ import annotations

import functools
import re
import threading

STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers him
    his how i if in into is it its itself just me more most my no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these they this those through to
    too under until up very was we were what when where which while who whom whose why will with would you your yours
    many much did does get got one ones""".split()
)
# A word, a number with its separators ("1,596", "8.3%"), a name with an apostrophe or "&".
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’&\-]*(?:[.,][0-9]+)*%?")

_stemmers = threading.local()  # Snowball stemmers keep state while they work: one per thread


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    # A pure function of a lowercased word, so cached: the pure-Python stemmer costs ~50 µs a word.
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _stemmers.english = snowballstemmer.stemmer("english")
    return stemmer.stemWord(word[:-2] if word.endswith("'s") else word.strip("'"))


def stem(word: str) -> str:
    """The English (Snowball) stem of ``word``, lowercased; a possessive "'s" dropped."""
    return _stem(word.lower().replace("’", "'"))


def terms(text: str, drop: frozenset[str] = frozenset()) -> set[str]:
    """The stems of ``text``'s content words (not stop words, nor the lowercased words in ``drop``)."""
    return {_content_stem(w) for w in WORD.findall(text) if w.lower() not in drop} - {""}


def content_words(text: str) -> list[str]:
    """The stems of ``text``'s content words in reading order, repeats kept."""
    # One cached call per word: a search reads ~5,000 words of its best passages for this.
    return [s for s in map(_content_stem, WORD.findall(text)) if s]


# "the third column" is "column three" and "column 3". Not "one", "first" or "second": as
# often a pronoun, an adverb or a unit of time as a number.
_NUMBERS = {
    word: str(n)
    for n, words in enumerate(
        (
            "",
            "",
            "two",
            "three third",
            "four fourth",
            "five fifth",
            "six sixth",
            "seven seventh",
            "eight eighth",
            "nine ninth",
            "ten tenth",
        ),
    )
    for word in words.split()
}


@functools.lru_cache(maxsize=1 << 17)
def _content_stem(word: str) -> str:
    """``word``'s stem ("3" for "three" and "third"), or "" for a stop word."""
    lower = word.lower()
    if lower in _NUMBERS:
        return _NUMBERS[lower]
    return "" if lower in STOP_WORDS else _stem(lower.replace("’", "'"))


# A sentence ends at . ! ? (plus closing quotes/brackets) before whitespace and a capital
# or digit ("e.g. this" does not end one), or at a blank line. Group 1 is the gap.
_SENTENCE_END = re.compile(r"""[.!?]["'”’)\]]*(\s+)(?=["'“‘(\[]?[A-Z0-9])|(\n\s*\n)""")
# Words whose period does not end a sentence: "(eg. 20 to 30 times)", "Fig. 3", "No. 5".
# Not "Inc.", "Ltd." or "Co.": they end sentences as often as they go on ("... Uber
# Technologies, Inc. Date: ...").
ABBREVIATIONS = frozenset(
    "e.g eg i.e ie etc vs cf fig figs no nos vol approx ca mr mrs ms dr prof st al resp ref".split()
)
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")


def sentence_spans(
    text: str, start: int = 0, end: int | None = None, *, abbreviations: bool = True
) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences in ``text[start:end]``, whitespace trimmed.

    ``abbreviations``: a period after "e.g.", "Fig." or an initial does not end a sentence.
    Chunking passes False: its boundaries were chosen (and its quality measured) without it,
    and a chunk boundary after an abbreviation costs nothing an answer does."""
    end = len(text) if end is None else end
    spans = []
    pos = start
    for m in _SENTENCE_END.finditer(text, start, end):
        gap = 1 if m.group(1) is not None else 2
        if abbreviations and gap == 1 and text[m.start()] == "." and _abbreviated(text, m.start(), pos):
            continue
        spans.append((pos, m.start(gap)))
        pos = m.end(gap)
    spans.append((pos, end))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def _abbreviated(text: str, dot: int, floor: int) -> bool:
    """Whether the period at ``dot`` ends an abbreviation or an initial ("J. Smith"), not a sentence."""
    word = _WORD_BEFORE.search(text, max(floor, dot - 12), dot)
    if word is None:
        return False
    name = word.group(1).rstrip(".")
    return name.lower() in ABBREVIATIONS or (len(name) == 1 and name.isupper())


def zipf(word: str) -> float:
    """How common ``word`` is in English, in whichever of its forms is commonest ("stops" as
    "stop"), on the Zipf scale: log10 of its uses per billion words (wordfreq's lists: "make"
    6.1, "network" 5.0, "encrypt" 2.8); 0 for a word English does not know (a typo, an
    identifier, another language's word)."""
    lower = word.lower()
    return max(_zipf(form) for form in _forms(lower))


def _forms(word: str) -> set[str]:
    # The word and what it may be inflected from: a rarer inflection ("survives" 3.6) of a
    # common word ("survive" 4.5) is the common word. A wrong guess can only make a word
    # look commoner than it is.
    forms = {word}
    if word.endswith("ies"):
        forms.add(word[:-3] + "y")
    elif word.endswith("es"):
        forms |= {word[:-2], word[:-1]}
    elif word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
    if word.endswith("ed"):
        forms |= {word[:-2], word[:-1]}
    if word.endswith("ing"):
        forms |= {word[:-3], word[:-3] + "e"}
    if word.endswith("est"):  # "longest" is "long", "largest" "large", "biggest" "big"
        forms |= {word[:-3], word[:-2], word[:-4]}
    return {word} | {form for form in forms if len(form) > 2}


@functools.lru_cache(maxsize=1 << 14)
def _zipf(word: str) -> float:
    from wordfreq import zipf_frequency  # its lists load on first use (~0.1 s)

    return float(zipf_frequency(word, "en"))
