"""The message as the detectors read it: every piece of its text, decoded, with where it came from.

A message (its parsed tree, see :mod:`.model`) becomes a list of :class:`Segment` s. Each says where its text was found
(``body``, ``html``, ``subject``, ``header:From``, ``attachment:quote.xlsx``, ``quoted``,
``signature``) and whether it is the operator's own text (``region="new"``), quoted history
(``"quoted"``) or the company signature (``"signature"``). Parts that cannot be read become
:class:`Problem` s. Parsing never raises on malformed input.
"""

from __future__ import annotations

import email.header
import email.utils
from dataclasses import dataclass, field
from email.message import Message
from typing import Callable

from ..budget import Deadline
from .attachments import LIMIT, Extracted, ReadersNeeded, SheetInfo, Uninspectable, extract
from .charset import decode_bytes, html_meta_charset
from .htmltext import html_to_text, split_signature_html
from .mimeparse import parse_bytes
from .quotes import find_quote_start_html, find_signature_text, quoted_spans_text
from .structure import Part, scan

__all__ = ["Segment", "Problem", "ParsedMessage", "build_segments", "without_media", "MAX_DEPTH",
           "STRIP_MEDIA_ABOVE"]

MAX_DEPTH = 8  # nesting of multiparts and attached messages
MAX_PARTS = 1000
_ADDRESS_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To", "Sender")

# Above this size, pictures, sound and video are cut out before the stdlib parser sees the
# message: they carry no text, and parsing 50 MB of JPEG costs seconds and ~8x its size in memory.
STRIP_MEDIA_ABOVE = 2_000_000
_MEDIA = ("image/", "audio/", "video/", "font/")
_INSPECTED_EXTENSIONS = (".txt", ".csv", ".htm", ".html", ".eml", ".docx", ".xlsx", ".pdf", ".zip")


def without_media(message: bytes, structure: Part | None = None) -> bytes:
    """``message`` with the bodies of large media parts removed (their headers stay).

    A part only counts as media when its type says so *and* its file name does not claim a
    type the attachment readers inspect, so a renamed spreadsheet is still read.
    *structure*: the message's structure, when already known (:func:`.structure.scan`).
    """
    try:
        cuts = []
        for part in (structure if structure is not None else scan(message)).walk():
            if part.children or part.end - part.body_start < 64 * 1024:
                continue
            ctype = part.headers.get_content_type().lower()
            name = (part.headers.get_filename() or "").lower()
            if ctype.startswith(_MEDIA) and not name.endswith(_INSPECTED_EXTENSIONS):
                cuts.append((part.body_start, part.end))
    except Exception:  # noqa: BLE001 - a structure the scanner cannot read: parse it all
        return message
    if not cuts:
        return message
    out, pos = [], 0
    for start, end in sorted(cuts):
        out.append(message[pos:start])
        pos = end
    out.append(message[pos:])
    return b"".join(out)


@dataclass
class Segment:
    """A piece of decoded text and where it was found."""

    text: str
    where: str
    region: str = "new"  # "new" | "quoted" | "signature"


@dataclass
class Problem:
    """A part that could not be decoded or inspected."""

    name: str
    kind: str  # "undecodable" | "encrypted" | "uninspected" | "limit"
    detail: str


@dataclass
class ParsedMessage:
    """Everything the detectors look at."""

    segments: list[Segment] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sheets: list[SheetInfo] = field(default_factory=list)
    addresses: dict[str, list[str]] = field(default_factory=dict)  # header name → addresses
    has_history: bool = False  # quoted history, a forwarded block or an attached message


SignatureCheck = Callable[[str], bool]


def decode_header_value(value: str) -> str:
    """An unfolded header value with encoded words and raw 8-bit bytes decoded.

    The compat32 parser keeps headers as they came (8-bit bytes as surrogate escapes); it is
    several times faster than ``email.policy.default``'s structured headers, which matters
    because rules run while the SMTP client waits.
    """
    value = value.replace("\r", "").replace("\n", "")
    if not value.isascii() and any("\udc80" <= c <= "\udcff" for c in value):
        value, _ok = decode_bytes(value.encode("utf-8", "surrogateescape"), None)
    if "=?" not in value:
        return value.strip()
    try:
        chunks = email.header.decode_header(value)
    except Exception:  # noqa: BLE001 - a malformed encoded word is kept as written
        return value.strip()
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset)[0])
        else:
            out.append(chunk)
    return "".join(out).strip()


