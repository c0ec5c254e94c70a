"""Text out of attachments: .txt/.csv/.html/.eml, .docx, .xlsx, .pdf and zip archives (one level).

Each extractor returns text or raises :class:`Uninspectable`; the message model turns that
into a finding (category ``attachment``), never a silent skip. The document libraries are
imported on first use (``load_policy`` warms them up), never at import time.

Every reader streams and stops at a cap (rows and cells scanned, empty ones included;
paragraphs; pages; characters; unpacked bytes) whatever the file declares about itself: a
few KB can declare a sheet of 16384 x 1048576 cells or hold millions of empty rows. Past a
cap the attachment is ``limit`` (held, see :data:`LIMIT`), not read on. Time and memory are
bounded from outside: the gateway runs attachment scans in worker processes it kills.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Callable

from ..budget import EvaluationTimeout
from .charset import decode_bytes, html_meta_charset
from .htmltext import html_to_text

__all__ = ["ReadersNeeded", "Uninspectable", "Extracted", "SheetInfo", "extract", "warm_up", "limit", "LIMIT", "MAX_TEXT"]

MAX_TEXT = 5_000_000  # characters read per attachment
MAX_UNZIPPED = 50_000_000  # bytes read out of one archive (or one Office document's XML)
MAX_MEMBERS = 500
MAX_PDF_PAGES = 200
MAX_CELLS = 500_000  # cells scanned, empty ones included
MAX_ROWS = 200_000  # rows scanned, empty ones included
MAX_PARAGRAPHS = 200_000
LIMIT = "limit"  # the problem kind of content beyond an inspection limit

_TEXT_EXT = {".txt", ".csv", ".tsv", ".log", ".md", ".vcf", ".json", ".xml", ".ics"}
_HTML_EXT = {".html", ".htm", ".xhtml"}
_OPAQUE_EXT = {".rar", ".7z", ".doc", ".xls", ".ppt", ".gz", ".tgz", ".bz2", ".xz", ".tar", ".arj",
               ".cab", ".pptx", ".odt", ".ods", ".rtf", ".wps", ".et"}
_ENCRYPTED_TYPES = {"application/pgp-encrypted", "application/pkcs7-mime",
                    "application/x-pkcs7-mime", "application/pgp-signature+encrypted"}


class ReadersNeeded(Exception):
    """Raised instead of opening an attachment when the evaluation was asked to read none
    (``evaluate(..., readers=False)``): the caller runs it again where a reader may hang."""


class Uninspectable(Exception):
    """A part that cannot be read; ``kind`` is ``undecodable``, ``encrypted``, ``uninspected``
    (a format not looked into) or ``limit`` (beyond an inspection limit, see :func:`limit`)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def limit(name: str, detail: str) -> Uninspectable:
    """Content beyond the inspection limit *name* (``rows``, ``pages`` …): *detail* says
    which, for the audit."""
    return Uninspectable(LIMIT, f"limit {name}: {detail}")


# Not "this file cannot be read": what the readers' catch-alls pass on as it is.
_PASS_ON = (Uninspectable, EvaluationTimeout, MemoryError)


@dataclass
class SheetInfo:
    """A table found in an attachment (for the contact-spreadsheet detector)."""

    name: str
    header: list[str]
    rows: int


@dataclass
class Extracted:
    """Text of one attachment (or archive member) plus what could not be read inside it."""

    name: str
    text: str
    sheets: list[SheetInfo] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (name, kind, detail)
    is_message: bool = False  # a forwarded .eml; its raw bytes are in ``raw``
    raw: bytes = b""


def warm_up() -> None:
    """Import the document libraries (and the charset guesser) now so the first message
    does not pay for it: a cold import can take a whole evaluation budget."""
    for mod in ("openpyxl", "docx", "pypdf", "charset_normalizer"):
        try:
            __import__(mod)
        except ImportError:  # pragma: no cover - declared dependencies
            pass


