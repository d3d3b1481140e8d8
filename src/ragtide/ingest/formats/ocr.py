"""Text from pictures of text (scanned pages, photographed documents), by Tesseract.

Tesseract is a program, not a Python package: Debian's ``tesseract-ocr`` (or the system's
own package), read through pytesseract (the ``ocr`` extra). Where either is missing, a
document that needs it fails with this message rather than being stored empty.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

from ...documents import Document
from ...errors import LoaderError
from .base import Caps, paged

INSTALL = "install Tesseract (Debian/Ubuntu: apt-get install tesseract-ocr) and pip install 'ragtide[ocr]'"
PICTURES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
DPI = 300  # Tesseract's accuracy falls off below about 300 dots per inch


def available() -> bool:
    """Whether pictures can be read: the tesseract program and its Python binding."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return shutil.which("tesseract") is not None


def read(path: Path, image: Any) -> str:
    """The text Tesseract reads in ``image`` (a PIL image)."""
    import pytesseract

    try:
        return str(pytesseract.image_to_string(image))
    except (pytesseract.TesseractError, OSError, RuntimeError) as e:
        raise LoaderError(str(path), f"OCR failed ({str(e).strip()[:200]})") from None


def load_image(path: Path, data: bytes, caps: Caps) -> Document:
    """A picture of text (.png, .jpg, .tif, …): each frame a page, read by OCR."""
    from PIL import Image, UnidentifiedImageError

    if not available():
        raise LoaderError(str(path), f"an image: reading its text needs OCR; {INSTALL}")
    pages = []
    try:
        picture = Image.open(io.BytesIO(data))  # PIL refuses pictures of over 179 M pixels (bombs)
        frames = getattr(picture, "n_frames", 1)
        limit = min(x for x in (caps.pages, caps.ocr_pages, frames) if x is not None)
        if frames > limit:
            raise LoaderError(str(path), f"{frames:,} frames to read by OCR (the limit per document is {limit:,})")
        for n in range(frames):
            picture.seek(n)
            pages.append(("", read(path, picture.convert("L"))))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, EOFError) as e:
        raise LoaderError(str(path), f"not a readable image ({e})") from None
    return paged(path, pages, caps, type="image", ocr_pages=len(pages))
