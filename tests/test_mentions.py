"""What a question is about, whether passages mention it, and a search that looks further for it."""

from __future__ import annotations

import asyncio

import pytest

from ragtide.documents import Source
from ragtide.query.extract import Abstention, extract
from ragtide.query.mentions import (
    asked_about,
    document_words,
    names_document,
    naming_words,
    uncommon_words,
    unmentioned,
    without_names,
)
from ragtide.query.retrieve import covering, joined, named_documents, named_documents_first

DD = "dd.1.txt"
MANUAL = (
    "--version\n    output version information and exit\n\n"
    "of=FILE\n    write to FILE instead of stdout\n\n"
    "conv=excl\n    fail if the output file already exists\n"
)


def _source(text: str, source: str = DD, n: int = 0) -> Source:
    return Source(id=f"s{n}", text=text, source=source, score=1.0 - n / 10)


def test_the_uncommon_words_of_a_question_say_what_it_is_about():
    assert "encrypts" in uncommon_words("Which dd option encrypts the output file?")
    # How questions are put: plain words, which passages often say otherwise ("prompt").
    assert uncommon_words("How do I make it ask before it goes on?") == []
    # The kind of answer asked for need not be in the answer ("Which command ..."); the
    # question's verb is not part of it.
    assert "command" not in uncommon_words("Which command updates the certificates?")
    assert uncommon_words("Which utility encrypts it?") == ["encrypts"]
    # A word English does not know (a typo, an identifier) says nothing of the documents.
    assert uncommon_words("How do I chnage the defualt?") == []
    assert uncommon_words("What does bzip2's --best option do on x86?") == []  # not "bzip"
    # Each word of a compound; a possessive is its word.
    assert uncommon_words("How long must an issue-tracker proposal wait?") == ["tracker", "proposal"]
    assert uncommon_words("Where is the thermostat's switch?") == ["thermostat"]
    # Nor an adverb, nor a verb saying only that something happens.
    assert uncommon_words("Does shred securely erase a file?") == ["shred", "erase"]
    assert uncommon_words("Which csplit option keeps the files when an error occurs?") == []
    # Nor an example the question gives: the user's own.
    assert uncommon_words("How do I strip a suffix like .txt with basename?") == ["strip", "suffix"]


def test_what_a_question_asks_about_is_weighed_by_how_rare_its_words_are():
    asked = asked_about("Which comm option ignores case when comparing lines?", [_source("", "comm.1.txt")])
    # Not the program named (as its file names it), nor "option", nor "which": how the question is put.
    assert set(asked.words) == {"ignores", "case", "comparing", "lines"} and not asked.unsaid
    assert asked.words["ignores"] > asked.words["lines"] > 0
    assert "libffi" not in asked_about("Which libffi function ...?", [_source("", "libffi8-The-Basics.html")]).words
    # Names, and the kind of answer asked for, an answer may leave unsaid ("we sold it to Yahoo").
    assert asked_about("How did Viaweb earn money?", []).unsaid == {"viaweb"}
    assert asked_about("How many Trips were completed on Uber's platform?", []).unsaid == {"trips", "uber"}
    assert asked_about("What is polkit used for?", [_source("", "polkit-README.md")]).words == {
        "used": pytest.approx(0.69)
    }
    # A word English does not know says much: a file's name ("inputrc").
    assert asked_about("How do I edit inputrc?", []).words["inputrc"] == pytest.approx(4.5)


def test_names_and_uncommon_words_no_passage_mentions():
    passages = [_source(MANUAL)]
    assert unmentioned("Which dd option installs packages from a Docker image?", passages) == [
        "Docker",  # names first
        "installs",
        "packages",
    ]
    assert unmentioned("What is the capital of France?", passages) == ["France"]
    assert unmentioned("Which dd option encrypts the output file?", passages) == ["encrypts"]
    assert unmentioned("Which option writes to a file instead of stdout?", passages) == []
    # Stems: "encryption" mentions what "encrypts" asks about.
    assert unmentioned("Which option encrypts it?", [_source("Encryption is on by default.")]) == []
    # A document's name is what each of its passages is about.
    assert unmentioned("What does gnutls do?", [_source("It implements TLS.", "gnutls-README.md")]) == []
    assert unmentioned("What does GNU tar's --gzip do?", [_source("GNU tar saves files through gzip.")]) == []
    # A name as written with or without what separates its parts: "SHA-256" is "sha256".
    cksum = [_source("-a, --algorithm=TYPE: compute the sum with sha256 or sha512")]
    assert unmentioned("How do I compute a SHA-256 sum?", cksum) == []
    assert unmentioned("How do I compute a SHA-3 sum?", cksum) == ["SHA-3"]


