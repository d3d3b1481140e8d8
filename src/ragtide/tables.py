"""Tables as text: each row a line that keeps its column labels.

A row read alone ("5,025 6,368 27 %") answers nothing; with its labels ("Trips: 2020: 5,025;
2021: 6,368") it is a fact a passage can be found by and an answer can quote. The readers
write rows this way (:mod:`.ingest.formats`: from the cells of HTML, Office and CSV tables,
and from the lines of a PDF's text layer, where a table is only figures in a row), and the
offline answer (:mod:`.query.extract`) takes each such line as a unit of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_YEAR = re.compile(r"^(1[6-9]|20)\d\d$")
_QUARTER = re.compile(r"^Q[1-4]$")
# A column's date before its year: "As of December 31, 2021" is the column "2021".
_DAY = re.compile(
    r"\b(?:as of |years? ended )?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2},", re.IGNORECASE
)
# A figure as statements print it: "5,025", "$", "(6,768)", "27", "%", "—", "— %" (none).
_FIGURE = re.compile(r"^[\$\(\)—–\-]*\d[\d,]*(?:\.\d+)?(?:%|\)|\)%|%\))?$|^[\$%—–\-]%?$")
# A labelled row as written here: "label: value; label: value".
_LABELLED = re.compile(r"^[^;\n]{1,120}: [^;\n]+(?:; [^;\n]{1,120}: [^;\n]+)+$")


def labelled_row(header: list[str], row: list[str]) -> str:
    """A table row with each value labelled by its column: "Region: EMEA; Revenue: 4.2"."""
    cells = []
    for k, value in enumerate(row):
        value = " ".join(str(value).split())
        if not value:
            continue
        label = " ".join(header[k].split()) if k < len(header) else ""
        cells.append(f"{label}: {value}" if label and label != value else value)
    return "; ".join(cells)


def table_rows(rows: Iterable[list[str]]) -> Iterator[str]:
    """A table's rows after its first non-empty one, each labelled by it; one-row tables as they are."""
    header: list[str] | None = None
    data = False
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = row
            continue
        data = True
        yield labelled_row(header, row)
    if header is not None and not data:
        yield " | ".join(cell.strip() for cell in header if cell.strip())


def is_row(line: str) -> bool:
    """Whether a line is a table row: labelled as written here, or a label and figures as a
    PDF's text layer gives them ("Trips 5,025 6,368 27 %")."""
    line = line.strip()
    return bool(_LABELLED.match(line)) and not line.endswith(".") or _is_figures(line)


def label_figures(lines: list[str]) -> list[str]:
    """Lines of text with the rows of their figure tables labelled by the years (or quarters)
    of the header above them: "Trips 5,025 6,368 27 %" under "(In millions) 2020 2021" becomes
    "Trips (in millions): 2020: 5,025; 2021: 6,368 (then 27%)". Other lines as they are."""
    out: list[str] = []
    years: list[str] = []
    unit = ""
    header: int | None = None  # where the header line is in ``out``, until a row is labelled by it
    for line in lines:
        stripped = line.strip()
        if not _is_figures(stripped):
            if _is_prose(stripped):  # the table, if any, has ended; a sentence may name the next one's unit
                years, unit = [], _unit(stripped, "")
            else:  # a label inside a table ("Costs and expenses") or a header line ("Year Ended December 31,")
                unit = _unit(stripped, unit)
            out.append(line)
        elif _is_header(stripped):
            years, unit, header = _columns(stripped), _unit(stripped, unit), len(out)
            out.append(line)
        else:
            labelled = _labelled(stripped, years, unit)
            if labelled and header is not None:
                del out[header]  # its years are in every row now
            header = None if labelled else header
            out.append(labelled or line)
    return out


def _cells(line: str) -> list[str]:
    return line.replace("$ ", "$").replace(" %", "%").split()


def _is_figures(line: str) -> bool:
    cells = _cells(line)
    figures = sum(1 for c in cells if _FIGURE.match(c))
    if figures < 2 or len(line) > 220 or line.endswith((".", "?", "!", ":", ",")):
        return False
    return figures >= 0.3 * len(cells) or bool(_FIGURE.match(cells[-1]) and _FIGURE.match(cells[-2]))


def _is_header(line: str) -> bool:
    """A table's column header: years, and no other figures ("(In millions) 2020 2021")."""
    numbers = [c for c in (c.strip("()%") for c in _cells(_DAY.sub("", line))) if re.match(r"^\d", c)]
    return bool(numbers) and all(_YEAR.match(c) or _QUARTER.match(c) for c in numbers)


def _columns(header: str) -> list[str]:
    """The column labels of a header: its years, each with the quarter before it ("Q1 2020")."""
    cells = [c.strip("()%") for c in _cells(_DAY.sub("", header))]
    labels = [
        f"{cells[k - 1]} {c}" if k and _QUARTER.match(cells[k - 1]) else c
        for k, c in enumerate(cells)
        if _YEAR.match(c)
    ]
    return list(dict.fromkeys(labels))  # "2020 2021 2020 to 2021 % Change": two columns of figures, then changes


def _is_prose(line: str) -> bool:
    words = len(line.split())
    return line.endswith(".") or (line.endswith(":") and words > 6) or words > 12


def _unit(line: str, default: str) -> str:
    return " (in millions)" if "in millions" in line.lower() else default


def _labelled(row: str, years: list[str], unit: str) -> str | None:
    cells = _cells(row)
    first = len(cells)  # the figures are the trailing cells; a dash inside the label is not one
    while first and _FIGURE.match(cells[first - 1]):
        first -= 1
    label = " ".join(cells[:first])
    values = [c for c in cells[first:] if c not in ("$", "%")]
    if not years or not label or len(values) < len(years):
        return None
    pairs = "; ".join(f"{year}: {value}" for year, value in zip(years, values))
    rest = ", ".join(values[len(years) :])
    return f"{label}{unit}: {pairs}" + (f" (then {rest})" if rest else "")
