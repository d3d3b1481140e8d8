"""Every format ragtide reads, on files the test makes with a fact each: the fact is in the
text, tables keep their labels, slides and sheets are cited as such, and retrieval finds
every fact on Milvus Lite and the server. Bad files of each kind fail alone, with a reason."""

from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path

import pytest

from ragtide import RAG, LoaderError, load
from ragtide.ingest import readable

FACTS = {
    "memo.docx": ("Which city hosts the archive?", "Reykjavik"),
    "deck.pptx": ("How many kilns does the pottery run?", "seventeen kilns"),
    "budget.xlsx": ("What is the budget for lanterns?", "4820"),
    "story.odt": ("What does the lighthouse keeper collect?", "sea glass"),
    "book.epub": ("What colour is the mapmaker's compass?", "vermilion"),
    "guide.rst": ("Which port does the ferry leave from?", "Harwich"),
    "stock.csv": ("How many walnut chairs are in stock?", "walnut chair"),
    "stock.tsv": ("Which supplier sells the brass hinges?", "Oakfield Hardware"),
    "config.json": ("Who maintains the tide tables?", "Marisol Ortega"),
    "events.jsonl": ("When is the kite festival?", "kite festival"),
    "note.eml": ("What did Priya ask about the greenhouse?", "greenhouse thermostat"),
    "README.Debian": ("Which directory holds the fonts?", "/usr/share/fonts/truetype/quill"),
    "NOTES": ("What is the wifi name in the studio?", "loom-and-lantern"),
    "changes.txt.gz": ("Which release added the sundial mode?", "sundial mode"),
}


def _docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = "Archive memo"
    d.add_heading("Archives", level=1)
    d.add_paragraph("The northern archive is hosted in Reykjavik, beside the old harbour.")
    table = d.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Shelf", "Holds"
    table.rows[1].cells[0].text, table.rows[1].cells[1].text = "B7", "Whaling logs"
    d.save(path)


def _pptx(path: Path) -> None:
    import pptx

    deck = pptx.Presentation()
    for title, body in (
        ("Welcome", "The pottery tour starts at nine."),
        ("Kilns", "The pottery runs seventeen kilns."),
    ):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    deck.slides[1].notes_slide.notes_text_frame.text = "Mention the glaze room."
    deck.save(path)


def _xlsx(path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Summary"
    sheet.append(["Note"])
    sheet.append(["Budget figures are in the Festival sheet."])
    festival = book.create_sheet("Festival")
    festival.append(["Item", "Budget"])
    festival.append(["Lanterns", 4820])
    festival.append(["Stage", 1200])
    book.save(path)


def _odt(path: Path) -> None:
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.2">'
        "<office:body><office:text><text:h>The lighthouse</text:h>"
        "<text:p>Every morning the lighthouse keeper collects sea glass on the shingle.</text:p>"
        "<table:table><table:table-row><table:table-cell><text:p>Month</text:p></table:table-cell>"
        "<table:table-cell><text:p>Pieces</text:p></table:table-cell></table:table-row>"
        "<table:table-row><table:table-cell><text:p>May</text:p></table:table-cell>"
        "<table:table-cell><text:p>212</text:p></table:table-cell></table:table-row></table:table>"
        "</office:text></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        z.writestr("content.xml", content)


def _epub(path: Path) -> None:
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Mapmaker</dc:title></metadata>'
        '<manifest><item id="c1" href="one.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="c2" href="two.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>'
    )
    chapter = "<html><head><title>{}</title></head><body><p>{}</p></body></html>"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr(
            "META-INF/container.xml",
            '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/book.opf" media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        z.writestr("OEBPS/book.opf", opf)
        z.writestr("OEBPS/one.xhtml", chapter.format("Departure", "The mapmaker left at dawn."))
        z.writestr("OEBPS/two.xhtml", chapter.format("The compass", "Her compass was painted vermilion."))


def make_corpus(folder: Path) -> Path:
    """One file of each format, each holding its fact (see ``FACTS``)."""
    folder.mkdir(parents=True, exist_ok=True)
    _docx(folder / "memo.docx")
    _pptx(folder / "deck.pptx")
    _xlsx(folder / "budget.xlsx")
    _odt(folder / "story.odt")
    _epub(folder / "book.epub")
    (folder / "guide.rst").write_text("Ferries\n=======\n\nThe night ferry leaves from Harwich at ten.\n")
    (folder / "stock.csv").write_text("item,count,colour\nwalnut chair,14,brown\noak table,3,light\n")
    (folder / "stock.tsv").write_text("part\tsupplier\nbrass hinges\tOakfield Hardware\n")
    (folder / "config.json").write_text(json.dumps({"tides": {"maintainer": "Marisol Ortega", "port": "Leith"}}))
    (folder / "events.jsonl").write_text(
        json.dumps({"event": "kite festival", "date": "14 June"}) + "\n" + json.dumps({"event": "regatta"}) + "\n"
    )
    (folder / "note.eml").write_text(
        "From: Priya <priya@example.org>\nTo: team@example.org\nSubject: Greenhouse\n"
        "Content-Type: text/plain; charset=utf-8\n\nCould someone check the greenhouse thermostat tonight?\n"
    )
    (folder / "README.Debian").write_text(
        "quill fonts for Debian\n\nThe fonts live in /usr/share/fonts/truetype/quill.\n"
    )
    (folder / "NOTES").write_text("Studio notes.\n\nThe wifi name in the studio is loom-and-lantern.\n")
    (folder / "changes.txt.gz").write_bytes(gzip.compress(b"Release 2.1 added the sundial mode to the clock.\n"))
    (folder / "firmware.bin").write_bytes(b"\x7fELF\x02\x01" + bytes(range(256)) * 8)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("formats"))