def test_an_answer_about_what_no_passage_mentions_says_so_and_names_it(embedder):
    question = "Which dd option encrypts the output file?"
    found = asyncio.run(extract(question, [_source(MANUAL)], embedder, abstain=Abstention(mentions=True)))
    assert (
        not found.found and found.text == "Not found in your documents. None of the passages found mentions “encrypts”."
    )
    assert asyncio.run(extract(question, [_source(MANUAL)], embedder)).found  # the setting 0: never abstain


def test_a_search_looks_further_down_its_own_documents_for_an_uncommon_word():
    ranked = [
        _source("-p  preserve the mode", "ssh.1.txt", 0),
        _source("-q  quiet mode", "ssh.1.txt", 1),
        _source("The agent selects keys for you.", "ssh-agent.1.txt", 2),
        _source("-i identity_file  Selects a file from which the identity is read.", "ssh.1.txt", 3),
    ]
    question = "Which ssh option selects the private key file?"
    # ssh-agent's passage uses the word, but it is another document: ssh's own passage comes in.
    assert [s.id for s in covering(question, ranked, 2)] == ["s0", "s3"]
    # What the best hold already, or what nothing lower holds, leaves them as they are.
    assert [s.id for s in covering("Which ssh option preserves the mode?", ranked, 2)] == ["s0", "s1"]
    assert [s.id for s in covering("Which ssh option encrypts?", ranked, 2)] == ["s0", "s1"]
    assert [s.id for s in covering(question, ranked, 4)] == ["s0", "s1", "s2", "s3"]


def test_a_word_is_as_common_as_its_commonest_form():
    # "stops" is rarer than "stop", and means it: a question saying "stops" is put plainly.
    assert uncommon_words("Which option stops the copy?") == []
    assert uncommon_words("Which copy survives?") == []
    assert uncommon_words("Which option encrypts the copy?") == ["encrypts"]


def test_a_stem_mentions_the_longer_or_shorter_stem_of_its_word():
    # The stemmer reads "occurs" as "occur" but "occurrences" as "occurr".
    passages = [_source("-c, --count\n    prefix lines by the number of occurrences\n", "uniq.1.txt")]
    assert unmentioned("How do I count how often each line occurs?", passages) == []
    assert unmentioned("Which option configures it?", [_source("See the config file.")]) == []
    # A stem is not held by another that shares its first letters only.
    assert unmentioned("Which option encrypts it?", [_source("It can encode the data.")]) == ["encrypts"]


def test_a_search_puts_the_documents_a_question_names_first():
    ranked = [
        _source("--no-tail  Show all stored output lines, even in follow mode.", "journalctl.1.txt", 0),
        _source("-f, --follow  output appended data as the file grows", "tail.1.txt", 1),
        _source("-n, --lines=NUM  output the last NUM lines", "tail.1.txt", 2),
    ]
    question = "How do I make tail keep printing lines as a file grows?"
    first = named_documents_first(question, ranked, 0.3)
    assert [s.id for s in first] == ["s1", "s2", "s0"]
    assert first[0].score == ranked[1].score + 0.3 and first[2].score == ranked[0].score
    assert named_documents_first(question, ranked, 0.0) == ranked  # the setting 0: off
    assert named_documents_first("How do I follow a file?", ranked, 0.3) == ranked  # no document named


def test_a_question_names_a_document_by_a_word_of_its_file_name_as_it_stands():
    assert {"comm"} <= naming_words("What does the third column of comm's output contain?")
    # After an article, a word is the plain word ("the third column", "the column totals"),
    # unless a word like "command" follows; a plural is the plain word too.
    assert "column" not in naming_words("What does the third column of comm's output contain?")
    assert "column" not in naming_words("How do I make free show a line with the column totals?")
    assert "tail" in naming_words("How do I use the tail command?")
    assert "columns" in naming_words("How do I print columns?")
    assert not names_document(naming_words("How do I print columns?"), "column.1.pdf")
    # Stop words name nothing: "How" is not zlib_how.html, "the" not The-Basics.html.
    assert document_words("/usr/share/doc/zlib1g-dev/zlib_how.html") == {"zlib"}
    assert not names_document(naming_words("How do I use the library?"), "libffi8-The-Basics.html")
    assert names_document(naming_words("How do I install a local project with pip?"), "python3-pip-auth.md")


