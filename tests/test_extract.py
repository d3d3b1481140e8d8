"""The offline answer: it quotes what answers, cites it, and keeps footnotes apart from citations."""

from __future__ import annotations

import asyncio

import pytest

from ragtide.documents import Source
from ragtide.query.citations import without_footnotes
from ragtide.query.extract import abstain_threshold, answer_kinds, candidates, extract


def _source(text: str, n: int = 0) -> Source:
    return Source(id=f"s{n}", text=text, source=f"doc{n}.txt", score=1.0 - n / 10)


@pytest.mark.parametrize(
    "question, kinds",
    [
        ("How many employees did Uber have?", {"number"}),
        ("What percentage of bookings were paid by card?", {"number"}),
        ("When did the author's mother die?", {"date"}),
        ("Which company bought Viaweb and when?", {"name", "date"}),
        ("What was Hacker News originally called?", {"name"}),
        ("Why did the author stop painting?", set()),
    ],
)
def test_answer_kinds(question, kinds):
    assert answer_kinds(question) == kinds


def test_table_rows_are_units_of_their_own():
    passage = (
        "Key metrics for the year.\nTrips (in millions): 2020: 5,025; 2021: 6,368\n"
        "Region: EMEA; Revenue: 4.2\nTrips grew in every region."
    )
    rows = [c.text for c in candidates([_source(passage)]) if c.table]
    assert rows == ["Trips (in millions): 2020: 5,025; 2021: 6,368", "Region: EMEA; Revenue: 4.2"]


def test_the_sentence_naming_the_answer_beats_sentences_about_the_topic(embedder):
    passage = (
        "Viaweb's stock was worth a lot on paper. We worried about Viaweb's stock for years. "
        "In the summer of 1998 Yahoo bought Viaweb. [8] Afterwards I left to paint."
    )
    answer = asyncio.run(extract("Which company bought Viaweb and when?", [_source(passage)], embedder)).text
    assert "Yahoo" in answer and "1998" in answer and "[1]" in answer
    assert "[8]" not in answer  # the essay's footnote marker is not a citation


def test_footnote_markers_cannot_pass_for_citations():
    assert without_footnotes("It was 1998. [8] Then [12] more.") == "It was 1998. [^8] Then [^12] more."


MAN_PAGE = """OPTIONS
       -x, --extract, --get
              Extract files from an archive.  Arguments are optional.  When given,
              they specify names of the archive members to be extracted.

       -z, --gzip, --gunzip, --ungzip
              Filter the archive through gzip(1).

       %j     day of year (001..366)
"""


def test_option_entries_and_definitions_are_answer_units():
    units = [c.text for c in candidates([_source(MAN_PAGE)])]
    assert "-x, --extract, --get: Extract files from an archive. Arguments are optional." in units
    assert "-z, --gzip, --gunzip, --ungzip: Filter the archive through gzip(1)." in units
    assert "%j: day of year (001..366)" in units
    assert "OPTIONS" not in " ".join(units)  # a heading is not an answer


def test_sentences_do_not_end_at_abbreviations():
    text = "Your program will run much slower (eg. 20 to 30 times). See Fig. 3 and No. 5 for the figures."
    assert [c.text for c in candidates([_source(text)])] == [
        "Your program will run much slower (eg. 20 to 30 times).",
        "See Fig. 3 and No. 5 for the figures.",
    ]


def test_quotes_come_with_their_offsets_in_the_passage(embedder):
    passage = MAN_PAGE
    found = asyncio.run(extract("Which tar option extracts files from an archive?", [_source(passage)], embedder))
    assert "--extract" in found.text and found.quotes
    quote = found.quotes[0]
    assert (
        passage[quote.start : quote.end].startswith("-x, --extract")
        and "Extract files" in passage[quote.start : quote.end]
    )


@pytest.mark.model  # the threshold is the real model's
def test_a_question_the_passages_do_not_answer_is_not_found(embedder):
    threshold = abstain_threshold(embedder.name, -1.0)
    assert threshold > 0  # the default model has a measured threshold
    found = asyncio.run(
        extract("What is the capital of France?", [_source(MAN_PAGE)], embedder, abstain_below=threshold)
    )
    assert found.text == "Not found in your documents." and not found.found and not found.quotes
