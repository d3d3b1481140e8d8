import shutil
import subprocess
import sys

import pytest

from conftest import ESSAY, UBER
from ragtide import LoaderError, load
from ragtide.ingest import discover


def test_text_keeps_content_and_single_page(tmp_path):
    doc = load(ESSAY)
    assert "IBM 1401" in doc.text
    assert len(doc.pages) == 1 and doc.pages[0].number is None
    assert doc.key == str(ESSAY)


def test_pdf_keeps_page_numbers():
    doc = load(UBER)
    assert len(doc.pages) == 307
    assert [p.number for p in doc.pages[:3]] == [1, 2, 3]
    headquarters = doc.text.index("corporate headquarters in the San Francisco Bay Area")
    assert doc.page_at(headquarters) == 48
    assert "\r" not in doc.text


def test_pdfs_read_at_once_in_several_threads_all_load(tmp_path):
    """pdfium is not thread-safe: ingest reads two files at a time, and two PDFs at once
    killed the process (SIGSEGV, SIGTRAP). In a process of its own, so a crash fails only this test."""
    copies = [tmp_path / f"10-k-{k}.pdf" for k in range(3)]
    for path in copies:
        shutil.copy(UBER, path)
    script = (
        "import sys; from concurrent.futures import ThreadPoolExecutor; from ragtide import load\n"
        "with ThreadPoolExecutor(2) as pool:\n"
        "    docs = list(pool.map(load, sys.argv[1:]))\n"
        "print(len({d.text for d in docs}), len(docs[0].pages))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, copies)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", str(len(load(UBER).pages))]


def test_html_keeps_only_visible_text(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Tide tables</title><style>p{color:red}</style>"
        "<script>var secret = 'script text';</script></head><body>"
        "<h1>High water</h1><p>The tide turns <b>twice</b> a day.</p>"
        "<div hidden>hidden text</div><p style='display: none'>invisible</p>"
        "<noscript>enable js</noscript><!-- a comment --><ul><li>one</li><li>two</li></ul></body></html>"
    )
    doc = load(page)
    assert "The tide turns twice a day." in doc.text
    assert "High water" in doc.text and doc.metadata["title"] == "Tide tables"
    for invisible in ("script text", "color:red", "hidden text", "invisible", "enable js", "a comment"):
        assert invisible not in doc.text
    assert "- one\n\n- two" in doc.text  # items marked as Markdown marks them


def test_html_leaves_out_what_only_navigates(tmp_path):
    page = tmp_path / "manual.html"
    page.write_text(
        "<html><body><nav><a href='/'>Home</a> <a href='/docs'>Docs</a></nav>"
        "<div class='header'><p>Next: <a href='b.html' rel='next'>Using tides</a>, "
        "Up: <a href='index.html' rel='up'>Tides</a> [<a href='i.html' rel='index'>Index</a>]</p></div>"
        "<h1>Tides</h1><ul><li><a href='#high'>High water</a><ul><li><a href='#spring'>Springs</a></li></ul></li>"
        "<li><a href='#low'>Low water</a></li></ul>"
        "<dl class='toc'><dt><a href='#high'>1. High water</a></dt><dd><dl><dt><a href='#neap'>1.1. Neaps</a></dt>"
        "</dl></dd></dl>"
        "<p>The tide turns twice a day.</p><p>Read <a href='b.html' rel='next'>the next chapter</a> for how "
        "the tides were measured at Leith.</p>"
        "<ul><li><a href='https://example.org/tables'>Tide tables</a></li><li><a href='#low'>Low water</a> "
        "comes six hours after high water.</li></ul></body></html>"
    )
    text = load(page).text
    for navigation in ("Home", "Docs", "Next:", "Using tides", "Index", "Springs", "Neaps"):
        assert navigation not in text
    assert text.startswith("Tides\n\nThe tide turns twice a day.")
    assert "Read the next chapter for how the tides were measured at Leith." in text  # a link in prose is prose
    assert "Tide tables" in text and "Low water comes six hours after high water." in text  # not a contents list


def test_html_definition_lists_keep_each_term_with_its_description(tmp_path):
    page = tmp_path / "manual.html"
    page.write_text(
        "<html><body><h1>bzip2</h1><dl class='variablelist'>"
        "<dt><span class='term'><code>-k --keep</code></span></dt><dd><p>Keep (don't delete) input files\n"
        "during compression or decompression.</p><p>A second paragraph.</p></dd>"
        "<dt><code>--example</code></dt><dd><pre>bzip2 -k\nfile</pre></dd>"
        "<dt><span class='category'>Function: </span><strong>ffi_call</strong> (ffi_cif *cif)</dt>"
        "<dd><p>This calls the function.</p></dd><dt>a term alone</dt></dl>"
        "<p>Text names \x1c, \x1d, \x1e and \x1f nothing.</p></body></html>"
    )
    text = load(page).text
    # As a reader reads the list: the term, then what it means, in one line.
    assert "\n\n-k --keep: Keep (don't delete) input files during compression or decompression.\n\n" in text
    assert "\n\nA second paragraph." in text
    # A description opening with code, or a term with a label of its own (an API entry), stays below it.
    assert "--example\n\nbzip2 -k\nfile" in text
    assert "Function: ffi_call (ffi_cif *cif)\n\nThis calls the function." in text
    assert "a term alone\n\nText names , , and nothing." in text


