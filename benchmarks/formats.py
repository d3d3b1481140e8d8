"""How ragtide's readers compare with a general converter (markitdown), and what each format
costs to read: text quality, speed, peak memory, and the weight of what each installs.

    make bench-formats    # or: python benchmarks/formats.py --markitdown PATH/TO/python

The files are made here, each with facts planted where readers go wrong: a fact in a table
row far from its header, under a nested heading, in a list, on a slide, in a sheet, and the
10-K's pages when ../shared/data is present. Quality is judged on the text each reader
returns: is every fact there, does a table row in the middle of a long table still carry its
column names (a chunk of it is read without the header), are headings marked, are list
items one per line. Speed and memory are measured in one run, side by side, each reader in a
process of its own (markitdown lives in its own virtualenv: it pins what it needs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UBER = ROOT.parent / "shared" / "data" / "uber_2021.pdf"
ROWS = 400  # rows in each big table: the checked row is in the middle, far from the header
FACTS = {
    "handbook.docx": ["Item 213: Budget 4213", "The proxy port is 3128", "Lanterns are stored in shed 9"],
    "handbook.html": ["Item 213: Budget 4213", "The proxy port is 3128", "Lanterns are stored in shed 9"],
    "handbook.md": ["The proxy port is 3128", "Lanterns are stored in shed 9"],
    "deck.pptx": ["The kiln reaches 1280 degrees", "Region 7: Revenue 707"],
    "budget.xlsx": ["Item 213: Budget 4213"],
    "stock.csv": ["Item 213: Budget 4213"],
    "book.epub": ["The compass was painted vermilion", "Lanterns are stored in shed 9"],
    "uber_2021.pdf": ["corporate headquarters in the San Francisco Bay Area"],
}


# -- the corpus ----------------------------------------------------------------------------


def make_corpus(folder: Path) -> None:
    import docx
    import openpyxl
    import pptx

    folder.mkdir(parents=True, exist_ok=True)
    rows = [("Item", "Budget")] + [(f"Item {n}", str(4000 + n)) for n in range(ROWS)]
    filler = "The harbour committee met again and read the minutes of the previous meeting aloud. " * 3

    document = docx.Document()
    document.add_heading("Handbook", 0)
    for chapter in range(1, 9):
        document.add_heading(f"Chapter {chapter}", 1)
        document.add_heading(f"Part {chapter}.1", 2)
        for _ in range(6):
            document.add_paragraph(filler)
        if chapter == 3:
            document.add_heading("Proxies", 3)
            document.add_paragraph("The proxy port is 3128.")
            for item in ("Lanterns are stored in shed 9.", "Ropes are stored in shed 2."):
                document.add_paragraph(item, style="List Bullet")
    table = document.add_table(rows=0, cols=2)
    for row in rows:
        cells = table.add_row().cells
        cells[0].text, cells[1].text = row
    document.save(folder / "handbook.docx")

    body = ["<html><head><title>Handbook</title></head><body><h1>Handbook</h1>"]
    for chapter in range(1, 9):
        body.append(f"<h2>Chapter {chapter}</h2><h3>Part {chapter}.1</h3>" + f"<p>{filler}</p>" * 6)
        if chapter == 3:
            body.append("<h4>Proxies</h4><p>The proxy port is 3128.</p>")
            body.append("<ul><li>Lanterns are stored in shed 9.</li><li>Ropes are stored in shed 2.</li></ul>")
    body.append("<table>" + "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in rows) + "</table>")
    (folder / "handbook.html").write_text("".join(body) + "</body></html>")

    markdown = ["# Handbook\n"]
    for chapter in range(1, 9):
        markdown.append(f"## Chapter {chapter}\n\n### Part {chapter}.1\n\n" + f"{filler}\n\n" * 6)
        if chapter == 3:
            markdown.append("#### Proxies\n\nThe proxy port is 3128.\n\n")
            markdown.append("- Lanterns are stored in shed 9.\n- Ropes are stored in shed 2.\n\n")
    (folder / "handbook.md").write_text("".join(markdown))

    deck = pptx.Presentation()
    for n in range(1, 31):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {n}"
        slide.placeholders[1].text = "The kiln reaches 1280 degrees." if n == 17 else filler
        if n == 20:
            shape = slide.shapes.add_table(12, 2, 0, 0, 4_000_000, 3_000_000)
            shape.table.cell(0, 0).text, shape.table.cell(0, 1).text = "Region", "Revenue"
            for r in range(1, 12):
                shape.table.cell(r, 0).text, shape.table.cell(r, 1).text = f"Region {r}", str(700 + r)
    deck.save(folder / "deck.pptx")

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Budget"
    for a, b in rows:
        sheet.append([a, int(b) if b.isdigit() else b])
    book.save(folder / "budget.xlsx")

    (folder / "stock.csv").write_text("\n".join(f"{a},{b}" for a, b in rows) + "\n")

    chapters = [("Departure", filler * 5), ("The compass", "The compass was painted vermilion. " + filler * 5)]
    chapters.append(("Stores", "<ul><li>Lanterns are stored in shed 9.</li><li>Ropes are in shed 2.</li></ul>"))
    with zipfile.ZipFile(folder / "book.epub", "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr(
            "META-INF/container.xml",
            '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/book.opf" media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        items = "".join(
            f'<item id="c{n}" href="c{n}.xhtml" media-type="application/xhtml+xml"/>' for n in range(len(chapters))
        )
        spine = "".join(f'<itemref idref="c{n}"/>' for n in range(len(chapters)))
        z.writestr(
            "OEBPS/book.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Mapmaker</dc:title>'
            '<dc:identifier id="id">mapmaker</dc:identifier><dc:language>en</dc:language></metadata>'
            f"<manifest>{items}</manifest><spine>{spine}</spine></package>",
        )
        for n, (title, text) in enumerate(chapters):
            inner = text if text.startswith("<") else f"<p>{text}</p>"
            z.writestr(
                f"OEBPS/c{n}.xhtml",
                f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{inner}</body></html>",
            )
    if UBER.exists():
        (folder / UBER.name).write_bytes(UBER.read_bytes())


# -- one reader, in its own process ---------------------------------------------------------


def read_all(reader: str, folder: Path, out: Path, repeat: int) -> None:
    """Read every file of ``folder`` with ``reader``, each in a fresh process (so its peak
    memory is its own); write each text, and the costs, to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    costs = {}
    for path in sorted(folder.iterdir()):
        command = [sys.executable, __file__, "--repeat", str(repeat), "--read-one", reader, str(path), str(out)]
        subprocess.run(command, check=True)
        costs[path.name] = json.loads((out / f"{path.name}.json").read_text())
    (out / "costs.json").write_text(json.dumps(costs))


