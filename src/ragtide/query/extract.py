"""The offline answer: the sentence (or table row) of the retrieved passages that answers.

A sentence *about* the topic is not an answer; the one that *holds the fact* is. Each
candidate -- a prose sentence, a list item, or a table row with its column header -- is
scored on three things, then the best one or two are quoted, cited:

- meaning: cosine similarity to the question, with the model that retrieved the passages;
- the question's terms: the share of the question's content words (stemmed, weighted by
  how rare they are among the candidates) that the candidate contains;
- the kind of answer asked for: "how many / how much / what share" wants a number, "when"
  a date, "who / which company / what was it called" a name; a candidate holding such a
  token that the question does not already hold is preferred.

Footnote markers in the source text ("... the summer of 1998. [8]") are dropped from
quotes, so they cannot be mistaken for citations.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..documents import Source
from ..tables import is_row
from ..text import STOP_WORDS, WORD, sentence_spans, stem, terms
from .citations import cite, strip_footnotes

if TYPE_CHECKING:
    from ..embedding import Embedder

# Weights of the three signals, and how close a second candidate must come to be quoted too.
# Chosen on tests/data/devset.json and held against the 12 original questions (docs/benchmarks.md).
TERMS_WEIGHT = 0.5
KIND_WEIGHT = 0.2
RANK_WEIGHT = 0.04
SECOND_WITHIN = 0.06
# Candidates whose meaning is weighed (embedded), the best by their words; see docs/benchmarks.md.
SHORTLIST = 8

_NUMBER = re.compile(r"^\$?\(?\d[\d,]*(?:\.\d+)?\)?%?$")
_YEAR = re.compile(r"^(1[6-9]|20)\d\d$")
_MONTH = frozenset("january february march april may june july august september october november december".split())
# Code and markup that is not prose: a shell prompt, a quoted block, a Markdown table or heading.
_CODE = re.compile(r"^\s*(?:[|#>]|\$ )")
# A term that a description follows: an option ("-x, --extract", "--best"), a format sequence ("%j").
_TERM = re.compile(r"^(?:--?[\w#?][^\s]*|%\S+|\+\S+)(?:[ ,|]+(?:--?[\w#][^\s]*|<[^>]+>|\[[^\]]+\]|[\w=.-]+,?))*$")
# A term and its description on one line, after a gap of two spaces or more.
# (A short code such as ps's state "Z" counts as a term too.)
_DEFINITION = re.compile(r"^\s*((?:--?[\w#][^\s]*|%\S+)(?:,? --?[\w-]+(?:=\S+)?)*|\S{1,2})\s{2,}(\S.{8,})$")
# A heading inside a passage: a short line in capitals ("PROCESS STATE CODES", "OPTIONS").
_CAPS_HEADING = re.compile(r"^(?=.*[A-Z]{2})[^a-z]{2,60}$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")


@dataclass(frozen=True)
class Candidate:
    """A quotable piece of a passage."""

    source: int  # index into the sources
    order: int  # position in the passage, for reading order
    text: str
    table: bool = False


def candidates(sources: list[Source]) -> list[Candidate]:
    """The sentences, list items, option entries and table rows of the passages, in reading order."""
    out: list[Candidate] = []
    for i, source in enumerate(sources):
        prose: list[str] = []
        order = 0
        lines = source.text.split("\n")
        fenced = False
        k = 0
        while k < len(lines):
            line = lines[k]
            stripped = line.strip()
            k += 1
            if stripped.startswith(("```", "~~~")):
                order = _flush(i, prose, order, out)
                fenced = not fenced
                continue
            if fenced:
                continue
            if not stripped:
                order = _flush(i, prose, order, out)
                continue
            if is_row(stripped):
                order = _flush(i, prose, order, out)
                out.append(Candidate(i, order, stripped, table=True))
                order += 1
                continue
            if _CODE.match(line):
                order = _flush(i, prose, order, out)
                continue
            entry = _entry(lines, k - 1)
            if entry is not None:
                order = _flush(i, prose, order, out)
                units, k = entry
                for unit in units:
                    out.append(Candidate(i, order, unit))
                    order += 1
                continue
            if _CAPS_HEADING.match(stripped) and len(stripped.split()) <= 6:
                order = _flush(i, prose, order, out)
                continue
            item = _LIST_ITEM.match(line)
            if item:
                order = _flush(i, prose, order, out)
                line = line[item.end() :]
            prose.append(line)
        _flush(i, prose, order, out)
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _entry(lines: list[str], k: int) -> tuple[list[str], int] | None:
    """A definition at line ``k`` -- a term (an option such as "-x, --extract", a format
    sequence such as "%j") with its description, on the same line after a wide gap or on the
    more indented lines below -- as units "TERM: first sentence(s)", then "TERM: sentence"
    for each later sentence (each says what it is about); and the line after it."""
    line = lines[k]
    same_line = _DEFINITION.match(line)
    if same_line:
        term, description, stop = same_line.group(1), [same_line.group(2)], k + 1
        column = same_line.start(2)  # the description wraps onto lines indented to it
        while stop < len(lines) and _indent(lines[stop]) >= column and not _DEFINITION.match(lines[stop]):
            description.append(lines[stop])
            stop += 1
    else:
        term = line.strip()
        if not _TERM.match(term) or len(term) > 80:
            return None
        stop = k + 1
        description = []
        while stop < len(lines) and (not lines[stop].strip() or _indent(lines[stop]) > _indent(line)):
            if not lines[stop].strip() and description:
                break
            description.append(lines[stop])
            stop += 1
        if not description:
            return None
    text = " ".join(" ".join(description).split())
    spans = sentence_spans(text) or [(0, len(text))]
    head = 2 if len(spans) > 1 and spans[0][1] - spans[0][0] < 60 else 1  # "Extract files." says little alone
    units = [f"{term}: {strip_footnotes(text[spans[0][0] : spans[head - 1][1]])}"]
    units += [f"{term}: {strip_footnotes(text[s:e])}" for s, e in spans[head:] if _quotable(text[s:e])]
    return units, stop


def _flush(source: int, prose: list[str], order: int, out: list[Candidate]) -> int:
    """Add the quotable sentences of the prose lines gathered so far; return the next order."""
    while len(prose) > 1 and _is_title(prose[0]) and prose[1].lstrip()[:1].isupper():
        del prose[0]  # a heading above the text ("Human Capital at Uber"), not the start of its first sentence
    text = " ".join(" ".join(prose).split())
    lone_line = len(prose) == 1
    prose.clear()
    if lone_line and len(text.split()) <= 8 and not text.endswith((".", "!", "?", ":")):
        return order  # a heading, a title, a line of page furniture: not an answer
    for s, e in sentence_spans(text):
        sentence = strip_footnotes(text[s:e])
        if _quotable(sentence):
            out.append(Candidate(source, order, sentence))
            order += 1
    return order


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
    # Headings, page furniture and fragments are not answers.
    return len(sentence.split()) >= 4 and len(sentence) <= 800 and bool(re.search(r"[a-z]", sentence))


# -- scoring -----------------------------------------------------------------------------


_NUMBER_WORDS = (
    r"revenues?|income|loss|losses|costs?|bookings|ebitda|budget|price|number|count|amount|margin|rate|"
    r"expenses?|cash|earnings|profit|sales|funding|valuation|debt|headcount|employees|share|percentage"
)


def answer_kinds(question: str) -> set[str]:
    """What kinds of token would answer ``question``: number, date, name; empty if any will do."""
    q = " " + " ".join(question.lower().split()) + " "
    kinds = set()
    if re.search(
        r"\b(how many|how much|how large|how big|how long|how old|what (?:percentage|percent|share|proportion|"
        r"fraction|number|amount))\b",
        q,
    ) or re.search(rf"\bwhat (?:was|were|is|are)\b[^?]{{0,40}}\b(?:{_NUMBER_WORDS})\b", q):
        kinds.add("number")
    if re.search(r"\b(when|what year|which year|what date)\b", q):
        kinds.add("date")
    if re.search(
        r"\b(who|whom|whose|which|where|called|named|what is the name|what (?:\w+ )?(?:company|language|computer|"
        r"country|city|name|school|firm|product))\b",
        q,
    ):
        kinds.add("name")
    return kinds


# In "which company bought Viaweb", "company" names the kind of answer, not a word the answer holds.
_KIND_NOUN = re.compile(
    r"\b(?:which|what)\s+(?:\w+\s+)?(company|companies|firm|language|computer|country|countries|city|"
    r"cities|school|schools|year|person|product|name)\b",
    re.I,
)


def _kinds_held(candidate: str, kinds: set[str], question_words: set[str]) -> int:
    """How many of ``kinds`` ``candidate`` holds a token of, not counting the question's own words."""
    words = WORD.findall(candidate)
    novel = [(k, w) for k, w in enumerate(words) if w.lower() not in question_words and stem(w) not in question_words]
    held = 0
    if "number" in kinds and any(
        any(ch.isdigit() for ch in w) and not _YEAR.match(w) and not (k and words[k - 1].lower() in _MONTH)
        for k, w in novel
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


def word_scores(question: str, found: list[Candidate]) -> np.ndarray:
    """Each candidate's score from its words alone: question terms covered + the kind of
    answer asked for + a little for the passage's rank. Cheap; meaning is added after."""
    wanted = terms(question, frozenset(m.lower() for m in _KIND_NOUN.findall(question)))
    question_words = {w.lower() for w in WORD.findall(question)} | wanted
    candidate_terms = [terms(c.text) for c in found]
    n = len(found)
    df = {t: sum(t in ts for ts in candidate_terms) for t in wanted}
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in wanted}
    total = sum(idf.values()) or 1.0
    kinds = answer_kinds(question)
    out = np.empty(n, dtype=np.float32)
    for k, (candidate, ts) in enumerate(zip(found, candidate_terms)):
        coverage = sum(idf[t] for t in wanted & ts) / total
        fits = _kinds_held(candidate.text, kinds, question_words) / len(kinds) if kinds else 0.0
        rank = 1.0 / (1 + candidate.source)
        out[k] = TERMS_WEIGHT * coverage + KIND_WEIGHT * fits + RANK_WEIGHT * rank
    return out


