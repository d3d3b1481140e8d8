"""The offline answer: it quotes what answers, cites it, and keeps footnotes apart from citations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ragtide.documents import Source
from ragtide.query.citations import without_footnotes
from ragtide.query.extract import (
    Abstention,
    Extraction,
    abstain_threshold,
    answer_kinds,
    candidates,
    extract,
    locate,
    named,
    subject,
    word_scores,
)

REALDOCS = Path(__file__).parent / "data" / "realdocs"


def _source(text: str, n: int = 0, name: str = "") -> Source:
    """The ``n``-th passage found (its score falls with ``n``), of document ``name``."""
    return Source(id=f"s{n}", text=text, source=name or f"doc{n}.txt", score=1.0 - n / 10)


def _units(passage: str) -> list[str]:
    """The texts of ``passage``'s answer candidates, in reading order."""
    return [c.text for c in candidates([_source(passage)])]


def _best_by_words(question: str, passage: str) -> str:
    """The candidate of ``passage`` that its words alone rank first for ``question``."""
    found = candidates([_source(passage)])
    return found[int(word_scores(question, found).argmax())].text


@pytest.mark.parametrize(
    "question, kinds",
    [
        ("How many employees did Uber have?", {"number"}),
        ("What percentage of bookings were paid by card?", {"number"}),
        ("When did the author's mother die?", {"date"}),
        ("Which company bought Viaweb and when?", {"name", "date"}),
        ("Which colour scheme does mom assume when NEWCOLOR is given none?", {"name"}),  # a condition
        ("What is the minimum Python version PyYAML supports?", {"number"}),
        ("What version control system does it use?", set()),
        ("Which port does the Node.js debugger listen on?", {"number"}),
        ("What increment does seq use when none is given?", {"default"}),
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
    units = _units(MAN_PAGE)
    assert "-x, --extract, --get: Extract files from an archive. Arguments are optional." in units
    assert "-z, --gzip, --gunzip, --ungzip: Filter the archive through gzip(1)." in units
    assert "%j: day of year (001..366)" in units
    assert "OPTIONS" not in " ".join(units)  # a heading is not an answer


def test_a_sentence_introducing_a_list_is_completed_with_its_items():
    readme = (
        "GdkPixbuf\n=========\n\n"
        "GdkPixbuf can load image data encoded in different formats, such as:\n\n - PNG\n - JPEG\n - GIF\n\n"
        "To build it you will need:\n\n - Meson\n - A C99-compliant compiler and toolchain\n\n"
        "Building\n\nRun meson.\n"
    )
    units = _units(readme)
    # Short items ("- PNG") are no units by themselves, nor in capitals a heading; the list is
    # what the sentence says. A long item is a unit of its own too.
    assert units[0] == "GdkPixbuf can load image data encoded in different formats, such as: PNG, JPEG, GIF"
    assert "To build it you will need: Meson, A C99-compliant compiler and toolchain" in units
    assert "A C99-compliant compiler and toolchain" in units
    assert not any("=" in unit for unit in units)  # an underlined title is a heading
    assert candidates([_source(readme)])[0].heading == "GdkPixbuf"


def test_sentences_do_not_end_at_abbreviations():
    text = "Your program will run much slower (eg. 20 to 30 times). Fig. 3 and No. 5 give the figures."
    assert _units(text) == [
        "Your program will run much slower (eg. 20 to 30 times).",
        "Fig. 3 and No. 5 give the figures.",
    ]


def test_a_short_sentence_leaning_on_the_one_before_stays_with_it():
    text = 'If "binary-targets", then the rules must run under root. This is the default. Others differ a lot.'
    assert _units(text) == [
        'If "binary-targets", then the rules must run under root. This is the default.',
        "Others differ a lot.",
    ]
    # Only onto the sentence just before it in its own paragraph; a chain stays one unit.
    assert _units("The old value stays in the record.\n\nYes. This is it.") == ["The old value stays in the record."]
    assert _units("The value is binary-targets for old ones. This is it. That is all.") == [
        "The value is binary-targets for old ones. This is it. That is all."
    ]


def test_a_pointer_elsewhere_is_not_an_answer():
    text = "See section PROCESS STATE CODES for the different values. A process in state Z is a zombie."
    assert _units(text) == ["A process in state Z is a zombie."]


def test_a_sentence_introducing_a_command_carries_it():
    readme = (
        "To verify the authenticity of the compressed tarball, use this command\n\n"
        "``` bash\n$ gpg --verify polkit.tar.gz.sign polkit.tar.gz\n$ gpg: Good signature\n```\n\n"
        "Run the tests with:\n\n    $ meson test -C build\n\nThe tests take a minute.\n"
    )
    units = _units(readme)
    assert units == [
        "To verify the authenticity of the compressed tarball, use this command: "
        "gpg --verify polkit.tar.gz.sign polkit.tar.gz",
        "Run the tests with: meson test -C build",
        "The tests take a minute.",
    ]
    start, end = locate(readme, units[0])  # the sentence is highlighted; the command lies in its block
    assert readme[start:end] == "To verify the authenticity of the compressed tarball, use this command"


def test_a_command_under_a_heading_of_its_own_is_a_unit():
    readme = (
        "Fedora & RPM friends\n\n```\nyum install libcbor-devel\n```\n\n"
        "## Homebrew\n\n```sh\n$ brew install libcbor\n```\n\n"
        "Usage example\n\n```\n#include <cbor.h>\n```\n"  # code, but not a command
    )
    units = _units(readme)
    assert units == ["Fedora & RPM friends: yum install libcbor-devel", "Homebrew: brew install libcbor"]
    start, end = locate(readme, units[0])
    assert readme[start:end] == "Fedora & RPM friends\n\n```\nyum install libcbor-devel"


def test_api_definitions_list_items_and_introductions():
    texinfo = (
        "Data type: ffi_type ¶\n\nThe ffi_type has the following members:\n\n"
        "Function: ffi_status ffi_get_struct_offsets (ffi_abi abi, ffi_type *struct_type) ¶\n\n"
        "Compute the offset of each element of the given structure type.\nabi is the ABI to use.\n\n"
        "To build it you need the following tools:\n\n* [Make](https://www.gnu.org/software/make/)\n"
        "* [Automake](https://www.gnu.org/software/automake/) (use 1.11.3 or later)\n"
    )
    assert _units(texinfo) == [
        # "... has the following members:" introduces what follows: not an answer by itself
        "ffi_get_struct_offsets: Compute the offset of each element of the given structure type. "
        "abi is the ABI to use.",
        # ... unless completed with its list
        "To build it you need the following tools: [Make](https://www.gnu.org/software/make/), "
        "[Automake](https://www.gnu.org/software/automake/) (use 1.11.3 or later)",
        "[Automake](https://www.gnu.org/software/automake/) (use 1.11.3 or later)",  # a short item, not a heading
    ]
    # A statement before its list says its fact: it is an answer, its list with it.
    governance = "The TSC has final authority over this project, including:\n\n* Technical direction\n"
    assert _units(governance) == ["The TSC has final authority over this project, including: Technical direction"]


def test_units_know_the_heading_they_lie_under():
    readme = (
        "# GLib\n\nGLib is a core library.\n\n## Supported versions\n\nOnly the most recent series are supported.\n\n"
        "OPTIONS\n       -k, --kibi\n              Display the amount of memory in kibibytes.\n"
    )
    assert [(c.heading, c.text) for c in candidates([_source(readme)])] == [
        ("GLib", "GLib is a core library."),
        ("Supported versions", "Only the most recent series are supported."),
        ("OPTIONS", "-k, --kibi: Display the amount of memory in kibibytes."),
    ]


def test_a_usage_line_is_not_a_sentence():
    page = "SYNOPSIS\n       cp [OPTION]... -t DIRECTORY SOURCE...\n\nRevenue was $17.5 billion.\n"
    assert _units(page) == ["Revenue was $17.5 billion."]


def test_a_passage_opening_with_an_option_keeps_it_apart_from_the_text_below():
    # A passage starts at its first word: the option lost its indentation when the document was cut.
    passage = (
        "--palette=PALETTE\n                 the colors to use when --color is active\n"
        "         -v, --version\n                 output version information and exit\n"
        "         Exit status is 0 if inputs are the same, 1 if different, 2 if trouble.\n"
    )
    assert _units(passage) == [
        "--palette=PALETTE: the colors to use when --color is active",
        "-v, --version: output version information and exit",
        "Exit status is 0 if inputs are the same, 1 if different, 2 if trouble.",
    ]


@pytest.mark.parametrize(
    ("question", "defined"),
    [
        ("What is polkit used for?", "polkit"),
        ("What does asn1Parser do?", "asn1Parser"),
        ("What is FFI?", "FFI"),
        ("What is the default value of Rules-Requires-Root?", ""),  # a value, not a definition
        ("What does gzip -9 or --best do?", ""),
        ("Which option keeps the files?", ""),
    ],
)
def test_what_a_question_asks_to_be_defined(question, defined):
    assert subject(question) == defined


def test_the_sentence_saying_what_the_subject_is_answers_what_it_is():
    readme = (
        "polkit uses the meson build system for configuration with ninja as its backend.\n\n"
        "polkit is a toolkit for defining and handling authorizations.\n"
    )
    assert _best_by_words("What is polkit?", readme) == "polkit is a toolkit for defining and handling authorizations."


def test_a_sentence_holds_its_documents_name():
    # Every line of diff's manual is about diff: the sentence that answers need not name it
    # to beat one that does and answers nothing.
    manual = (
        "diff returns its output on stdout.\n\nExit status is 0 if inputs are the same, 1 if different, 2 if trouble.\n"
    )
    question = "What exit status does diff return?"
    sources = [_source(manual, 0, "/usr/share/man/diff.1.pdf")]
    found = candidates(sources)
    assert [c.text[:11] for c in found] == ["diff return", "Exit status"]
    by_own_words = word_scores(question, found)
    assert by_own_words[1] <= by_own_words[0]
    with_its_name = word_scores(question, found, sources)
    assert with_its_name[1] > with_its_name[0]


@pytest.mark.parametrize(
    ("term", "question", "score"),
    [
        ("Z", "What does the process state code Z mean in ps output?", 1.0),
        ("-# --fast --best", "What does gzip -9 or --best do?", 1.0),
        ("-i, --ignore-case", "How do I make grep ignore case distinctions?", 1.0),
        ("--no-ignore-case", "How do I make grep ignore case distinctions?", 2 / 3),
        ("-delete", "Which find action deletes the files it finds?", 1.0),
        ("-mtime n", "Which find test matches files modified n days ago?", 0.0),
        ("-k, --keep", "Which gzip option keeps the input files?", 0.5),  # a plain word: half
        ("-H, --header <header/@file>", "How do I send an extra header with curl?", 1.0),
        ("-n, --lines=[+]NUM", "How do I make tail keep printing lines as a file grows?", 0.5),
        ("-0, --null", "How can xargs read input items terminated by a null character?", 1.0),
        ("--sparse=WHEN", "What does cp do with sparse files by default?", 0.0),  # asks what cp does
        ("", "Any question?", 0.0),
    ],
)
def test_a_definition_the_question_names_or_describes(term, question, score):
    assert named(term, question) == pytest.approx(score)


def test_which_option_asks_for_an_option_which_file_for_code_and_how_do_i_for_a_command():
    assert answer_kinds("Which gzip option keeps the input files?") == {"option"}
    assert answer_kinds("Which configure parameter sets systemd's default NTP servers?") == {"option"}
    assert answer_kinds("Which file can pip read credentials from?") == {"code"}
    assert answer_kinds("How can xargs read input items terminated by a null character?") == {"code"}
    assert answer_kinds("How do I send an extra header with curl?") == {"code"}
    assert answer_kinds("Which company bought Viaweb?") == {"name"}
    assert answer_kinds("Which version of Automake does building GnuTLS need?") == {"number"}


def test_a_sentence_introducing_python_is_completed_with_it():
    slide = "If you don't trust the input YAML stream, you should use:\n>>> yaml.safe_load(stream)\n"
    found = candidates([_source(slide)])
    assert [c.text for c in found] == [
        "If you don't trust the input YAML stream, you should use: yaml.safe_load(stream)"
    ]


def test_a_list_of_words_and_their_meanings_gives_a_unit_each():
    # dd's manual page, as `man -P cat` renders it: descriptions aligned in one column.
    manual = (
        "       Each CONV symbol may be:\n\n"
        "       ascii  from EBCDIC to ASCII\n\n"
        "       ebcdic from ASCII to EBCDIC\n\n"
        "       unblock\n"
        "              replace trailing spaces in cbs-size records with newline\n\n"
        "       sync   pad  every  input  block  with  NULs to ibs-size; when used with\n"
        "              block or unblock, pad with spaces rather than NULs\n\n"
        "       excl   fail if the output file already exists\n"
    )
    units = {c.term: c.text for c in candidates([_source(manual)]) if c.term}
    assert units["ascii"] == "ascii: from EBCDIC to ASCII"
    assert units["unblock"] == "unblock: replace trailing spaces in cbs-size records with newline"
    assert (
        units["sync"]
        == "sync: pad every input block with NULs to ibs-size; when used with block or unblock, pad with spaces rather than NULs"
    )
    assert units["excl"] == "excl: fail if the output file already exists"
    # A justified paragraph whose gaps happen to line up is prose, not a list.
    prose = (
        "       and -O must appear before the first path name, if  at  all.   A  double\n"
        "       dash  -- could theoretically be used to signal that any remaining argu-\n"
        "       ments are not options, but this does not really work  due  to  the  way\n"
        "       find  determines  the end of the following path arguments: it does that\n"
        "       by reading until an expression argument comes.\n"
    )
    assert not any(c.term for c in candidates([_source(prose)]))
    # Nor is a justified line opening with a short word ("to  track"), nor a line of prose
    # opening with an option ("--reference, change the owner ...").
    prose = (
        "       which means that even if a tail'ed file is renamed, tail will  continue\n"
        "       to  track its end.  This default behavior is not desirable.\n\n"
        "       Change the owner and/or group of each FILE to OWNER and/or GROUP.  With\n"
        "       --reference, change the owner and group of each FILE to those of RFILE.\n\n"
        "       -c, --changes\n              like verbose but report only when a change is made\n"
    )
    assert [c.term for c in candidates([_source(prose)]) if c.term] == ["-c, --changes"]
    # A list of short codes after the line introducing it is one, "a" included.
    codes = "       STYLE is one of:\n         a  number all lines\n         t  number only nonempty lines\n"
    assert [c.text for c in candidates([_source(codes)]) if c.term] == [
        "a: number all lines",
        "t: number only nonempty lines",
    ]


def test_a_word_naming_a_document_means_that_document_not_another_ones_option():
    touch = "OPTIONS\n       -r, --reference=FILE\n              use this file's times instead of current time\n"
    tar = "OPTIONS\n       -m, --touch\n              Don't extract file modified time.\n"
    sources = [
        _source(touch, 0, "touch.1.txt"),
        _source(tar, 1, "tar.1.txt"),
    ]
    found = candidates(sources)
    assert [c.term for c in found] == ["-r, --reference=FILE", "-m, --touch"]
    reference, other = word_scores("How can touch copy the times of another file?", found, sources)
    # "touch" names touch's manual: tar's "--touch" neither holds the word nor is the option asked for.
    assert reference > other


def test_an_option_answers_which_option_not_any_code():
    passage = (
        "By default, systemd-timesyncd uses the Google Public NTP servers `time[1-4].google.com`.\n\n"
        "Use `-Dntp-servers=` to direct systemd-timesyncd to different fallback NTP servers.\n"
    )
    best = _best_by_words("Which configure parameter sets systemd's default NTP servers?", passage)
    assert best.startswith("Use `-Dntp-servers=`")


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
        extract("What is the capital of France?", [_source(MAN_PAGE)], embedder, abstain=Abstention(threshold))
    )
    assert found.text == "Not found in your documents." and not found.found and not found.quotes


def test_the_threshold_does_not_apply_to_a_question_naming_a_document_found(embedder):
    # Off every document's topic is what the threshold tells; a question naming the manual
    # found is on its topic, however far its words lie from the answer's.
    manual = _source(MAN_PAGE, 0, "tar.1.txt")
    beyond = Abstention(below=10.0)
    assert asyncio.run(extract("What does tar do with archives?", [manual], embedder, abstain=beyond)).found
    assert not asyncio.run(extract("What does it do with archives?", [manual], embedder, abstain=beyond)).found


@pytest.mark.model  # the threshold is the real model's
def test_an_option_no_entry_of_the_manual_comes_near_is_not_found(embedder):
    manual = [_source((REALDOCS / "cmp.1.txt").read_text(), 0, str(REALDOCS / "cmp.1.txt"))]
    rule = Abstention.setting(embedder.name, -1.0)
    assert rule.options > 0  # the default model has a measured threshold

    def answer(question: str, sources: list[Source] = manual) -> Extraction:
        return asyncio.run(extract(question, sources, embedder, abstain=rule))

    found = answer("Which cmp option ignores differences in white space?")
    assert not found.found
    assert found.text == "Not found in your documents. No option of cmp.1.txt found does what the question asks."
    assert "--print-bytes" in answer("How do I make cmp print the differing bytes?").text
    assert "--silent" in answer("How do I make cmp silent so that only the exit status tells the result?").text
    # A question asking no option, or a manual of which fewer entries were found, is not weighed so.
    assert answer("Does cmp ignore white space?").found
    two = [
        Source(
            id="s0", text="-b  print differing bytes\n\n-n  compare at most LIMIT bytes", source="cmp.1.txt", score=1.0
        )
    ]
    assert answer("Which cmp option shows the lines that differ?", two).found
    assert not Abstention.setting(embedder.name, 0.0).options  # the setting 0: never abstain


def test_a_number_asked_for_that_no_quote_gives_is_not_found(embedder):
    rule = Abstention(mentions=True)

    def answer(question: str, passage: str) -> Extraction:
        return asyncio.run(extract(question, [_source(passage)], embedder, abstain=rule))

    program = "The project runs an official bug bounty program for a critical vulnerability found."
    found = answer("How much does the bug bounty program pay for a critical vulnerability?", program)
    assert not found.found and found.text == "Not found in your documents. No passage found gives the number asked for."
    paid = program + " It pays up to $10,000 for a critical vulnerability."
    assert "$10,000" in answer("How much does the bug bounty program pay for a critical vulnerability?", paid).text
    assert answer(
        "How many researchers take part in the bug bounty program?",
        program + " 8 researchers take part in it each year.",
    ).found
    # Asking how to do something with a number is not asking for one.
    assert answer("How do I limit how many bytes cmp compares?", "-n, --bytes=LIMIT  compare at most LIMIT bytes").found


def test_a_question_naming_what_no_passage_mentions_is_not_found(embedder):
    # Whatever the model's scores: the passages never name Docker.
    question = "Which tar option extracts files from a Docker image?"
    found = asyncio.run(extract(question, [_source(MAN_PAGE)], embedder, abstain=Abstention(mentions=True)))
    assert not found.found and found.text.startswith("Not found in your documents.") and "“Docker”" in found.text
    assert asyncio.run(extract(question, [_source(MAN_PAGE)], embedder)).found  # the setting 0: never abstain


def test_what_a_question_sets_against_what_it_asks_does_not_choose_the_answer():
    from ragtide.query.extract import contrasted

    assert contrasted("Which wc option counts characters rather than bytes?") == {"byte"}
    assert contrasted("How do I make tee append instead of overwriting the file?") == {"overwrit"}
    assert contrasted("Which directory does mktemp use when TMPDIR is not set?") == set()
    passage = (
        "Options:\n\n  -c, --bytes\n      print the byte counts\n\n  -m, --chars\n      print the character counts\n"
    )
    found = candidates([_source(passage)])
    scores = dict(
        zip((c.term for c in found), word_scores("Which wc option counts characters rather than bytes?", found))
    )
    assert scores["-m, --chars"] > scores["-c, --bytes"]


def test_what_a_passage_says_does_not_happen_is_not_what_it_offers():
    from ragtide.query.extract import negated

    assert negated("-n, --no-clobber: do not overwrite an existing file") == {"overwrit", "exist"}
    assert negated("It will not print or clear the buffer, but clears the log.") == {"print"}
    assert negated("--no-create  create nothing") == set()  # "--no-" is a name, not a negation
    passage = (
        "Options:\n\n  -i, --interactive\n      prompt before overwrite\n\n"
        "  -n, --no-clobber\n      do not overwrite an existing file\n"
    )
    found = candidates([_source(passage)])
    scores = dict(zip((c.term for c in found), word_scores("How do I make cp ask before overwriting?", found)))
    assert scores["-i, --interactive"] > scores["-n, --no-clobber"]
    # Unless the question asks for what does not happen, with "not" or otherwise.
    for question in ("How do I make cp not overwrite a file?", "How do I stop cp from overwriting a file?"):
        asked = dict(zip((c.term for c in found), word_scores(question, found)))
        assert asked["-n, --no-clobber"] > asked["-i, --interactive"], question


def test_what_a_question_says_is_not_so_is_not_what_it_asks_for():
    from ragtide.query.extract import unwanted

    question = "Which uniq option prints only the lines that are not repeated?"
    assert unwanted(question) == {"repeat"}
    assert unwanted("Which directory does mktemp use when TMPDIR is not set?") == set()  # a condition
    passage = (
        "Options:\n\n  -d, --repeated\n      only print duplicate lines, one for each group\n\n"
        "  -u, --unique\n      only print unique lines\n"
    )
    found = candidates([_source(passage)])
    scores = dict(zip((c.term for c in found), word_scores(question, found)))
    assert scores["-u, --unique"] >= scores["-d, --repeated"]  # "repeated" no longer counts for -d
    # An option named by what it does not do is named by the question's "not".
    assert named("--no-dereference", "Which option does not dereference symbolic links?") == 1.0
    assert named("--repeated", question) == 0.0


def test_a_question_about_a_default_is_answered_by_the_default_stated():
    assert "default" in answer_kinds("What width does fold use by default?")
    passage = (
        "NAME\n       fold - wrap each input line to fit in specified width\n\n"
        "DESCRIPTION\n       -s, --spaces\n              break at spaces\n\n"
        "       -w, --width=WIDTH\n              use WIDTH columns instead of 80\n"
    )
    found = candidates([_source(passage)])
    scores = word_scores("What width does fold use by default?", found)
    assert "instead of 80" in max(zip(scores, (c.text for c in found)))[1]


def test_a_manual_pointing_to_its_full_documentation_is_not_an_answer():
    page = (
        "-p     diagnose errors writing to non pipes\n\n"
        "Full documentation <https://www.gnu.org/software/coreutils/tee> or available locally via: "
        "info '(coreutils) tee invocation'\n"
    )
    assert all("Full documentation" not in c.text for c in candidates([_source(page)]))


def test_an_ordinal_is_the_number_it_counts():
    from ragtide.text import terms

    assert "3" in terms("What does the third column contain?") & terms("column three contains lines common to both")
    assert terms("the second column") == {"second", "column"}  # "second" is as often a unit of time


def test_a_myst_note_or_version_change_is_prose_its_code_blocks_are_not():
    page = (
        "## Build artifacts\n\n"
        "```{versionchanged} 21.3\n"
        "The project being installed is no longer copied to a temporary directory before invoking the build system.\n"
        "```\n\n"
        "````{note}\nThis works with non-setuptools build-backends as well.\n\n```python\nimport setuptools\n```\n````\n\n"
        "```{pip-cli}\n$ pip install --upgrade sampleproject\n```\n"
    )
    texts = [c.text for c in candidates([_source(page)])]
    assert (
        "Changed in version 21.3: The project being installed is no longer copied to a temporary directory "
        "before invoking the build system." in texts
    )
    assert "This works with non-setuptools build-backends as well." in texts
    assert not any("import setuptools" in t or "```" in t or "{pip-cli}" in t for t in texts)


def test_a_pointer_elsewhere_is_no_answer():
    texts = [c.text for c in candidates([_source("Please see https://github.com/PJK/libcbor for more info.\n")])]
    assert texts == []


def test_where_a_question_asks_for_tells_one_option_from_the_next():
    passage = (
        "       -i, --line-increment=NUMBER\n              line number increment at each line\n\n"
        "       -s, --number-separator=STRING\n              add STRING after (possible) line number\n\n"
        "       -v, --starting-line-number=NUMBER\n              first line number for each section\n"
    )
    found = candidates([_source(passage)])
    scores = dict(
        zip(
            (c.term for c in found), word_scores("Which nl option sets the text printed after each line number?", found)
        )
    )
    assert scores["-s, --number-separator=STRING"] > scores["-i, --line-increment=NUMBER"]


def test_what_a_question_asks_of_a_programs_options_must_be_in_its_manual(embedder):
    head = (
        "OPTIONS\n       -n, --lines=[-]NUM\n              print the first NUM lines instead of the first 10\n\n"
        "       -q, --quiet, --silent\n              never print headers giving file names\n"
    )
    ps = "OPTIONS\n       --sort spec\n              Specify sorting order, in reverse or not.\n"
    sources = [_source(head, 0, "head.1.txt"), _source(ps, 1, "ps.1.txt")]
    question = "Which head option prints the lines in reverse order?"
    found = asyncio.run(extract(question, sources, embedder, abstain=Abstention(mentions=True)))
    assert not found.found
    assert "passages of head.1.txt" in found.text and "“reverse”" in found.text
    # The passages of ps mention it; asked of ps's options, the question is answered.
    asked = asyncio.run(
        extract("Which ps option sorts in reverse order?", sources, embedder, abstain=Abstention(mentions=True))
    )
    assert asked.found and "--sort" in asked.text


@pytest.mark.model  # the threshold is the real model's
def test_a_word_no_passage_holds_may_be_said_there_otherwise(embedder):
    rm = (
        "NAME\n       rm - remove files or directories\n\n"
        "OPTIONS\n       -i     prompt before every removal\n\n"
        "       -r, -R, --recursive\n              remove directories and their contents recursively\n"
    )
    sources = [_source(rm, 0, "rm.1.txt")]
    rule = Abstention.setting(embedder.name, -1.0)
    assert rule.wording > 0  # the default model has a measured threshold

    def answer(question: str, abstain: Abstention = rule) -> Extraction:
        return asyncio.run(extract(question, sources, embedder, abstain=abstain))

    # rm's manual says "remove" and "directories", the question "delete" and "folder".
    said = answer("How do I delete a folder and everything inside it with rm?")
    assert said.found and "--recursive" in said.text
    assert not answer("How do I delete a folder with rm?", Abstention(mentions=True)).found  # words alone
    # A word nothing there comes near is not said otherwise; a name never is.
    assert not answer("Which rm option encrypts the files before removing them?").found
    assert not answer("How do I remove a Docker image with rm?").found


@pytest.mark.model  # the wording threshold is the real model's
def test_a_quote_holding_nothing_the_question_asks_about_is_no_answer(embedder):
    # mktemp's manual says "file" and "new" somewhere; no entry sets permissions, and the
    # nearest ("-p DIR, --tmpdir[=DIR]: ...") holds nothing the question asks about.
    manual = [_source((REALDOCS / "mktemp.1.txt").read_text(), 0, str(REALDOCS / "mktemp.1.txt"))]
    rule = Abstention.setting(embedder.name, -1.0)
    assert rule.held > 0  # the default model has a measured wording threshold

    def answer(question: str, abstain: Abstention = rule) -> Extraction:
        return asyncio.run(extract(question, manual, embedder, abstain=abstain))

    found = answer("Which mktemp option sets the permissions of the new file?")
    assert not found.found and found.text.startswith("Not found in your documents. The closest passage found says")
    assert "“permissions”" in found.text
    assert answer("Which mktemp option sets the permissions of the new file?", Abstention(mentions=True)).found
    assert "--directory" in answer("Which mktemp option creates a directory instead of a file?").text
    assert "--dry-run" in answer("Which mktemp option only prints a name without creating anything?").text
    # A question asking about little but the program is not weighed so.
    assert answer("What is mktemp used for?").found
    # The kind of answer asked for ("how many trips") and names count when the quote holds them.
    trips = [_source("Trips (in millions): 2020: 5,025; 2021: 6,368", 0, "uber_2021.pdf")]
    found = asyncio.run(
        extract("How many Trips were completed on Uber's platform in 2021?", trips, embedder, abstain=rule)
    )
    assert found.found and "6,368" in found.text


def test_a_manuals_name_line_says_what_the_program_does(embedder):
    tac = (
        "NAME\n       tac - concatenate and print files in reverse\n\n"
        "SYNOPSIS\n       tac [OPTION]... [FILE]...\n\n"
        "DESCRIPTION\n       -s, --separator=STRING\n              use STRING as the separator instead of newline\n"
    )
    other = "A subset of the collaborators forms the Technical Steering Committee (TSC), which does the work."
    sources = [_source(tac, 0, "tac.1.txt"), _source(other, 1, "GOVERNANCE.md")]
    found = asyncio.run(extract("What does tac do?", sources, embedder))
    assert found.text == "tac - concatenate and print files in reverse [1]"
    # It answers what the program is, nothing else.
    asked = asyncio.run(extract("Which tac option sets the separator?", sources, embedder))
    assert "--separator" in asked.text


def test_a_short_english_word_opening_a_paragraph_is_no_code():
    page = (
        "       Do  not use the MD5 algorithm for security related purposes.  Instead,\n"
        "       use an SHA-2 algorithm.\n"
    )
    assert _units(page) == [
        "Do not use the MD5 algorithm for security related purposes.",
        "Instead, use an SHA-2 algorithm.",
    ]


def test_a_faqs_question_heads_its_answer_and_a_colon_its_command():
    faq = (
        "3. How to get rid off annoying beeps for ambiguous completions?\n\n"
        "   Put in /etc/inputrc (or in your ~/.inputrc):\n\n"
        "\tset show-all-if-ambiguous on\n\n"
        "   Other people prefer:\n\n"
        "\tset bell-style none\n"
    )
    found = candidates([_source(faq)])
    assert [c.text for c in found][0] == "Put in /etc/inputrc (or in your ~/.inputrc): set show-all-if-ambiguous on"
    assert not any(c.text.endswith("?") for c in found)
    assert found[0].heading == "How to get rid off annoying beeps for ambiguous completions?"
    shells = "So a package's postinst should run:\n\n/usr/sbin/add-shell /path/to/shell\n\nIn the postrm, it calls remove-shell.\n"
    assert _units(shells)[0] == "So a package's postinst should run: /usr/sbin/add-shell /path/to/shell"


def test_the_insides_of_an_address_are_no_number():
    from ragtide.query.extract import _gives_number

    url = 'It prints "https://www.google.com/search?q=what%20is%20jq%3F" for the input.'
    assert not _gives_number("What port does jq listen on?", url)
    assert _gives_number("What port does jq listen on?", "It listens on port 8080.")


def test_a_bullet_before_an_option_and_a_lone_short_word_are_no_codes():
    jq = (
        "       ○   --sort-keys / -S:\n\n"
        "           Output the fields of each object with the keys in sorted order.\n\n"
        "       ○   --raw-output / -r:\n\n"
        "           jq  usually  writes strings as JSON strings, with quotes; with this\n"
        "           option they are written directly to standard output.\n"
    )
    units = {c.term: c.text for c in candidates([_source(jq)]) if c.term}
    assert list(units) == ["--sort-keys / -S", "--raw-output / -r"]
    assert units["--raw-output / -r"].startswith("--raw-output / -r: jq usually writes strings")
    # A list of codes is one, its first after the line introducing it, the rest below.
    escapes = (
        "     The supported escapes are:\n\n"
        "     ~.      Disconnect.\n\n"
        "     ~C      Open command line.  Currently this allows the addition of port\n"
        "             forwardings using the -L, -R and -D options.\n\n"
        "     ~R      Request rekeying of the connection.\n"
    )
    assert [c.term for c in candidates([_source(escapes)]) if c.term] == ["~.", "~C", "~R"]
    # A passage cut from the list opens with a code: it is one too.
    assert [c.term for c in candidates([_source(escapes[escapes.index("~C") :])]) if c.term] == ["~C", "~R"]


def test_an_option_abbreviating_the_questions_words_is_named():
    assert named("-r, --regex", "Which tac option uses a regular expression as the separator?") == 1.0
    assert named("--dir=DIR", "Which option sets the directory it works in?") == 1.0
    assert named("-a, --all", "Which option allows it?") == 0.0  # "all" is a word, not an abbreviation


@pytest.mark.model  # the threshold is the real model's
def test_a_verb_of_the_question_names_no_manual_to_weigh_options_of(embedder):
    install = "".join(
        f"       -{c}, --{name}\n              {what}\n\n"
        for c, name, what in (
            ("b", "backup", "make a backup of each existing destination file"),
            ("d", "directory", "treat all arguments as directory names"),
            ("m", "mode=MODE", "set permission mode (as in chmod), instead of rwxr-xr-x"),
            ("s", "strip", "strip symbol tables"),
        )
    )
    sources = [_source(install, 0, "install.1.txt")]
    rule = Abstention.setting(embedder.name, -1.0)
    found = asyncio.run(
        extract("How do I install the packages listed in a requirements file?", sources, embedder, abstain=rule)
    )
    assert "No option of install.1.txt" not in found.text
    asked = asyncio.run(
        extract("Which install option sends the files to a remote server?", sources, embedder, abstain=rule)
    )
    assert not asked.found


def test_a_name_line_answers_which_program_does_what_is_asked(embedder):
    mkfifo = (
        "NAME\n       mkfifo - make FIFOs (named pipes)\n\n"
        "DESCRIPTION\n       -m, --mode=MODE\n              set file permission bits to MODE\n"
    )
    sources = [_source(mkfifo, 0, "mkfifo.1.txt")]
    found = asyncio.run(extract("How can I make a FIFO pipe with a name?", sources, embedder))
    assert found.text == "mkfifo - make FIFOs (named pipes) [1]"
    # Not how the program named does something: its NAME line says what it is, no more.
    named = asyncio.run(extract("How do I set the permission bits of a FIFO with mkfifo?", sources, embedder))
    assert named.text.startswith("-m, --mode=MODE")


def test_a_quote_from_a_manual_is_led_by_its_name_line_when_no_program_is_named(embedder):
    # The manual's NAME line and its description lie in passages of their own.
    sources = [
        _source("NAME\n       mkfifo - make FIFOs (named pipes)", 0, "mkfifo.1.txt"),
        _source("DESCRIPTION\n       Create named pipes (FIFOs) with the given NAMEs.\n", 1, "mkfifo.1.txt"),
    ]
    found = asyncio.run(extract("How do I create named pipes with given names?", sources, embedder))
    assert found.text == "mkfifo - make FIFOs (named pipes) [1]. Create named pipes (FIFOs) with the given NAMEs [2]."
    assert [q.source for q in found.quotes] == [0, 1]
    # A question naming the program knows which it is: the quote alone.
    named = asyncio.run(extract("How do I create named pipes with mkfifo?", sources, embedder))
    assert named.text == "Create named pipes (FIFOs) with the given NAMEs [2]."