def read_one(reader: str, path: Path, out: Path, repeat: int) -> None:
    import resource

    if reader == "ragtide":
        from ragtide import load

        def convert(path: Path) -> tuple[str, int]:
            doc = load(path)
            return doc.text, len(doc.headings)
    else:
        from markitdown import MarkItDown

        converter = MarkItDown()

        def convert(path: Path) -> tuple[str, int]:
            text = converter.convert(str(path)).text_content
            return text, sum(1 for line in text.splitlines() if line.startswith("#"))

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    text, headings = convert(path)  # the first read: lazy imports, and the peak
    seconds = [time.perf_counter() - start]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    if seconds[0] < 10:  # slow readers are timed once
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            convert(path)
            seconds.append(time.perf_counter() - start)
    (out / f"{path.name}.txt").write_text(text)
    cost = {"ms": 1000 * statistics.median(seconds), "peak_mb": peak / 1024, "headings": headings}
    (out / f"{path.name}.json").write_text(json.dumps(cost))


# -- the comparison ---------------------------------------------------------------------------


def judge(name: str, text: str) -> dict[str, object]:
    """What a reader's text keeps: facts, a mid-table row's labels, list items on lines of their own."""
    flat = " ".join(text.replace("|", " ").split())
    facts = FACTS.get(name, [])
    found = sum(1 for fact in facts if _has(flat, fact))
    middle = next((line for line in text.splitlines() if "Item 213" in line or "Region 7" in line), "")
    labelled = ("Budget" in middle or "Revenue" in middle) if middle else None
    listed = None
    if "Lanterns are stored" in text:
        line = next(line for line in text.splitlines() if "Lanterns are stored" in line)
        listed = "Ropes" not in line
    return {"facts": f"{found}/{len(facts)}", "row_labelled": labelled, "list_items_apart": listed}


def _has(flat: str, fact: str) -> bool:
    """A fact is there when its words are, in order, a label's ':' and a table's pipes aside."""
    words = fact.replace(":", " ").split()
    return " ".join(words) in flat.replace(":", " ").replace("  ", " ") or " ".join(words) in " ".join(
        flat.replace(":", " ").replace(";", " ").split()
    )


