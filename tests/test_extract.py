"""The offline answer: it quotes what answers, cites it, and keeps footnotes apart from citations."""

from __future__ import annotations

import asyncio

import pytest

from ragtide.documents import Source
from ragtide.query.citations import without_footnotes
from ragtide.query.extract import answer_kinds, candidates, extractive_answer


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


def test_table_rows_are_quoted_with_their_column_years():
    passage = "Key metrics\n(In millions) 2020 2021\nTrips 5,025 6,368\nMonthly Active Platform Consumers 93 118"
    rows = [c.text for c in candidates([_source(passage)])]
    assert "Trips (in millions): 2020: 5,025; 2021: 6,368" in rows


def test_the_sentence_naming_the_answer_beats_sentences_about_the_topic(embedder):
    passage = (
        "Viaweb's stock was worth a lot on paper. We worried about Viaweb's stock for years. "
        "In the summer of 1998 Yahoo bought Viaweb. [8] Afterwards I left to paint."
    )
    answer = asyncio.run(extractive_answer("Which company bought Viaweb and when?", [_source(passage)], embedder))
    assert "Yahoo" in answer and "1998" in answer and "[1]" in answer
    assert "[8]" not in answer  # the essay's footnote marker is not a citation


def test_footnote_markers_cannot_pass_for_citations():
    assert without_footnotes("It was 1998. [8] Then [12] more.") == "It was 1998. [^8] Then [^12] more."