NOT_FOUND = "Not found in your documents."
# Below a model's threshold, the best candidate's score (meaning + words, as ranked above)
# says it does not answer the question: the answer says so. Scores are on each model's own
# cosine scale, so a threshold holds for the model it was chosen with; others abstain only
# when the user sets one (Settings.abstain_below). all-MiniLM-L6-v2's was chosen on the
# tuning half of tests/data/realset.json, the first dev set and the demo's question: their
# off-topic questions score 0.26-0.40; the lowest answerable one, a paraphrase sharing few
# words with its answer (the demo's), 0.67; 0.53 lies midway. (On-topic questions the
# documents cannot answer score 0.78 and up, with the answerable: the score cannot tell them
# apart, so they are answered with the nearest passage, cited.)
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


async def extract(
    question: str, sources: list[Source], embedder: Embedder, *, max_quotes: int = 2, abstain_below: float = 0.0
) -> Extraction:
    """Quote the sentence or table row of the passages that answers ``question``, cited;
    or, when none scores ``abstain_below`` or more, say it was not found.

    The best candidate is quoted; a second only if it scores nearly as well (within
    ``SECOND_WITHIN``), so the answer stays a sentence or two.
    """
    if not sources:
        return Extraction(NOT_FOUND, found=False)
    found = candidates(sources)
    if not found:
        # Only fragments (headings, code): show the best passage itself, cited.
        return Extraction(cite(" ".join(strip_footnotes(sources[0].text).split())[:600], 1))
    words = word_scores(question, found)
    # Embedding every sentence of five passages costs more than the whole retrieval
    # (about 0.6 s on two cores); the words already rule most out.
    shortlist = [int(i) for i in np.argsort(-words, kind="stable")[:SHORTLIST]]
    found = [found[i] for i in shortlist]
    q = await embedder.embed_query(question)
    vectors = await embedder.embed([c.text for c in found])
    scores = vectors @ q + words[shortlist]
    order = np.argsort(-scores, kind="stable")
    best = float(scores[order[0]])
    if best < abstain_below:
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
    chosen.sort(key=lambda c: (c.source, c.order))
    parts: list[str] = []
    quotes: list[Quote] = []
    for k, candidate in enumerate(chosen):
        text = candidate.text if not candidate.table else candidate.text.rstrip(".") + "."
        last_of_source = k + 1 == len(chosen) or chosen[k + 1].source != candidate.source
        parts.append(cite(text, candidate.source + 1) if last_of_source else text)
        span = locate(sources[candidate.source].text, candidate.text)
        if span is not None:
            quotes.append(Quote(candidate.source, *span))
    return Extraction(" ".join(parts), tuple(quotes), best)


def locate(passage: str, quote: str) -> tuple[int, int] | None:
    """Where ``quote`` lies in ``passage``: its words in order, whatever lies between them
    (line breaks, the ": " an option entry adds, a footnote marker dropped)."""
    words = re.findall(r"\w+", quote)
    if not words:
        return None
    pattern = r"\W+(?:\d{1,3}\W+)?".join(map(re.escape, words))
    match = re.search(pattern, passage)
    if match is None:
        return None
    start, end = match.start(), match.end()
    lead = quote.lstrip()[: len(quote.lstrip()) - len(quote.lstrip().lstrip("-%$+#(["))]  # "-x", "%j", "$4.2"
    if lead and passage[max(0, start - len(lead)) : start] == lead:
        start -= len(lead)
    if end < len(passage) and passage[end] in ".!?" and quote.rstrip().endswith(passage[end]):
        end += 1
    return start, end