def test_markdown_title(tmp_path):
    md = tmp_path / "notes.md"
    md.write_text("# Release notes\n\nThe engine got faster.\n")
    doc = load(md)
    assert doc.metadata == {"type": "markdown", "title": "Release notes", "sections": 1}


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n ", "empty"),
        ("binary.txt", bytes(range(256)) * 10, "binary"),
        ("latin1.txt", "caf\u00e9 cr\u00e8me".encode("latin-1"), "not valid UTF-8"),
        ("corrupt.pdf", b"%PDF-1.4\n1 0 obj garbage garbage\n%%EOF", "corrupt"),
        ("fake.pdf", b"this is not a pdf at all", "not a PDF"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoaderError) as err:
        load(path)
    assert err.value.path == str(path)
    assert reason in str(err.value)


def test_utf8_with_bom_and_utf16(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeffhello tide".encode("utf-8"))
    (tmp_path / "wide.txt").write_bytes("hello tide".encode("utf-16"))
    assert load(tmp_path / "bom.txt").text == "hello tide"
    assert load(tmp_path / "wide.txt").text == "hello tide"


def test_discover_walks_filters_and_skips(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.txt").write_text("x")
    (tmp_path / "a" / "two.md").write_text("x")
    (tmp_path / "a" / "program.so").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(64))
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "secret.txt").write_text("x")
    (tmp_path / "b.html").write_text("x")
    found = discover([tmp_path, tmp_path / "missing"])
    assert [p.name for p in found.files] == ["one.txt", "two.md", "b.html"] or sorted(p.name for p in found.files) == [
        "b.html",
        "one.txt",
        "two.md",
    ]
    assert [p.name for p in found.skipped] == ["program.so"]
    assert found.problems == {str(tmp_path / "missing"): "no such file or directory"}
    only_md = discover([tmp_path], include=["*.md"])
    assert [p.name for p in only_md.files] == ["two.md"]
    no_a = discover([tmp_path], exclude=["a/*"])
    assert [p.name for p in no_a.files] == ["b.html"]


def test_symlink_loops_and_broken_links_are_named_and_the_rest_found(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").symlink_to("b.txt")
    (d / "b.txt").symlink_to("a.txt")
    (d / "dangling.md").symlink_to("nowhere.md")
    (d / "ok.txt").write_text("hi")
    (d / "link.txt").symlink_to("ok.txt")
    found = discover([d, d / "a.txt", tmp_path / "missing"])
    assert [p.name for p in found.files] == ["ok.txt"]  # the link to it is the same file
    assert found.problems[str(d / "a.txt")].startswith("symbolic link loop")
    assert found.problems[str(d / "b.txt")].startswith("symbolic link loop")
    assert found.problems[str(d / "dangling.md")] == "broken symbolic link (its target 'nowhere.md' does not exist)"
    assert found.problems[str(tmp_path / "missing")] == "no such file or directory"


def test_unreadable_folder_is_named(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x.txt").write_text("x")
    locked.chmod(0)
    try:
        found = discover([tmp_path])
    finally:
        locked.chmod(0o755)
    assert "cannot read folder" in found.problems[str(locked)]


def test_a_file_over_the_size_limit_is_refused_by_name(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000)
    with pytest.raises(LoaderError, match="big.txt.*too large"):
        load(big, max_bytes=1000)
    assert load(big, max_bytes=5000).text.startswith("x")


def test_documents_over_their_page_or_text_limit_are_refused_by_name(tmp_path):
    from hostile_files import pdf_bomb

    pdf = tmp_path / "many.pdf"
    pdf.write_bytes(pdf_bomb(pages=20, lines=10))
    with pytest.raises(LoaderError, match="many.pdf: 20 pages .the limit per document is 10"):
        load(pdf, max_pages=10)
    with pytest.raises(LoaderError, match="many.pdf: more than 2,000 characters"):
        load(pdf, max_chars=2000)
    assert len(load(pdf).pages) == 20
    text = tmp_path / "long.txt"
    text.write_text("word " * 1000)
    with pytest.raises(LoaderError, match="long.txt: more than 4,000 characters"):
        load(text, max_chars=4000)


def test_a_document_expanding_far_past_its_file_is_refused_as_a_bomb(tmp_path):
    from hostile_files import pdf_bomb

    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(pdf_bomb(pages=1000, lines=1000))  # ~160 KB, 50 MB of text
    with pytest.raises(LoaderError, match="bomb.pdf: its .* KB expand to more than .* refused as a decompression bomb"):
        load(bomb)
