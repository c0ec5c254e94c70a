"""Attachments built to freeze or exhaust a scanner: the samples the reliability tests and the
benchmarks send. Each is small on the wire and costly to read naively.

* :func:`xlsx_huge_dimension` — an .xlsx of under 3 KB declaring a 16384 x 1048576 sheet;
* :func:`xlsx_empty_rows` — an .xlsx with millions of empty rows (30 million by default);
* :func:`docx_paragraphs` — a .docx with millions of paragraphs (2 million by default);
* :func:`pdf_slow` — a few KB of PDF whose one page holds millions of text operators;
* :func:`pdf_pages` — a PDF of many pages of text (200 by default);
* :func:`xlsx_huge_string` — an .xlsx whose one shared string unpacks to hundreds of MB;
* :func:`message_with` — any of them attached to a message from the test sender.
"""

from __future__ import annotations

import io
import zlib
import zipfile
from email.message import EmailMessage

__all__ = ["xlsx_huge_dimension", "xlsx_empty_rows", "xlsx_huge_string", "docx_paragraphs", "pdf_slow", "pdf_pages",
           "message_with", "XLSX", "DOCX", "PDF", "ALL"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF = "application/pdf"

_CT_XLSX = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            b'<Default Extension="xml" ContentType="application/xml"/>'
            b'<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            b'</Types>')
_RELS = (b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="%s"/>'
         b'</Relationships>')
_WORKBOOK = (b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
             b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
             b'<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WB_RELS = (b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            b'Target="worksheets/sheet1.xml"/></Relationships>')
_SHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
               b'<dimension ref="%s"/><sheetData>')
_SHEET_TAIL = b"</sheetData></worksheet>"


def _zip(members: dict[str, bytes | tuple[bytes, bytes, int, bytes]]) -> bytes:
    """A zip of *members*; a member given as (head, unit, count, tail) is written as head +
    unit * count + tail, streamed, so that millions of repetitions cost no memory here."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members.items():
            if isinstance(data, bytes):
                zf.writestr(name, data)
                continue
            head, unit, count, tail = data
            with zf.open(name, "w", force_zip64=True) as f:
                f.write(head)
                block = unit * 65536
                full, rest = divmod(count, 65536)
                for _ in range(full):
                    f.write(block)
                f.write(unit * rest)
                f.write(tail)
    return buf.getvalue()


def _xlsx(sheet: bytes | tuple[bytes, bytes, int, bytes], **extra: bytes | tuple[bytes, bytes, int, bytes]) -> bytes:
    members = {"[Content_Types].xml": _CT_XLSX, "_rels/.rels": _RELS % b"xl/workbook.xml",
               "xl/workbook.xml": _WORKBOOK, "xl/_rels/workbook.xml.rels": _WB_RELS,
               "xl/worksheets/sheet1.xml": sheet}
    if "strings" in extra:
        members["xl/_rels/workbook.xml.rels"] = _WB_RELS.replace(b"</Relationships>", (
            b'<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
            b'Target="sharedStrings.xml"/></Relationships>'))
        members["[Content_Types].xml"] = _CT_XLSX.replace(b"</Types>", (
            b'<Override PartName="/xl/sharedStrings.xml" '
            b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'))
        members["xl/sharedStrings.xml"] = extra["strings"]
    return _zip(members)


def xlsx_huge_dimension() -> bytes:
    """Under 3 KB: a sheet declaring A1:XFD1048576, with a cell in its first and its last corner."""
    sheet = (_SHEET_HEAD % b"A1:XFD1048576"
             + b'<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c></row>'
             + b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>end</t></is></c></row>'
             + _SHEET_TAIL)
    return _xlsx(sheet)


def xlsx_empty_rows(rows: int = 30_000_000) -> bytes:
    """A sheet of *rows* empty rows (a few hundred KB for 30 million)."""
    return _xlsx((_SHEET_HEAD % b"A1", b"<row/>", rows, _SHEET_TAIL))


def xlsx_huge_string(mb: int = 400) -> bytes:
    """A sheet whose one cell is a shared string of *mb* MB (about *mb* KB on the wire)."""
    sst = b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>'
    sheet = _SHEET_HEAD % b"A1" + b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>' + _SHEET_TAIL
    return _xlsx(sheet, strings=(sst, b"a" * 1024, mb * 1024, b"</t></si></sst>"))


_CT_DOCX = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            b'<Default Extension="xml" ContentType="application/xml"/>'
            b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            b'</Types>')
_DOC_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?><w:document '
             b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>')
_DOC_TAIL = b"</w:body></w:document>"


def docx_paragraphs(paragraphs: int = 2_000_000, text: str = "x") -> bytes:
    """A document of *paragraphs* paragraphs of *text* each."""
    unit = b"<w:p><w:r><w:t>" + text.encode() + b"</w:t></w:r></w:p>"
    return _zip({"[Content_Types].xml": _CT_DOCX, "_rels/.rels": _RELS % b"word/document.xml",
                 "word/document.xml": (_DOC_HEAD, unit, paragraphs, _DOC_TAIL)})


def _pdf(contents: list[bytes]) -> bytes:
    """A PDF with one page per content stream (compressed), Helvetica as /F1."""
    n = len(contents)
    objs: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n)) + b"] /Count %d >>" % n,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, content in enumerate(contents):
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                    b"/Contents %d 0 R >>" % (5 + 2 * i))
        data = zlib.compress(content, 9)
        objs.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def pdf_slow(operators: int = 400_000) -> bytes:
    """A few KB: one page whose content stream repeats a text-showing operator *operators* times."""
    return _pdf([b"BT /F1 1 Tf " + b"(a) Tj " * operators + b"ET"])


def pdf_pages(pages: int = 200, lines: int = 200) -> bytes:
    """*pages* pages of *lines* lines of ordinary text each."""
    line = b"0 -12 Td (Bright Lighting quotation, item 12345, LED panel 600x600, 40 W, FOB Ningbo) Tj "
    return _pdf([b"BT /F1 10 Tf 40 780 Td " + line * lines + b"ET" for _ in range(pages)])


ALL = {
    "xlsx-16384x1048576": (xlsx_huge_dimension, "sheet.xlsx", XLSX),
    "xlsx-30M-empty-rows": (xlsx_empty_rows, "rows.xlsx", XLSX),
    "docx-2M-paragraphs": (docx_paragraphs, "letter.docx", DOCX),
    "pdf-slow-4KB": (pdf_slow, "slow.pdf", PDF),
    "pdf-200-pages": (pdf_pages, "catalogue.pdf", PDF),
}
"""Each bomb: (builder, file name, content type)."""


def message_with(data: bytes, filename: str, ctype: str, *, subject: str = "quote",
                 sender: str = "zhang@company.test", to: str = "max@buyer.test") -> bytes:
    """A message with *data* attached as *filename*."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content("Please find the file attached.\n")
    maintype, _, subtype = ctype.partition("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
