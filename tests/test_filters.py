"""The filter language: what it accepts becomes a Milvus expression written by ragtide;
what could hurt Milvus (arithmetic, functions, other fields, runaway patterns) is refused
with a message naming what is wrong and where, before any work."""

from __future__ import annotations

import pytest

from ragtide import ConfigError, Filter
from ragtide.filters import MAX_CHARS, MAX_COMPARISONS, MAX_WILDCARDS, expression, narrowed


@pytest.mark.parametrize(
    "text, milvus",
    [
        ('metadata["type"] == "pdf"', 'metadata["type"] == "pdf"'),
        ("source like '/home/me/papers/%'", 'source like "/home/me/papers/%"'),
        ("page >= 40 AND chunk_index < 3", "page >= 40 and chunk_index < 3"),
        ("not (page == 1 || page == 2)", "not ((page == 1 or page == 2))"),
        ('doc_id not in ["a", "b"]', 'doc_id not in ["a", "b"]'),
        (
            'metadata["year"] > 2020.5 and metadata["final"] == true',
            'metadata["year"] > 2020.5 and metadata["final"] == true',
        ),
        ("source == 'it\\'s \"q\"'", 'source == "it\'s \\"q\\""'),
        ('source == "a\\\\b"', 'source == "a\\\\b"'),
    ],
)
def test_accepted_filters_are_rewritten_for_milvus(text, milvus):
    assert Filter.parse(text).expression == milvus


@pytest.mark.parametrize(
    "text, says",
    [
        ("chunk_index / 0 == 1", "unexpected '/' at character 13"),  # killed Milvus Lite (SIGFPE)
        ("chunk_index % 0 == 1", "unexpected '%'"),
        ('text like "' + "%a" * 400 + '"', "unknown field 'text'"),  # stalled Milvus for minutes
        ('source like "' + "%a" * (MAX_WILDCARDS + 1) + '"', f"at most {MAX_WILDCARDS} '%'"),
        (" or ".join(["page == 1"] * (MAX_COMPARISONS + 1)), f"more than {MAX_COMPARISONS} comparisons"),
        ("page == 1 or " * 300 + "page == 1", f"at most {MAX_CHARS:,} characters"),
        ("(" * 20 + "page == 1" + ")" * 20, "nested deeper than"),
        ("not " * 20 + "page == 1", "nested deeper than"),
        ("bad(((", "unknown field 'bad'"),
        ('array_contains(metadata["t"], 1)', "unknown field 'array_contains'"),
        ('page == "x"', "page holds whole numbers"),
        ("source > 3", "source holds strings"),
        ("page ==", "a value expected, the filter ended"),
        ("metadata == 1", 'metadata needs a key: metadata["key"]'),
        ('metadata["a\\"b"] == 1', "a metadata key is"),
        ('source == "abc', "unexpected '\"'"),
        ("page == 1 page == 2", "unexpected 'page'"),
        ("page in []", "an empty list"),
        ("page == 99999999999999999999999", "out of range"),
        ("page like 'x'", "like matches strings"),
    ],
)
def test_hostile_or_malformed_filters_are_refused_by_name(text, says):
    with pytest.raises(ConfigError) as refused:
        Filter.parse(text)
    message = str(refused.value)
    assert message.startswith("filter: ") and says in message, message
    assert len(message) < 300


def test_a_raw_filter_is_passed_on_and_nothing_is_empty():
    assert expression(Filter.raw("array_contains(metadata['t'], 1)")) == "array_contains(metadata['t'], 1)"
    assert expression(None) == expression("  ") == ""
    assert expression("page > 1") == "page > 1"


def test_a_filter_narrowed_to_some_sources_keeps_its_own_terms():
    assert narrowed("", "source", ["a.txt"]) == 'source in ["a.txt"]'
    assert narrowed("page >= 2 or page < 0", "source", ['we"ird.md', "b"]) == (
        '(page >= 2 or page < 0) and source in ["we\\"ird.md", "b"]'
    )