@pytest.mark.parametrize("name", sorted(FACTS))
def test_each_format_is_read_with_its_fact(corpus, name):
    doc = load(corpus / name)
    assert FACTS[name][1] in doc.text, doc.text[:500]


def test_a_word_documents_code_stays_code():
    # pandoc's .docx of libcbor's README: its commands are paragraphs in the "Source Code" style.
    text = load(Path(__file__).parent / "data" / "realdocs" / "libcbor0.8-README.docx").text
    assert "Fedora & RPM friends\n\n```\nyum install libcbor-devel\n```" in text
    assert "```\ngit clone https://github.com/PJK/libcbor\ncmake -DCMAKE_BUILD_TYPE=Release" in text


def test_an_e_books_chapter_titled_by_its_file_name_is_labelled_by_its_heading():
    # pandoc titles each chapter of an EPUB by its file name ("ch001.xhtml"): not a title. Its
    # title page (the book's title again) and the chapter's table of contents are not text.
    book = load(Path(__file__).parent / "data" / "realdocs" / "nodejs-GOVERNANCE.epub")
    assert [p.label for p in book.pages] == ["Node.js Project Governance"] and "ch001.xhtml" not in book.text
    assert book.text.startswith("Node.js Project Governance\n\nTriagers\n\nTriagers assess newly-opened issues")


@pytest.mark.parametrize(
    ("title_page", "kept"), [("<h1>The Mapmaker</h1>", False), ("<h1>The Mapmaker</h1><p>Ines Ruiz</p>", True)]
)
def test_an_e_books_title_page_is_left_out_unless_it_says_more_than_the_title(tmp_path, title_page, kept):
    path = tmp_path / "book.epub"
    _epub(path)
    with zipfile.ZipFile(path) as z:
        files = {name: z.read(name) for name in z.namelist()}
    opf = files["OEBPS/book.opf"].decode()
    opf = opf.replace("<manifest>", '<manifest><item id="t" href="title.xhtml" media-type="application/xhtml+xml"/>')
    files["OEBPS/book.opf"] = opf.replace("<spine>", '<spine><itemref idref="t"/>').encode()
    files["OEBPS/title.xhtml"] = (
        '<html xmlns:epub="http://www.idpf.org/2007/ops"><body epub:type="frontmatter">'
        f'<section epub:type="titlepage">{title_page}</section></body></html>'
    ).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    book = load(path)
    assert len(book.pages) == (3 if kept else 2) and ("Ines Ruiz" in book.text) == kept
    assert book.text.count("The mapmaker left at dawn.") == 1


def test_tables_keep_their_labels_and_slides_and_sheets_are_pages(corpus):
    assert "Shelf: B7; Holds: Whaling logs" in load(corpus / "memo.docx").text
    assert load(corpus / "memo.docx").metadata["title"] == "Archive memo"
    assert "item: walnut chair; count: 14; colour: brown" in load(corpus / "stock.csv").text
    assert "Month: May; Pieces: 212" in load(corpus / "story.odt").text
    deck = load(corpus / "deck.pptx")
    assert [p.label for p in deck.pages] == ["slide 1", "slide 2"]
    assert deck.label_at(deck.text.index("seventeen")) == "slide 2" and "Notes: Mention the glaze room." in deck.text
    book = load(corpus / "budget.xlsx")
    assert [p.label for p in book.pages] == ["sheet Summary", "sheet Festival"]
    assert "Item: Lanterns; Budget: 4820" in book.text
    epub = load(corpus / "book.epub")
    assert epub.metadata["title"] == "The Mapmaker" and [p.label for p in epub.pages] == ["Departure", "The compass"]
    assert "tides › maintainer: Marisol Ortega" in load(corpus / "config.json").text
    assert load(corpus / "note.eml").text.startswith("From: Priya <priya@example.org>")