def test_a_word_after_a_prefix_is_mentioned():
    licence = [_source("JSON-C is free software: redistribute it under the MIT License.", "json-c-README.html")]
    assert unmentioned("Under which license is JSON-C distributed?", licence) == []


def test_a_dotted_name_names_the_document_whose_file_name_writes_it_whole():
    question = "Who has final authority over the Node.js project?"
    assert names_document(naming_words(question), "nodejs-GOVERNANCE.epub")
    assert without_names(question, ["nodejs-GOVERNANCE.epub"]) == "Who has final authority over the project"
    assert without_names(question, ["tar.1.txt"]) == "Who has final authority over the Node js project"


def test_a_search_within_named_documents_ranks_their_passages_on_the_wider_searchs_scale():
    pool = [
        _source("ps: the comm column", "ps.1.txt", 0),  # score 1.0
        _source("comm - compare two sorted files", "comm.1.txt", 3),  # 0.7
        _source("SEE ALSO comm(1)", "comm.1.txt", 4),  # 0.6
    ]
    question = "How do I make comm print a summary of counts?"
    assert named_documents(question, pool, 3) == ["comm.1.txt"]
    within = [
        Source(id="t", text="--total  output a summary", source="comm.1.txt", score=1.0),
        Source(id="s3", text=pool[1].text, source="comm.1.txt", score=0.5),
    ]
    joined_ = joined(pool, within)
    # comm's passages in the narrower search's order, its best keeping the document's best
    # score in the wider one (0.7); one it did not find falls below those it found.
    assert [(s.id, round(s.score, 6)) for s in joined_] == [("s0", 1.0), ("t", 0.7), ("s3", 0.35), ("s4", 0.35)]
    assert joined(pool, []) == pool


def test_identifiers_and_hyphenated_words_are_mentioned_as_written():
    manual = [_source("-w, --wrap=COLS  wrap encoded lines (base64 alphabet of RFC 4648)", "base64.1.pdf")]
    assert unmentioned("How do I encode data as base32 with base64?", manual) == ["base32"]
    # Whatever separates an identifier's parts: "python3" is in "Python 3".
    assert unmentioned("Does it need python3?", [_source("It needs Python 3.11 or later.")]) == []
    guide = [_source("you only need to perform a re-installation if you change the metadata", "pip.md")]
    assert unmentioned("When do I have to reinstall a project?", guide) == []


def test_a_name_is_a_name_before_a_word_saying_what_it_names():
    assert names_document(naming_words("What does the ssh client forward?"), "ssh.1.txt")
    assert names_document(naming_words("How does ca-certificates pick authorities?"), "ca-certificates-README.Debian")


def test_a_proper_name_names_the_documents_whose_names_hold_it():
    # "ssh" (Zipf 3.1) is a proper name: openssh's README is ssh's; "date" (5.2) is a plain
    # word, and "update-notes" is not named by it.
    assert names_document(naming_words("What is ssh's default on Debian?"), "openssh-client-README.Debian")
    assert names_document(naming_words("Which library does Pango use?"), "libpango-README.docx", proper=True)
    assert not names_document(naming_words("Which date is it?"), "update-notes.md")
    assert names_document(naming_words("How do I make date print UTC?"), "date.1.txt")
    assert not names_document(naming_words("How do I make tail follow?"), "tail.1.txt", proper=True)


def test_within_a_document_its_name_is_not_searched_for():
    assert without_names("Under which license is libcbor released?", ["libcbor0.8-README.docx"]) == (
        "Under which license is released"
    )
    assert without_names("comm?", ["comm.1.txt"]) == "comm?"  # nothing else to search for


def test_an_answer_to_a_question_naming_a_program_comes_from_its_document(embedder):
    passages = [
        _source("-s, --separator separators\n    Specify the possible input item delimiters", "column.1.pdf", 0),
        _source("--output-delimiter=STR\n    separate columns with STR\n", "comm.1.txt", 1),
    ]
    answer = asyncio.run(extract("How can I change the separator between comm's columns?", passages, embedder))
    assert "--output-delimiter" in answer.text and "--separator" not in answer.text


def test_words_asking_for_a_default_or_a_superlative_are_not_what_a_question_is_about():
    # paste's manual says "separated by TABs", not "by default"; wc's says "maximum display width".
    assert uncommon_words("What does paste put between the lines by default?") == []
    assert uncommon_words("How do I print the longest line?") == []
    assert uncommon_words("How does it define a word?") == []
