"""A byte-offset view of a MIME message, for surgery that leaves untouched parts byte-identical.

The signature engine changes one or two text parts of a message that may carry megabytes of
attachments. Parsing the whole message into ``email.message`` objects and serialising it again
copies every attachment several times and may re-fold headers the client wrote. Instead we scan
only the structure: each :class:`Part` knows where its header block and body lie in the original
bytes; only the small header blocks are parsed (as :mod:`email` parses them), and the result is built by
splicing replacement bytes between ``memoryview`` slices of the original, so the big parts are
copied once, into the output.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from dataclasses import dataclass, field
from email.message import Message

from mailwarden.rules.mimeparse import parse_headers

MAX_DEPTH = 20
MAX_LINE = 998
_ASCII_BYTES = bytes(range(128))


@dataclass(eq=False)
class Part:
    """One MIME entity: ``raw[start:body_start]`` are its headers (and the blank line),
    ``raw[body_start:end]`` its body. ``children`` only for multipart/*."""

    start: int
    header_end: int
    body_start: int
    end: int
    headers: Message
    parent: Part | None = None
    children: list[Part] = field(default_factory=list)
    close_end: int | None = None  # multipart: offset just after the close delimiter line

    @property
    def ctype(self) -> str:
        return self.headers.get_content_type()

    @property
    def maintype(self) -> str:
        return self.ctype.split("/", 1)[0]

    def param(self, name: str) -> str | None:
        value = self.headers.get_param(name)
        if isinstance(value, tuple):  # RFC 2231 encoded parameter
            value = value[2]
        return None if value is None else str(value)

    @property
    def cte(self) -> str:
        return str(self.headers.get("content-transfer-encoding", "7bit")).strip().lower()

    @property
    def disposition(self) -> str:
        return str(self.headers.get("content-disposition", "")).split(";", 1)[0].strip().lower()

    def walk(self) -> list[Part]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def newline_of(raw: bytes) -> bytes:
    """The line ending the message uses (CRLF on the wire, often LF in .eml files)."""
    i = raw.find(b"\n")
    return b"\r\n" if i > 0 and raw[i - 1 : i] == b"\r" else b"\n"


def _split_headers(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """(header_end, body_start): header_end includes the last header line's line ending."""
    if raw.startswith(b"\r\n", start):
        return start, start + 2
    if raw.startswith(b"\n", start):
        return start, start + 1
    i = raw.find(b"\n\r\n", start, end)
    j = raw.find(b"\n\n", start, end if i == -1 else i)  # bounded: CRLF mail has no LF LF
    if i == -1 and j == -1:
        return end, end
    if j == -1 or (i != -1 and i < j):
        return i + 1, i + 3
    return j + 1, j + 2


def _part_at(raw: bytes, start: int, end: int, parent: Part | None, depth: int) -> Part:
    header_end, body_start = _split_headers(raw, start, end)
    headers = parse_headers(raw[start:header_end])
    part = Part(start, header_end, body_start, end, headers, parent)
    if part.maintype == "multipart" and depth < MAX_DEPTH:
        boundary = part.param("boundary")
        if boundary:
            _scan_children(raw, part, boundary.encode("ascii", "surrogateescape"), depth)
    return part


def _scan_children(raw: bytes, part: Part, boundary: bytes, depth: int) -> None:
    delim = b"--" + boundary
    pos, end = part.body_start, part.end
    child_start: int | None = None
    while True:
        i = raw.find(delim, pos, end)
        if i == -1:
            break
        after = i + len(delim)
        at_line_start = i == part.body_start or raw[i - 1 : i] == b"\n"
        closing = raw.startswith(b"--", after)
        rest_end = raw.find(b"\n", after, end)
        rest_end = end if rest_end == -1 else rest_end + 1
        tail = raw[after + (2 if closing else 0) : rest_end].strip()
        if not at_line_start or tail:
            pos = after
            continue
        # The line ending before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
        body_end = i - 2 if raw[i - 2 : i] == b"\r\n" else i - 1 if i > part.body_start else i
        if child_start is not None:
            part.children.append(_part_at(raw, child_start, max(body_end, child_start), part, depth + 1))
        if closing:
            part.close_end = rest_end
            return
        child_start = pos = rest_end
    if child_start is not None:  # no close delimiter: the last part runs to the end
        part.children.append(_part_at(raw, child_start, end, part, depth + 1))


def parse(raw: bytes) -> Part:
    """Scan the MIME structure of ``raw``. message/rfc822 parts are not descended into."""
    return _part_at(raw, 0, len(raw), None, 0)


# ------------------------------------------------------------------ bodies


def decode_body(raw: bytes, part: Part) -> bytes:
    data = raw[part.body_start : part.end]
    cte = part.cte
    if cte == "base64":
        return binascii.a2b_base64(data)
    if cte == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


def _normalise_charset(name: str | None) -> str:
    name = (name or "us-ascii").strip().strip('"').lower()
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name


# Decode with a superset of what is declared: mail labelled gb2312 is usually GBK, big5 is cp950.
_DECODE_AS = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs", "cp950": "big5hkscs",
              "ascii": "cp1252", "iso8859-1": "cp1252", "euc_kr": "cp949", "shift_jis": "cp932"}


def decode_text(data: bytes, charset: str | None) -> tuple[str, str] | None:
    """Decode a text body: (text, codec name), or None if the charset is unknown to Python.

    Undecodable bytes become surrogates so they can be written back unchanged.
    """
    declared = _normalise_charset(charset)
    codec = _DECODE_AS.get(declared, declared)
    try:
        return data.decode(codec, "surrogateescape"), declared
    except LookupError:
        return None


def can_encode(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def transfer_encode(data: bytes, cte: str, nl: bytes) -> tuple[bytes, str]:
    """Encode a body for the wire, keeping the part's encoding where it is still valid.

    Returns (encoded bytes, the Content-Transfer-Encoding actually used).
    """
    if cte not in ("base64", "quoted-printable"):
        lines_ok = len(data) <= MAX_LINE or max(map(len, data.split(b"\n"))) <= MAX_LINE + 1  # +1: CR
        ascii_ok = data.isascii()
        if lines_ok and ascii_ok:
            return _with_newline(data, nl), cte if cte in ("7bit", "8bit") else "7bit"
        if lines_ok and cte in ("8bit", "binary"):
            return _with_newline(data, nl), "8bit"
        # Mostly-ASCII text stays readable as quoted-printable; CJK text is shorter in base64.
        high = len(data.translate(None, _ASCII_BYTES))
        cte = "quoted-printable" if high * 5 < len(data) else "base64"
    if cte == "base64":
        canon = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return _with_newline(base64.encodebytes(canon), nl), cte
    encoded = binascii.b2a_qp(data.replace(b"\r\n", b"\n"), quotetabs=False, istext=True, header=False)
    return _with_newline(encoded, nl), cte


def _with_newline(data: bytes, nl: bytes) -> bytes:
    data = data.replace(b"\r\n", b"\n")
    return data if nl == b"\n" else data.replace(b"\n", nl)


# ------------------------------------------------------------------ headers


def _field_spans(block: bytes) -> list[tuple[bytes, int, int]]:
    """(lower-case name, start, end) of each header field, continuation lines included."""
    spans: list[tuple[bytes, int, int]] = []
    pos = 0
    while pos < len(block):
        nxt = block.find(b"\n", pos)
        nxt = len(block) if nxt == -1 else nxt + 1
        if block[pos : pos + 1] in (b" ", b"\t") and spans:
            name, s, _ = spans[-1]
            spans[-1] = (name, s, nxt)
        else:
            colon = block.find(b":", pos, nxt)
            name = block[pos:colon].strip().lower() if colon != -1 else b""
            spans.append((name, pos, nxt))
        pos = nxt
    return spans


def edit_headers(block: bytes, changes: dict[str, str | None], nl: bytes) -> bytes:
    """Replace (or add, or with None remove) header fields in a raw header block.

    Fields not named keep their exact bytes. New values must be ASCII and already folded.
    """
    out: list[bytes] = []
    done: set[str] = set()
    for name, s, e in _field_spans(block):
        key = name.decode("ascii", "replace")
        if key in changes:
            if key not in done and changes[key] is not None:
                out.append(f"{_canonical(key)}: {changes[key]}".encode("ascii") + nl)
            done.add(key)
        else:
            out.append(block[s:e])
    for key, value in changes.items():
        if key not in done and value is not None:
            out.append(f"{_canonical(key)}: {value}".encode("ascii") + nl)
    return b"".join(out)


def split_header_block(block: bytes, keep: set[str]) -> tuple[bytes, bytes]:
    """Split a header block into (fields named in ``keep``, all the others), bytes unchanged."""
    mine: list[bytes] = []
    rest: list[bytes] = []
    for name, s, e in _field_spans(block):
        (mine if name.decode("ascii", "replace") in keep else rest).append(block[s:e])
    return b"".join(mine), b"".join(rest)


def _canonical(key: str) -> str:
    if key == "mime-version":
        return "MIME-Version"
    if key == "content-id":
        return "Content-ID"
    return "-".join(w.capitalize() for w in key.split("-"))


def content_type_value(part: Part, charset: str | None) -> str:
    """The part's Content-Type value with its charset parameter set to ``charset``."""
    msg = Message()
    msg["Content-Type"] = part.headers.get("content-type", "text/plain")
    if charset is not None:
        msg.set_param("charset", charset)
    value = str(msg["Content-Type"])
    return value if value.isascii() else value.encode("ascii", "replace").decode("ascii")