def test_binary_files_are_not_readable_and_named_ones_fail_with_the_supported_types(corpus, tmp_path):
    assert readable(corpus / "NOTES") and readable(corpus / "README.Debian") and not readable(corpus / "firmware.bin")
    with pytest.raises(LoaderError, match=r"firmware.bin: unsupported file type '.bin': not text, nor one of .*\.docx"):
        load(corpus / "firmware.bin")


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("broken.docx", b"PK\x03\x04 not a zip at all", "corrupt"),
        ("broken.xlsx", b"not a workbook", "corrupt"),
        ("broken.epub", b"PK\x05\x06" + b"\0" * 18, "corrupt EPUB"),
        ("broken.json", b'{"a": ', "not valid JSON"),
        ("broken.jsonl", b'{"a": 1}\n{"b": ', "line 2 is not valid JSON"),
        ("broken.gz", b"\x1f\x8b\x08\x00 truncated", "corrupt gzip"),
    ],
)
def test_a_damaged_file_fails_alone_with_its_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoaderError, match=reason):
        load(path)


def test_zip_and_gzip_bombs_are_refused_before_they_unpack(tmp_path):
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"\0" * (200 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(LoaderError, match=r"would unpack to 200 MB.*zip bomb"):
        load(bomb)
    gz = tmp_path / "bomb.txt.gz"
    gz.write_bytes(gzip.compress(b"a" * (20 << 20)))
    with pytest.raises(LoaderError, match="unpacks to more than 1 MB"):
        load(gz, max_bytes=1 << 20)


def test_a_large_csv_is_bounded_by_the_text_limit(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("id,value\n" + "".join(f"{i},value number {i}\n" for i in range(100_000)))
    with pytest.raises(LoaderError, match="more than 500,000 characters"):
        load(rows, max_chars=500_000)


def test_a_package_can_add_a_format_through_an_entry_point(tmp_path, monkeypatch):
    from ragtide.ingest import loaders

    plugin = tmp_path / "site"
    (plugin / "ragtide_shout").mkdir(parents=True)
    (plugin / "ragtide_shout" / "__init__.py").write_text(
        "from ragtide.ingest.formats.base import whole\n"
        "def load_shout(path, data, caps):\n"
        "    return whole(path, data.decode().upper(), caps, type='shout')\n"
    )
    info = plugin / "ragtide_shout-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ragtide-shout\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ragtide.loaders]\n.shout = ragtide_shout:load_shout\n")
    monkeypatch.syspath_prepend(str(plugin))
    loaders.registry.cache_clear()
    try:
        note = tmp_path / "note.shout"
        note.write_bytes(b"\0quiet words")  # not text by its first bytes: only the plug-in reads it
        doc = load(note)
        assert doc.text == "\0QUIET WORDS" and doc.metadata["type"] == "shout"
        assert ".shout" in loaders.supported()
    finally:
        sys.modules.pop("ragtide_shout", None)
        monkeypatch.undo()
        loaders.registry.cache_clear()


@pytest.mark.model  # retrieval quality needs the real model
def test_retrieval_finds_every_fact_of_every_format(corpus, backend, collection, embedder):
    with RAG(uri=backend, collection=collection, embedder=embedder) as rag:
        report = rag.ingest([corpus])
        assert report.failed == {} and [Path(p).name for p in report.skipped] == ["firmware.bin"], report
        assert report.added == len(FACTS)
        for name, (question, fact) in FACTS.items():
            sources = rag.retrieve(question, top_k=5)
            assert any(fact in s.text for s in sources), (name, [s.source for s in sources])
        deck = [s for s in rag.retrieve("How many kilns does the pottery run?", top_k=5) if s.source.endswith(".pptx")]
        assert deck and deck[0].where == "slide 2"


def test_metadata_is_stored_returned_filterable_and_part_of_the_version(tmp_path, backend, collection, embedder):
    note = tmp_path / "note.txt"
    note.write_text("The legal team reviews contracts on Thursdays.")
    other = tmp_path / "other.txt"
    other.write_text("The design team reviews sketches on Thursdays.")
    with RAG(uri=backend, collection=collection, embedder=embedder) as rag:
        assert rag.ingest([note], metadata={"team": "legal", "year": 2024}).added == 1
        assert rag.ingest([other], metadata={"team": "design", "year": 2023}).added == 1
        hits = rag.retrieve(
            "Who reviews on Thursdays?", filter='metadata["team"] == "legal" and metadata["year"] >= 2024'
        )
        assert [Path(h.source).name for h in hits] == ["note.txt"] and hits[0].metadata["team"] == "legal"
        assert rag.ingest([note], metadata={"team": "legal", "year": 2024}).unchanged == 1
        assert rag.ingest([note], metadata={"team": "legal", "year": 2025}).updated == 1  # new metadata, new version
        listed = {Path(d.source).name: d for d in rag.catalog()}
        assert listed["note.txt"].metadata["year"] == 2025 and listed["note.txt"].format == "text"
        assert listed["note.txt"].size == note.stat().st_size and listed["note.txt"].ingested
        for bad in ({"type": "x"}, {"bad key!": 1}, {"k": [1, 2]}):
            with pytest.raises(Exception, match="metadata: "):
                rag.ingest([note], metadata=bad)


def test_the_cli_attaches_metadata_lists_documents_and_fails_named_unsupported_files(
    corpus, tmp_path, backend, collection, capsys
):
    from ragtide.cli import main as cli

    uri = ["--uri", backend, "--collection", collection]
    status = cli(["ingest", str(corpus / "guide.rst"), str(corpus / "stock.csv"), "--meta", "team=ops", *uri])
    assert status == 0, capsys.readouterr().err
    status = cli(["ingest", str(corpus / "firmware.bin"), *uri])
    out, err = capsys.readouterr()
    assert status == 1 and "firmware.bin: unsupported file type '.bin': not text, nor one of" in err and ".docx" in err
    assert cli(["list", *uri]) == 0
    out = capsys.readouterr().out
    assert "rst" in out and "table" in out and "2 document(s)" in out
    assert cli(["list", "--json", *uri]) == 0
    listed = json.loads(capsys.readouterr().out)["documents"]
    assert {d["metadata"]["team"] for d in listed} == {"ops"} and {d["format"] for d in listed} == {"rst", "table"}
    assert cli(["ingest", str(corpus), "--exclude", "*.pptx", *uri]) == 0
    out, err = capsys.readouterr()
    assert "skipped: " in err and "firmware.bin" in err and "1 skipped (not text, nor a type ragtide reads)" in out


def test_a_manual_pages_running_heads_are_dropped(tmp_path):
    page = tmp_path / "tar.1.txt"
    page.write_text(
        "TAR(1)                     GNU TAR Manual                    TAR(1)\n\nNAME\n       tar - an archiving utility\n\n"
        "OPTIONS\n       -x, --extract\n              Extract files from an archive.\n\n"
        "TAR(1)                     GNU TAR Manual                    TAR(1)\n\n       -v, --verbose\n\n"
        "TAR                         July 13, 2020                     TAR(1)\n"
    )
    text = load(page).text
    assert "TAR(1)" not in text and "July 13, 2020" not in text
    assert "tar - an archiving utility" in text and "Extract files from an archive." in text and "--verbose" in text
    plain = tmp_path / "plain.txt"
    plain.write_text("See TAR(1) and GREP(1)    for more    TAR(1)\n")
    assert load(plain).text == plain.read_text()


def test_list_items_are_marked_as_items_in_every_format(tmp_path):
    """A short item ("HarfBuzz for complex text shaping") read without its mark is taken for
    a heading, and no answer quotes it: Word, OpenDocument and HTML lists keep "- "."""
    import docx

    d = docx.Document()
    d.add_paragraph("Pango depends on the following libraries:")
    d.add_paragraph("HarfBuzz for complex text shaping", style="List Bullet")
    d.save(tmp_path / "deps.docx")
    odt = tmp_path / "deps.odt"
    with zipfile.ZipFile(odt, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        z.writestr(
            "content.xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
            'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
            "<office:body><office:text><text:p>Pango depends on the following libraries:</text:p>"
            "<text:list><text:list-item><text:p>HarfBuzz for complex text shaping</text:p>"
            "<text:p>It is optional.</text:p></text:list-item></text:list></office:text></office:body>"
            "</office:document-content>",
        )
    (tmp_path / "deps.html").write_text(
        "<p>Pango depends on the following libraries:</p><ul><li><p>HarfBuzz for complex text shaping</p></li></ul>"
    )
    for name in ("deps.docx", "deps.odt", "deps.html"):
        assert "\n\n- HarfBuzz for complex text shaping" in load(tmp_path / name).text, name
    assert "\n\nIt is optional." in load(odt).text
