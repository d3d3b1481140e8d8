"""Structure kept: headings become section paths on chunks and in citations, chunks do not
cross top-level sections, PDFs lose their page furniture and keep their layout, scans are
read by OCR."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdfs import scan, text_pdf
from ragtide import RAG, LoaderError, load
from ragtide.documents import Source
from ragtide.ingest.chunking import Chunker
from ragtide.ingest.formats import ocr
from ragtide.query.extract import candidates

MARKDOWN = """# Deployment guide

Read this first.

## Installation

Install the package with pip.

```sh
# a shell comment, not a heading
pip install tidewater
```

### Proxies

Behind a proxy, set HTTPS_PROXY before installing; the mirror is tide.example.

## Operation

Restart the daemon with tidectl restart.
"""


def test_markdown_headings_become_section_paths(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(MARKDOWN)
    doc = load(path)
    assert [h.title for h in doc.headings] == ["Deployment guide", "Installation", "Proxies", "Operation"]
    assert doc.metadata["title"] == "Deployment guide" and doc.metadata["sections"] == 4
    assert doc.section_at(doc.text.index("HTTPS_PROXY")) == "Installation › Proxies"
    assert doc.section_at(doc.text.index("pip install")) == "Installation"
    assert doc.section_at(doc.text.index("Read this")) == ""  # under the title only


def test_chunks_carry_their_section_and_never_cross_top_level_sections(tmp_path, embedder):
    path = tmp_path / "guide.md"
    path.write_text(MARKDOWN)
    doc = load(path)
    chunks = Chunker(embedder).split(doc)
    operation = doc.text.index("## Operation")
    assert all(not (c.start < operation < c.end) for c in chunks)
    proxies = next(c for c in chunks if "HTTPS_PROXY" in c.text)
    assert proxies.metadata["section"].startswith("Installation")
    assert next(c for c in chunks if "tidectl" in c.text).metadata["section"] == "Operation"


def test_headings_of_every_format_that_has_them(tmp_path):
    (tmp_path / "page.html").write_text(
        "<title>Tides</title><h1>Tides</h1><p>x</p><h2>Spring <em>tides</em></h2><p>The spring fact.</p>"
        "<h2>Neap tides</h2><p>The neap fact.</p>"
    )
    (tmp_path / "notes.rst").write_text(
        "=====\nNotes\n=====\n\nIntro.\n\nFirst part\n==========\n\nAlpha.\n\nDetail\n------\n\nThe rst fact.\n"
    )
    (tmp_path / "tar.1.txt").write_text(
        "TAR(1)             GNU TAR Manual             TAR(1)\n\nNAME\n       tar - an archiving utility\n\n"
        "OPTIONS\n       -x, --extract\n              Extract files from an archive.\n"
    )
    page = load(tmp_path / "page.html")
    assert page.section_at(page.text.index("The spring fact")) == "Spring tides"
    rst = load(tmp_path / "notes.rst")
    assert rst.section_at(rst.text.index("The rst fact")) == "First part › Detail"
    man = load(tmp_path / "tar.1.txt")
    assert man.section_at(man.text.index("Extract files")) == "OPTIONS" and "GNU TAR Manual" not in man.text


def test_docx_headings_and_citations_name_the_section(tmp_path):
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_heading("Guide", 0)
    document.add_heading("Installation", 1)
    document.add_paragraph("Intro to installing.")
    document.add_heading("Proxies", 2)
    document.add_paragraph("The proxy port is 3128.")
    document.add_heading("Usage", 1)
    document.add_paragraph("Run it.")
    path = tmp_path / "guide.docx"
    document.save(path)
    doc = load(path)
    assert doc.section_at(doc.text.index("3128")) == "Installation › Proxies"
    source = Source("id", "The proxy port is 3128.", "guide.docx", 1.0, metadata={"section": "Installation › Proxies"})
    assert source.cite() == "guide.docx › Installation › Proxies"
    assert Source("id", "t", "a.pdf", 1.0, page=3).cite() == "a.pdf, page 3"
    assert source.to_dict()["section"] == "Installation › Proxies" and "section" not in source.to_dict()["metadata"]


def test_the_section_comes_back_with_sources_and_in_the_listing(tmp_path, embedder, backend, collection):
    path = tmp_path / "guide.md"
    path.write_text(MARKDOWN)
    with RAG(uri=backend, collection=collection, embedder=embedder) as rag:
        rag.ingest([path])
        sources = rag.retrieve("Which mirror is used behind a proxy?", top_k=3)
        listed = rag.catalog()
    assert any(s.section.startswith("Installation") and "tide.example" in s.text for s in sources)
    assert listed[0].sections == 4 and "section" not in listed[0].to_dict()["metadata"]


def test_pdf_running_heads_page_numbers_and_hyphens_are_removed(tmp_path):
    words = "tide harbour crane ledger turbine quay buoy pier dock keel hull mast".split()
    pages = [
        [
            "ACME Corp Annual Report 2024",
            f"The {words[n]} survey is thorough and well docu-",
            "mented in the appendix.",
            *(f"The {words[(n + k) % 12]} log entry {k} reads {words[(n * k) % 12]}." for k in range(6)),
            f"Page {n} of 6",
        ]
        for n in range(1, 7)
    ]
    pages[2].insert(1, "The tidal turbine produced 4.2 GWh.")
    path = tmp_path / "report.pdf"
    path.write_bytes(text_pdf(pages))
    doc = load(path)
    assert "ACME Corp Annual Report" not in doc.text and "of 6" not in doc.text
    assert doc.text.count("documented in the appendix") == 6 and "docu-" not in doc.text
    assert doc.page_at(doc.text.index("4.2 GWh")) == 3


def test_pdf_figure_tables_become_labelled_rows(tmp_path):
    page = [
        "The following table summarizes our results (in millions):",
        "Year Ended December 31,",
        "2020 2021",
        "Revenue $ 11,139 $ 17,455",
        "Costs and expenses",
        "Cost of revenue 5,154 9,351",
        "Gross increases - prior year tax positions 16 191",
        "Revenue grew in 2021 as trips recovered.",
        "(In millions) Q1 2020 Q2 2020",
        "Freight 198 212",
    ]
    path = tmp_path / "results.pdf"
    path.write_bytes(text_pdf([page]))
    lines = load(path).text.split("\n")
    assert "Revenue (in millions): 2020: $11,139; 2021: $17,455" in lines
    assert "Cost of revenue (in millions): 2020: 5,154; 2021: 9,351" in lines  # a label line keeps the table going
    assert "Gross increases - prior year tax positions (in millions): 2020: 16; 2021: 191" in lines
    assert "Freight (in millions): Q1 2020: 198; Q2 2020: 212" in lines
    assert "Revenue grew in 2021 as trips recovered." in lines and "2020 2021" not in lines


def test_a_short_pdf_loses_the_running_head_of_every_page(tmp_path):
    # A manual page typeset on two pages: its head and foot on both, a page number apart.
    pages = [
        ["FREE(1) User Commands FREE(1)", "NAME", "free - Display amount of free memory", "procps-ng 2022-06-25 1"],
        ["FREE(1) User Commands FREE(1)", "Summary", "Second page text.", "procps-ng 2022-06-25 2"],
    ]
    path = tmp_path / "free.pdf"
    path.write_bytes(text_pdf(pages))
    doc = load(path)
    assert "User Commands" not in doc.text and "procps-ng" not in doc.text
    assert "NAME" in doc.text and "Summary" in doc.text  # on one page's edge only: the text's own
    assert doc.headings == ()  # no bookmarks: no sections guessed
    path.write_bytes(text_pdf([pages[0]]))
    assert "User Commands" in load(path).text  # one page: nothing recurs


def test_a_pdf_keeps_its_indentation_and_tab_stops():
    # A manual page typeset by groff (`man -Tpdf free`): a text layer holds no indentation,
    # yet an option's description is known only by being indented below it, or tabbed beside it.
    doc = load(Path(__file__).parent / "data" / "realdocs" / "free.1.pdf")
    lines = doc.text.split("\n")
    kibi = lines.index("         -k, --kibi")
    assert lines[kibi + 1] == "                 Display the amount of memory in kibibytes. This is the default."
    assert "         --tebi  Display the amount of memory in tebibytes." in lines
    assert "                   Gi = gibibyte" in lines  # the first line of page 2, below the running head
    assert "free displays the total amount of free and used physical and swap memory" in doc.text  # prose as it was
    units = [c.text for c in candidates([Source(id="free", text=doc.text, source="free.1.pdf", score=1.0)])]
    assert "-k, --kibi: Display the amount of memory in kibibytes. This is the default." in units
    assert "--tebi: Display the amount of memory in tebibytes." in units


needs_ocr = pytest.mark.skipif(
    not ocr.available(), reason="Tesseract is not installed (make test installs tesseract-ocr with apt-get)"
)


@needs_ocr
def test_a_scanned_pdf_is_read_by_ocr(tmp_path, embedder, backend, collection):
    path = tmp_path / "scan.pdf"
    path.write_bytes(
        scan([["Maintenance log", "The harbour crane was inspected", "on the ninth of March."], ["Second sheet"]])
    )
    doc = load(path)
    assert "harbour crane" in doc.text.lower() and doc.metadata["ocr_pages"] == 2
    assert doc.page_at(doc.text.lower().index("second sheet")) == 2
    with RAG(uri=backend, collection=collection, embedder=embedder) as rag:
        assert rag.ingest([path]).ok
        assert "crane" in rag.retrieve("When was the harbour crane inspected?", top_k=1)[0].text


@needs_ocr
def test_a_picture_of_text_is_read_by_ocr(tmp_path):
    path = tmp_path / "note.png"
    path.write_bytes(scan([["Gate code is four four two one"]], kind="PNG"))
    assert "gate code" in load(path).text.lower()


def test_without_ocr_a_scan_fails_naming_its_pages_and_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(ocr, "available", lambda: False)
    path = tmp_path / "scan.pdf"
    path.write_bytes(scan([["Scanned words"], ["More scanned words"]]))
    with pytest.raises(LoaderError, match=r"scan.pdf: pages 1, 2 of 2 are pictures .*apt-get install tesseract-ocr"):
        load(path)
    picture = tmp_path / "photo.png"
    picture.write_bytes(scan([["words"]], kind="PNG"))
    with pytest.raises(LoaderError, match="needs OCR"):
        load(picture)
    from ragtide.ingest import discover

    assert [p.name for p in discover([tmp_path]).skipped] == ["photo.png"]  # in a folder: skipped, named


def test_a_broken_picture_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(LoaderError, match="broken.png: (not a readable image|an image: reading its text needs OCR)"):
        load(path)


@needs_ocr
def test_scans_past_the_ocr_page_limit_are_refused_before_ocr(tmp_path):
    path = tmp_path / "long-scan.pdf"
    path.write_bytes(scan([["one"], ["two"], ["three"]]))
    with pytest.raises(LoaderError, match="3 scanned pages to read by OCR .*RAGTIDE_MAX_OCR_PAGES"):
        load(path, max_ocr_pages=2)


def test_html_tables_become_labelled_rows(tmp_path):
    path = tmp_path / "prices.html"
    path.write_text(
        "<h1>Prices</h1><table><tr><th>Item</th><th>Price</th></tr>"
        + "".join(f"<tr><td>Item {n}</td><td>{100 + n}</td></tr>" for n in range(50))
        + "</table><p>Prices include tax.</p>"
    )
    text = load(path).text
    assert "Item: Item 37; Price: 137" in text and "Prices include tax." in text
