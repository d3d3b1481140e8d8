"""The formats ragtide reads, one module per family, each reader a :data:`~.base.Loader`.

Other formats arrive as packages: a distribution that declares an entry point in the
``ragtide.loaders`` group, named for the file suffix it reads, adds it (see
:mod:`ragtide.ingest.loaders`).
"""

from .base import Caps, Loader
from .html import load_html
from .ocr import PICTURES, load_image
from .packages import load_docx, load_epub, load_odt, load_pptx, load_xlsx
from .pdf import load_pdf
from .plain import load_email, load_json, load_jsonl, load_markdown, load_rst, load_table, load_text

BUILTIN: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".rst": load_rst,
    ".html": load_html,
    ".htm": load_html,
    ".xhtml": load_html,
    ".pdf": load_pdf,
    ".csv": load_table,
    ".tsv": load_table,
    ".json": load_json,
    ".jsonl": load_jsonl,
    ".ndjson": load_jsonl,
    ".eml": load_email,
    ".docx": load_docx,
    ".pptx": load_pptx,
    ".xlsx": load_xlsx,
    ".odt": load_odt,
    ".epub": load_epub,
    **dict.fromkeys(PICTURES, load_image),
}

__all__ = ["BUILTIN", "Caps", "Loader"]