_CLOSURE = """
import sys
from importlib import metadata
from packaging.requirements import Requirement
todo, seen, size = list(sys.argv[1:]), set(), 0
while todo:
    name = todo.pop().lower().replace("_", "-")
    if name in seen:
        continue
    seen.add(name)
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue
    size += sum(f.size or 0 for f in dist.files or [])
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(req.name)
print(len(seen), size)
"""
READERS_OF = {
    "ragtide": ["python-docx", "python-pptx", "openpyxl", "pypdfium2", "selectolax"],
    "markitdown": ["markitdown", "mammoth", "python-pptx", "pandas", "openpyxl", "pdfminer.six", "pdfplumber"],
}


def weight(python: str, reader: str) -> str:
    """What the reader's parsers install: packages and megabytes, dependencies included."""
    done = subprocess.run([python, "-c", _CLOSURE, *READERS_OF[reader]], capture_output=True, text=True)
    if done.returncode:
        return "unknown"
    count, size = done.stdout.split()
    return f"{count} packages, {int(size) / 2**20:,.0f} MB"


def cpu_flags() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "none of avx2/avx512"


def ocr_rate(folder: Path) -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from pdfs import scan
    from ragtide import load
    from ragtide.ingest.formats import ocr

    if not ocr.available():
        return "OCR: Tesseract not installed, not measured"
    pages = [[f"Ledger {p} line {n} holds cargo {1000 + 100 * p + n}." for n in range(30)] for p in range(4)]
    path = folder / "scan.pdf"
    path.write_bytes(scan(pages))
    start = time.perf_counter()
    doc = load(path)
    seconds = time.perf_counter() - start
    flat = " ".join(doc.text.split())
    read = sum(1 for page in pages for line in page if line in flat)
    return (
        f"OCR (Tesseract, {ocr.DPI} dpi): 4 scanned pages in {seconds:.1f} s = {4 / seconds:.2f} pages/s; "
        f"{read}/120 lines read exactly"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markitdown", help="a Python with markitdown installed (its own virtualenv)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ocr-only", action="store_true", help="measure only OCR's rate")
    parser.add_argument("--read", nargs=3, metavar=("READER", "FOLDER", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--read-one", nargs=3, metavar=("READER", "FILE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        read_all(args.read[0], Path(args.read[1]), Path(args.read[2]), args.repeat)
        return 0
    if args.read_one:
        read_one(args.read_one[0], Path(args.read_one[1]), Path(args.read_one[2]), args.repeat)
        return 0

    work = Path(tempfile.mkdtemp(prefix="ragtide-formats-"))
    if args.ocr_only:
        print(ocr_rate(work))
        return 0
    make_corpus(work / "files")
    readers = {"ragtide": sys.executable}
    if args.markitdown:
        readers["markitdown"] = args.markitdown
    results = {}
    for reader, python in readers.items():
        env = {**os.environ, "PYTHONPATH": ""}
        command = [python, __file__, "--repeat", str(args.repeat), "--read", reader, str(work / "files")]
        subprocess.run([*command, str(work / reader)], check=True, env=env)
        results[reader] = json.loads((work / reader / "costs.json").read_text())

    print(f"# formats benchmark, {time.strftime('%Y-%m-%d')}, {platform.python_version()}, CPU flags: {cpu_flags()}")
    print(
        f"# {os.cpu_count()} cores; median of {args.repeat} reads after a first (one read where that took over "
        "10 s); peak = the growth of the process's peak RSS over the first read"
    )
    print(
        f"{'file':<16} {'reader':<11} {'facts':>5} {'row labels':>10} {'list apart':>10} {'headings':>8} "
        f"{'ms':>8} {'peak MB':>8}"
    )
    for name in sorted(results["ragtide"]):
        for reader in readers:
            cost = results[reader].get(name)
            if cost is None:
                continue
            quality = judge(name, (work / reader / f"{name}.txt").read_text())
            print(
                f"{name:<16} {reader:<11} {quality['facts']:>5} {_yes(quality['row_labelled']):>10} "
                f"{_yes(quality['list_items_apart']):>10} {cost['headings']:>8} {cost['ms']:>8.1f} "
                f"{cost['peak_mb']:>8.1f}"
            )
    for reader, python in readers.items():
        print(f"{reader}'s readers install {weight(python, reader)} ({', '.join(READERS_OF[reader])})")
    print(ocr_rate(work))
    return 0


def _yes(value: object) -> str:
    return "-" if value is None else ("yes" if value else "no")


if __name__ == "__main__":
    sys.exit(main())
