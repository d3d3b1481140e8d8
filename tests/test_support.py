"""Groundedness: each answer says how much of it the passages it cites support."""

from __future__ import annotations

import asyncio

from ragtide.documents import Source
from ragtide.query.support import check

PASSAGES = [
    Source("a", "The night ferry leaves from Harwich at ten. It reaches Hook of Holland at dawn.", "ferry.txt", 1.0),
    Source("b", "The museum opens at nine on weekdays.", "museum.txt", 0.9),
]


def test_supported_sentences_and_flagged_citations():
    text = "The night ferry leaves from Harwich at ten [1]. The museum is free on Sundays [2]."
    support = asyncio.run(check(text, PASSAGES))
    assert support.score == 0.5 and support.flagged == (2,)


def test_a_citation_of_a_passage_that_does_not_exist_is_flagged():
    support = asyncio.run(check("The ferry leaves from Harwich at ten [7].", PASSAGES))
    assert support.score == 0.0 and support.flagged == (7,)


def test_meaning_rescues_a_paraphrase(embedder):
    text = "The ferry to Holland departs at ten in the evening from Harwich [1]."
    words_only = asyncio.run(check(text, PASSAGES)).score
    with_meaning = asyncio.run(check(text, PASSAGES, embedder)).score
    assert with_meaning is not None and words_only is not None and with_meaning >= words_only


def test_sentences_share_the_citation_that_follows_them():
    text = "The night ferry leaves from Harwich at ten. It reaches Hook of Holland at dawn [1]."
    assert asyncio.run(check(text, PASSAGES)).score == 1.0
