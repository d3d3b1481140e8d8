"""PDFs made for the tests: a text layer of chosen lines, and a scan with none."""

from __future__ import annotations

import io

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF whose pages show ``pages``' lines, top to bottom, in Helvetica."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for lines in pages:
        shown = b" ".join(b"(%s) Tj T*" % _escaped(line) for line in lines)
        stream = b"BT /F1 11 Tf 14 TL 72 760 Td " + shown + b" ET"
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(len(objects) + 1)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % len(objects)
        )
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    return assemble(objects)


def assemble(objects: list[bytes]) -> bytes:
    """A PDF file of ``objects`` (numbered from 1, the first the catalog), with its xref table."""
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def _escaped(line: str) -> bytes:
    return line.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def scan(pages: list[list[str]], kind: str = "PDF") -> bytes:
    """Pictures of ``pages``' lines (rendered text, no text layer), as a PDF or an image."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, 36)
    pictures = []
    for lines in pages:
        picture = Image.new("L", (1700, 2200), 255)
        draw = ImageDraw.Draw(picture)
        for n, line in enumerate(lines):
            draw.text((150, 200 + 60 * n), line, fill=0, font=font)
        pictures.append(picture)
    out = io.BytesIO()
    pictures[0].save(out, kind, resolution=200.0, save_all=True, append_images=pictures[1:])
    return out.getvalue()