def _header_str(msg: Message, name: str) -> str:
    lname = name.lower()
    try:
        raw = [v for k, v in msg.raw_items() if k.lower() == lname]  # type: ignore[attr-defined]
        return " ".join(decode_header_value(str(v)) for v in raw)
    except Exception:  # noqa: BLE001 - a malformed header must not stop the check
        return ""


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if not name:
        return None
    name = str(name)
    return decode_header_value(name) if "=?" in name or not name.isascii() else name


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _charset(part: Message, html: bytes | None = None) -> str | None:
    """The part's declared charset; for HTML (*html*: its bytes) without one, the charset its
    ``<meta>`` tag names."""
    try:
        cs = part.get_content_charset()
    except Exception:  # noqa: BLE001
        cs = None
    if not cs and html is not None:
        cs = html_meta_charset(html)
    return str(cs) if cs else None


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"


class _Builder:
    def __init__(self, is_company_signature: SignatureCheck, deadline: Deadline, readers: bool = True) -> None:
        self.out = ParsedMessage()
        self.sig_ok = is_company_signature
        self.deadline = deadline
        self.readers = readers
        self.parts = 0

    # ---- bodies
    def text_body(self, text: str, where: str = "body") -> None:
        spans = quoted_spans_text(text)
        if spans:
            self.out.has_history = True
        pos = 0
        first_quote = spans[0][0] if spans else len(text)
        sig = find_signature_text(text, len(text[:first_quote].rstrip()))
        if sig is not None and not self.sig_ok(text[sig:first_quote]):
            sig = None
        for qs, qe in [*spans, (len(text), len(text))]:
            new = text[pos:qs]
            if sig is not None and pos <= sig < qs:
                self._add(new[: sig - pos], where, "new")
                self._add(new[sig - pos :], "signature", "signature")
            else:
                self._add(new, where, "new")
            self._add(text[qs:qe], "quoted", "quoted")
            pos = qe

    def html_body(self, source: str, where: str = "html") -> None:
        q = find_quote_start_html(source)
        new, quoted = (source, "") if q is None else (source[:q], source[q:])
        if quoted:
            self.out.has_history = True
        sig = split_signature_html(new)
        if sig is not None:
            sig_text = html_to_text(new[sig[0] : sig[1]])
            if self.sig_ok(sig_text):
                self._add(sig_text, "signature", "signature")
                new = new[: sig[0]] + new[sig[1] :]
        new_text = html_to_text(new)
        # Some clients (and hand-made HTML) quote in plain text inside the HTML.
        if not quoted and quoted_spans_text(new_text):
            self.text_body(new_text, where)
        else:
            self._add(new_text, where, "new")
        if quoted:
            self._add(html_to_text(quoted), "quoted", "quoted")

    def _add(self, text: str, where: str, region: str) -> None:
        if text and text.strip():
            self.out.segments.append(Segment(text, where, region))

    # ---- MIME tree
    def walk(self, part: Message, depth: int, attachment_of: str | None) -> None:
        self.deadline.check()
        self.parts += 1
        if self.parts > MAX_PARTS:
            if self.parts == MAX_PARTS + 1:
                self.out.problems.append(Problem("message", LIMIT, f"limit parts: more than {MAX_PARTS} MIME parts"))
            return
        if depth > MAX_DEPTH:
            self.out.problems.append(Problem("message", LIMIT, f"limit depth: MIME nesting deeper than {MAX_DEPTH}"))
            return
        ctype = _content_type(part)
        name = _filename(part)
        if ctype == "multipart/encrypted":
            self.out.problems.append(Problem(name or "message", "encrypted", "encrypted message"))
            return
        if ctype == "message/rfc822" or (part.is_multipart() and ctype.startswith("message/")):
            inner = part.get_payload()
            label = name or "message.eml"
            self.out.has_history = True
            if isinstance(inner, list):
                for sub in inner:
                    if isinstance(sub, Message):
                        self.attached_message(sub, label, depth + 1)
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for sub in payload:
                    if isinstance(sub, Message):
                        self.walk(sub, depth + 1, attachment_of)
            return
        try:
            disposition = part.get_content_disposition()
        except Exception:  # noqa: BLE001
            disposition = None
        is_attachment = attachment_of is not None or disposition == "attachment" or (
            name is not None and ctype not in ("text/plain", "text/html")
        ) or (name is not None and disposition != "inline")
        if attachment_of is None and not is_attachment and ctype in ("text/plain", "text/html"):
            payload = _payload(part)
            text, ok = decode_bytes(payload, _charset(part, payload if ctype == "text/html" else None))
            if not ok:
                self.out.problems.append(Problem(ctype, "undecodable", "text in no known charset"))
            if ctype == "text/html":
                self.html_body(text)
            else:
                self.text_body(text)
            return
        if ctype.startswith(("image/", "audio/", "video/", "font/")) or ctype in (
            "application/pgp-signature", "application/pkcs7-signature",
            "application/x-pkcs7-signature",
        ):
            return
        label = name or f"part.{ctype.split('/')[-1]}"
        if attachment_of is not None:
            label = f"{attachment_of}/{label}"
        self.attachment(label, ctype, _payload(part), _charset(part), depth)

    def attachment(self, label: str, ctype: str, data: bytes, charset: str | None, depth: int) -> None:
        if not self.readers:
            raise ReadersNeeded(label)
        try:
            items = extract(label, ctype, data, declared_charset=charset, check_time=self.deadline.check)
        except Uninspectable as e:
            self.out.problems.append(Problem(label, e.kind, e.detail))
            return
        for item in items:
            self._extracted(item, depth)

    def _extracted(self, item: Extracted, depth: int) -> None:
        for pname, kind, detail in item.problems:
            self.out.problems.append(Problem(pname, kind, detail))
        self.out.sheets.extend(item.sheets)
        if item.is_message:
            self.out.has_history = True
            try:
                inner = parse_bytes(item.raw)
            except Exception:  # noqa: BLE001
                self.out.problems.append(Problem(item.name, "undecodable", "unparseable message"))
                return
            self.attached_message(inner, item.name, depth + 1)
            return
        self._add(item.text, f"attachment:{item.name}", "new")

    def attached_message(self, msg: Message, label: str, depth: int) -> None:
        """A forwarded message: all its text counts as an attachment of the operator's."""
        where = f"attachment:{label}"
        sub = _Builder(self.sig_ok, self.deadline, self.readers)
        sub.parts = self.parts
        subject = _header_str(msg, "Subject")
        if subject:
            sub._add(subject, where, "new")
        sub.walk(msg, depth, None)
        self.parts = sub.parts
        for seg in sub.out.segments:
            self.out.segments.append(Segment(seg.text, where, "new"))
        self.out.problems.extend(sub.out.problems)
        self.out.sheets.extend(sub.out.sheets)