def _ext(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an encrypted Office document is an OLE file
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _docx(data: bytes, check_time: Callable[[], None]) -> str:
    """The text of a .docx, streamed out of its XML (body, then headers and footers): a
    paragraph at a time, never the whole document tree."""
    if data[:8] == _OLE:
        raise Uninspectable("encrypted", "password-protected Office document")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise Uninspectable("undecodable", f"not a readable .docx ({type(e).__name__})") from e
    if "word/document.xml" not in names:
        raise Uninspectable("undecodable", "not a readable .docx (no word/document.xml)")
    parts = ["word/document.xml"] + sorted(n for n in names if n.startswith(("word/header", "word/footer"))
                                           and n.endswith(".xml"))
    out: list[str] = []
    budget = _TextBudget()
    for part in parts:
        _docx_part(zf, part, out, budget, check_time)
    return "\n".join(out)


class _TextBudget:
    """What one document has yielded so far: characters and paragraphs."""

    __slots__ = ("chars", "paragraphs")

    def __init__(self) -> None:
        self.chars = 0
        self.paragraphs = 0


def _docx_part(zf: zipfile.ZipFile, name: str, out: list[str], budget: _TextBudget,
               check_time: Callable[[], None]) -> None:
    from xml.etree.ElementTree import ParseError, iterparse  # noqa: PLC0415

    info = zf.getinfo(name)
    if info.file_size > MAX_UNZIPPED:
        raise limit("unpacked size", f"{name} larger than {MAX_UNZIPPED} bytes unpacked")
    paragraph: list[str] = []
    try:
        with zf.open(info) as f:
            for event, el in iterparse(_Capped(f, MAX_UNZIPPED, name), events=("end",)):
                tag = el.tag
                if tag == _W + "t":
                    paragraph.append(el.text or "")
                elif tag == _W + "tab" or tag == _W + "tc":
                    paragraph.append("\t")
                elif tag == _W + "p":
                    line = "".join(paragraph)
                    paragraph.clear()
                    budget.paragraphs += 1
                    budget.chars += len(line) + 1
                    if budget.paragraphs % 1024 == 0:
                        check_time()
                    if budget.paragraphs > MAX_PARAGRAPHS:
                        raise limit("paragraphs", f"document with more than {MAX_PARAGRAPHS} paragraphs")
                    if budget.chars > MAX_TEXT:
                        raise limit("characters", f"document with more than {MAX_TEXT} characters")
                    out.append(line)
                    el.clear()
                elif tag == _W + "tr":
                    el.clear()
    except (ParseError, zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise Uninspectable("undecodable", f"not a readable .docx ({type(e).__name__})") from e


class _Capped(io.RawIOBase):
    """A member of an archive read through a cap on its unpacked size (the size a zip
    declares for a member is not to be trusted)."""

    def __init__(self, f: io.BufferedIOBase, cap: int, name: str) -> None:
        self.f, self.left, self.name = f, cap, name

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(65536 if n is None or n < 0 else min(n, 65536))
        self.left -= len(data)
        if self.left < 0:
            raise limit("unpacked size", f"{self.name} larger than {MAX_UNZIPPED} bytes unpacked")
        return data


def _xlsx(data: bytes, name: str, sheets: list[SheetInfo], check_time: Callable[[], None]) -> str:
    """The cells of an .xlsx, streamed row by row. The dimensions a sheet declares are
    ignored (a few bytes can declare 16384 x 1048576 cells); rows and cells are counted as
    they are read, empty ones included."""
    if data[:8] == _OLE:
        raise Uninspectable("encrypted", "password-protected Office document")
    import openpyxl  # noqa: PLC0415

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _PASS_ON:
        raise
    except Exception as e:  # noqa: BLE001
        raise Uninspectable("undecodable", f"not a readable .xlsx ({type(e).__name__})") from e
    lines: list[str] = []
    cells = rows_scanned = chars = 0
    try:
        for ws in wb.worksheets:
            if hasattr(ws, "reset_dimensions"):
                ws.reset_dimensions()  # only the cells that are there
            header: list[str] = []
            rows = 0
            try:
                for row in ws.iter_rows(values_only=True):
                    rows_scanned += 1
                    cells += len(row)
                    if rows_scanned % 1024 == 0:
                        check_time()
                    if rows_scanned > MAX_ROWS:
                        raise limit("rows", f"spreadsheet with more than {MAX_ROWS} rows")
                    if cells > MAX_CELLS:
                        raise limit("cells", f"spreadsheet larger than {MAX_CELLS} cells")
                    values = ["" if v is None else str(v) for v in row]
                    if not any(values):
                        continue
                    if not header:
                        header = values
                    rows += 1
                    line = "\t".join(values)
                    chars += len(line) + 1
                    if chars > MAX_TEXT:
                        raise limit("characters", f"spreadsheet with more than {MAX_TEXT} characters")
                    lines.append(line)
            except _PASS_ON:
                raise
            except Exception as e:  # noqa: BLE001 - a broken sheet: cannot read
                raise Uninspectable("undecodable", f"not a readable .xlsx ({type(e).__name__})") from e
            sheets.append(SheetInfo(f"{name}:{ws.title}", header, max(rows - 1, 0)))
    finally:
        wb.close()
    return "\n".join(lines)


def _pdf(data: bytes, check_time: Callable[[], None]) -> str:
    """The text of a PDF, page by page, up to :data:`MAX_PDF_PAGES` pages and
    :data:`MAX_TEXT` characters (the time budget is checked between pages)."""
    import pypdf  # noqa: PLC0415
    import logging  # noqa: PLC0415

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise Uninspectable("encrypted", "password-protected PDF")
            except Uninspectable:
                raise
            except Exception as e:  # noqa: BLE001
                raise Uninspectable("encrypted", "password-protected PDF") from e
        pages = reader.pages
        if len(pages) > MAX_PDF_PAGES:
            raise limit("pages", f"PDF with more than {MAX_PDF_PAGES} pages")
        out: list[str] = []
        chars = 0
        for page in pages:
            check_time()
            text = page.extract_text() or ""
            chars += len(text) + 1
            if chars > MAX_TEXT:
                raise limit("characters", f"PDF with more than {MAX_TEXT} characters")
            out.append(text)
        return "\n".join(out)
    except _PASS_ON:
        raise
    except Exception as e:  # noqa: BLE001
        if type(e).__name__ == "LimitReachedError":  # pypdf's own caps (decompressed size …)
            raise limit("pdf", f"PDF beyond the reader's limits ({e})"[:300]) from e
        raise Uninspectable("undecodable", f"not a readable PDF ({type(e).__name__})") from e


def _csv_sheet(text: str, name: str) -> SheetInfo | None:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    first = lines[0]
    sep = "\t" if first.count("\t") >= first.count(",") else ","
    if first.count(sep) < 1:
        return None
    return SheetInfo(name, [c.strip().strip('"') for c in first.split(sep)], len(lines) - 1)


def extract(
    name: str,
    content_type: str,
    data: bytes,
    *,
    declared_charset: str | None = None,
    in_archive: bool = False,
    check_time: Callable[[], None] = lambda: None,
) -> list[Extracted]:
    """Text of one attachment; a zip yields one entry per member (members are not unzipped
    further). Raises :class:`Uninspectable` when the attachment itself cannot be read."""
    ext = _ext(name)
    ctype = content_type.lower()
    if ctype in _ENCRYPTED_TYPES or ext in (".pgp", ".gpg", ".p7m"):
        raise Uninspectable("encrypted", "encrypted content")
    if ext == ".zip" or ctype in ("application/zip", "application/x-zip-compressed"):
        if in_archive:
            raise limit("nested archives", "archive inside an archive")
        return _zip(name, data, check_time)
    if ext == ".eml" or ctype == "message/rfc822":
        return [Extracted(name, "", is_message=True, raw=data)]
    if ext in _HTML_EXT or ctype == "text/html":
        text, ok = decode_bytes(data, declared_charset or html_meta_charset(data))
        if not ok:
            raise Uninspectable("undecodable", "text in no known charset")
        return [Extracted(name, html_to_text(text)[:MAX_TEXT])]
    if ext == ".docx" or "wordprocessingml" in ctype:
        return [Extracted(name, _docx(data, check_time))]
    if ext in (".xlsx", ".xlsm") or "spreadsheetml" in ctype:
        sheets: list[SheetInfo] = []
        text = _xlsx(data, name, sheets, check_time)
        return [Extracted(name, text, sheets=sheets)]
    if ext == ".pdf" or ctype == "application/pdf":
        return [Extracted(name, _pdf(data, check_time))]
    if ext in _TEXT_EXT or ctype.startswith("text/"):
        text, ok = decode_bytes(data, declared_charset)
        if not ok:
            raise Uninspectable("undecodable", "text in no known charset")
        out = Extracted(name, text[:MAX_TEXT])
        if ext in (".csv", ".tsv") or ctype in ("text/csv", "text/tab-separated-values"):
            sheet = _csv_sheet(text, name)
            if sheet is not None:
                out.sheets.append(sheet)
        return [out]
    if ext in _OPAQUE_EXT:
        raise Uninspectable("uninspected", f"{ext} files cannot be inspected")
    return []  # images, audio and other parts that carry no text


def _zip(name: str, data: bytes, check_time: Callable[[], None]) -> list[Extracted]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise Uninspectable("undecodable", f"not a readable zip ({e})") from e
    if len(infos) > MAX_MEMBERS:
        raise limit("archive members", f"archive with more than {MAX_MEMBERS} members")
    out: list[Extracted] = []
    problems: list[tuple[str, str, str]] = []
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        member = f"{name}/{info.filename}"
        if info.flag_bits & 0x1:
            problems.append((member, "encrypted", "password-protected archive member"))
            continue
        total += info.file_size
        if total > MAX_UNZIPPED:
            problems.append((member, LIMIT, f"limit unpacked size: archive larger than {MAX_UNZIPPED} bytes unpacked"))
            break
        check_time()
        try:
            raw = zf.read(info)
        except RuntimeError as e:  # encrypted without the flag, etc.
            problems.append((member, "encrypted", str(e)))
            continue
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
            problems.append((member, "undecodable", f"cannot unpack ({e})"))
            continue
        try:
            out.extend(extract(member, "application/octet-stream", raw, in_archive=True,
                               check_time=check_time))
        except Uninspectable as e:
            problems.append((member, e.kind, e.detail))
    if problems:
        if not out:
            out.append(Extracted(name, ""))
        out[0].problems.extend(problems)
    return out
