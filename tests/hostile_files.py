"""Files made to hurt a document service, for the tests and the probe benchmark."""

from __future__ import annotations

import zlib

from pdfs import assemble


def pdf_bomb(pages: int, lines: int = 200) -> bytes:
    """A PDF whose ``pages`` pages all show one shared content stream of ``lines`` lines."""
    text = b"".join(b"(Expanding text line number %d of a shared stream.) Tj T* " % i for i in range(lines))
    stream = zlib.compress(b"BT /F1 6 Tf 8 TL 10 780 Td " + text + b"ET")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages)
    objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R /Resources << /Font << /F1 4 0 R >> >> >>"
    objects += [page] * pages
    return assemble(objects)