_address_memo: dict[str, tuple[tuple[str, ...], str]] = {}


def _address_list(raw: str) -> tuple[tuple[str, ...], str]:
    """The addresses (lower case) and the display names (joined) in an address header.

    Memoised for short values: a gateway sees the same From/To lines over and over, and the
    stdlib address parser is pure Python. Shared by the threads that evaluate: the value is a
    pure function of the key and each step is one dict operation (see
    :mod:`mailwarden.rules.memo`)."""
    got = _address_memo.get(raw)
    if got is None:
        try:
            pairs = email.utils.getaddresses([raw])
        except Exception:  # noqa: BLE001
            pairs = []
        got = (tuple(addr.strip().lower() for _, addr in pairs if "@" in addr),
               " ".join(n for n, _ in pairs if n))
        if len(raw) <= 1000:
            if len(_address_memo) >= 2048:
                _address_memo.clear()
            _address_memo[raw] = got
    return got


def build_segments(tree: Message | None, message: bytes, *, is_company_signature: SignatureCheck,
                   deadline: Deadline, readers: bool = True) -> ParsedMessage:
    """The segments of the parsed *tree* of *message* (None: the parser failed, and the bytes
    are read as one text body); never raises on malformed input. ``readers=False``:
    :class:`~.attachments.ReadersNeeded` instead of reading an attachment."""
    b = _Builder(is_company_signature, deadline, readers)
    if tree is None:
        text, _ = decode_bytes(message, None)
        b.text_body(text)
        b.out.problems.append(Problem("message", "undecodable", "unparseable MIME structure"))
        return b.out
    msg = tree
    subject = _header_str(msg, "Subject")
    if subject:
        b._add(subject, "subject", "new")
    for h in _ADDRESS_HEADERS:
        raw = _header_str(msg, h)
        if not raw:
            continue
        addresses, names = _address_list(raw)
        b.out.addresses[h] = list(addresses)
        if names and h in ("From", "Reply-To", "Sender"):
            b._add(names, f"header:{h}", "new")
        if h == "Reply-To":
            b._add(raw, "header:Reply-To", "new")
    b.walk(msg, 0, None)
    return b.out
