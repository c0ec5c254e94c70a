"""Text out of attachments: .txt/.csv/.html/.eml, .docx, .xlsx, .pdf and zip archives (one level).

Each extractor returns text or raises :class:`Uninspectable`; the message model turns that
into a finding (category ``attachment``), never a silent skip. The document libraries are
imported on first use (``load_policy`` warms them up), never at import time.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Callable

from .charset import decode_bytes
from .htmltext import html_to_text

__all__ = ["Uninspectable", "Extracted", "SheetInfo", "extract", "warm_up", "MAX_TEXT"]

MAX_TEXT = 5_000_000  # characters kept per attachment
MAX_UNZIPPED = 50_000_000  # bytes read out of one archive
MAX_MEMBERS = 500
MAX_PDF_PAGES = 200
MAX_CELLS = 500_000

_TEXT_EXT = {".txt", ".csv", ".tsv", ".log", ".md", ".vcf", ".json", ".xml", ".ics"}
_HTML_EXT = {".html", ".htm", ".xhtml"}
_OPAQUE_EXT = {".rar", ".7z", ".doc", ".xls", ".ppt", ".gz", ".tgz", ".bz2", ".xz", ".tar", ".arj",
               ".cab", ".pptx", ".odt", ".ods", ".rtf", ".wps", ".et"}
_ENCRYPTED_TYPES = {"application/pgp-encrypted", "application/pkcs7-mime",
                    "application/x-pkcs7-mime", "application/pgp-signature+encrypted"}


class Uninspectable(Exception):
    """A part that cannot be read; ``kind`` is ``undecodable``, ``encrypted`` or ``uninspected``."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


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


def _docx(data: bytes) -> str:
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise Uninspectable("encrypted", "password-protected Office document")
    import docx  # noqa: PLC0415

    try:
        doc = docx.Document(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - any library failure means "cannot read"
        raise Uninspectable("undecodable", f"not a readable .docx ({type(e).__name__})") from e
    out = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            out.append("\t".join(c.text for c in row.cells))
    for section in doc.sections:
        for part in (section.header, section.footer):
            out.extend(p.text for p in part.paragraphs)
    return "\n".join(out)


def _xlsx(data: bytes, name: str, sheets: list[SheetInfo]) -> str:
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise Uninspectable("encrypted", "password-protected Office document")
    import openpyxl  # noqa: PLC0415

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001
        raise Uninspectable("undecodable", f"not a readable .xlsx ({type(e).__name__})") from e
    lines: list[str] = []
    cells = 0
    try:
        for ws in wb.worksheets:
            header: list[str] = []
            rows = 0
            for row in ws.iter_rows(values_only=True):
                values = ["" if v is None else str(v) for v in row]
                if not any(values):
                    continue
                if not header:
                    header = values
                rows += 1
                cells += len(values)
                lines.append("\t".join(values))
                if cells > MAX_CELLS:
                    raise Uninspectable("uninspected", f"spreadsheet larger than {MAX_CELLS} cells")
            sheets.append(SheetInfo(f"{name}:{ws.title}", header, max(rows - 1, 0)))
    finally:
        wb.close()
    return "\n".join(lines)


def _pdf(data: bytes) -> str:
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
            raise Uninspectable("uninspected", f"PDF with more than {MAX_PDF_PAGES} pages")
        return "\n".join((p.extract_text() or "") for p in pages)
    except Uninspectable:
        raise
    except Exception as e:  # noqa: BLE001
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
            raise Uninspectable("uninspected", "archive inside an archive")
        return _zip(name, data, check_time)
    if ext == ".eml" or ctype == "message/rfc822":
        return [Extracted(name, "", is_message=True, raw=data)]
    if ext in _HTML_EXT or ctype == "text/html":
        text, ok = decode_bytes(data, declared_charset)
        if not ok:
            raise Uninspectable("undecodable", "text in no known charset")
        return [Extracted(name, html_to_text(text)[:MAX_TEXT])]
    if ext == ".docx" or "wordprocessingml" in ctype:
        return [Extracted(name, _docx(data)[:MAX_TEXT])]
    if ext in (".xlsx", ".xlsm") or "spreadsheetml" in ctype:
        sheets: list[SheetInfo] = []
        text = _xlsx(data, name, sheets)
        return [Extracted(name, text[:MAX_TEXT], sheets=sheets)]
    if ext == ".pdf" or ctype == "application/pdf":
        return [Extracted(name, _pdf(data)[:MAX_TEXT])]
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
        raise Uninspectable("uninspected", f"archive with more than {MAX_MEMBERS} members")
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
            problems.append((member, "uninspected", "archive too large when unpacked"))
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
