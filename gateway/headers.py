"""Header fields as the gateway reads and writes them: the header block split from the body,
RFC 2047 values, and the gateway's own tags (``X-Mailwarden-*`` fields, ``$mw_`` keywords)
that submission puts on a message and delivery reads back.  Pure functions of bytes, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from email.header import decode_header, make_header

HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")
LOOP_HEADER = b"X-Mailwarden-Loop"
NOTICE_HEADER = "X-Mailwarden-Notice"


@dataclass
class Headers:
    """The header block of a message, as raw (name, full-field-bytes) pairs."""

    fields: list[tuple[bytes, bytes]]
    body_offset: int

    def get(self, name: str) -> str | None:
        key = name.lower().encode()
        for n, raw in self.fields:
            if n == key:
                value = raw.split(b":", 1)[1].strip().decode("utf-8", "replace")
                return re.sub(r"\r?\n[ \t]+", " ", value)
        return None

    def get_all(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [raw.split(b":", 1)[1].strip().decode("utf-8", "replace") for n, raw in self.fields if n == key]


def split_headers(data: bytes) -> Headers:
    """Split the header fields from the body.

    Tolerant: a message with no header block (or one that starts with
    garbage) yields no fields and the whole input as body.
    """
    fields: list[tuple[bytes, bytes]] = []
    pos = 0
    n = len(data)
    current_start = -1
    current_name = b""
    fields_end = 0
    while pos < n:
        end = data.find(b"\n", pos)
        end = n if end < 0 else end + 1
        line = data[pos:end]
        if line in (b"\r\n", b"\n"):
            fields_end = pos
            pos = end
            break
        if line[:1] in (b" ", b"\t") and current_start >= 0:
            pos = fields_end = end
            continue
        m = HEADER_LINE.match(line)
        if not m:
            fields_end = pos
            break
        if current_start >= 0:
            fields.append((current_name, data[current_start:pos]))
        current_start = pos
        current_name = line.split(b":", 1)[0].strip().lower()
        pos = end
        fields_end = pos
    if current_start >= 0:
        fields.append((current_name, data[current_start:fields_end]))
    return Headers(fields, pos)


def decoded(value: str | None) -> str:
    """An RFC 2047 header value as text; never raises."""
    if not value:
        return ""
    if "=?" not in value:
        return value  # nothing encoded: what make_header(decode_header()) would give back
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - HeaderParseError, bad charsets, broken base64: the value as written
        return value


def header_field(name: str, value: str) -> bytes:
    # Values here are built from checked, single-line parts; CR/LF can never
    # reach them (header injection), but strip once more to be sure.
    value = value.replace("\r", " ").replace("\n", " ")
    return f"{name}: {value}\r\n".encode("utf-8")


def tag_headers(operator: str, operator_name: str, customers: list[tuple[int, str]], ref: str = "") -> bytes:
    """The X-Mailwarden-Operator / -Customer fields for the Sent copy, and ``X-Mailwarden-Ref``:
    the gateway's own name for the message, by which a copy already in Sent is found again."""
    op = make_header_value(f"{operator} ({operator_name})")
    out = [header_field("X-Mailwarden-Operator", op)]
    for cid, name in customers:
        out.append(header_field("X-Mailwarden-Customer", make_header_value(f"{cid} {name}")))
    if ref:
        out.append(header_field("X-Mailwarden-Ref", ref))
    return b"".join(out)


_REF = re.compile(r"^X-Mailwarden-Ref: ([A-Za-z0-9._-]+)\r?$\n?", re.M | re.I)


def sent_ref(sent_headers: str) -> str | None:
    """The ``X-Mailwarden-Ref`` of a Sent copy's tag headers (None for copies spooled before it)."""
    m = _REF.search(sent_headers)
    return m.group(1) if m else None


def without_ref(sent_headers: str) -> str:
    """The tag headers less the ref (what a customer may see)."""
    return _REF.sub("", sent_headers)


def make_header_value(text: str) -> str:
    """ASCII as is; anything else RFC 2047-encoded (UTF-8)."""
    text = text.replace("\r", " ").replace("\n", " ")
    try:
        text.encode("ascii")
        return text
    except UnicodeEncodeError:
        from email.header import Header

        return Header(text, "utf-8").encode()


def keyword(prefix: str, value: str) -> str:
    """An IMAP keyword (atom) such as ``$mw_op_zhang``; unsafe characters become ``_``."""
    return "$mw_" + prefix + "_" + re.sub(r"[^A-Za-z0-9._-]", "_", value)[:60]


def loop_token(key: bytes, message_id: str) -> str:
    """The token of ``X-Mailwarden-Loop``: proof, keyed with the store's key, that the gateway
    sent the message with this Message-ID (a mail loop is refused by it; the sync files by it)."""
    return hmac.new(key, message_id.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:24]


def _seal(key: bytes, message_id: str, operator: str) -> str:
    return hmac.new(key, f"notice\0{message_id}\0{operator}".encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:24]


def notice_field(*, key: bytes, kind: str, ref: str, message_id: str, operator: str) -> str:
    """``X-Mailwarden-Notice: <kind>; ref=<ref>; for=<operator>; seal=<mac>``: what marks one of
    the gateway's own notices, and for whom.  The seal (keyed with the store's key) binds the
    operator to the notice's Message-ID, so a message from outside that copies the field is
    filed like any other mail, not into that operator's view."""
    kind = re.sub(r"[^a-z0-9-]", "-", kind.lower())
    ref = re.sub(r"[^A-Za-z0-9<>@._+-]", "_", ref)
    return f"{NOTICE_HEADER}: {kind}; ref={ref}; for={operator}; seal={_seal(key, message_id, operator)}\r\n"


_NOTICE = re.compile(r"^\s*([a-z0-9-]+);.*?\bfor=([a-z0-9._-]+); seal=([0-9a-f]{24})\s*$")


def sealed_notice(h: Headers, key: bytes) -> tuple[str, str] | None:
    """``(kind, operator)`` when the message is a notice the gateway wrote (its seal holds)."""
    message_id = h.get("message-id")
    if not message_id:
        return None
    for value in h.get_all(NOTICE_HEADER.lower()):
        m = _NOTICE.match(re.sub(r"\s+", " ", value))
        if m and hmac.compare_digest(m.group(3), _seal(key, message_id.strip(), m.group(2))):
            return m.group(1), m.group(2)
    return None
