"""Header surgery for outbound mail: pure functions of bytes, no I/O.

Only the header block is parsed and rewritten; the body is passed through as
a view of the original bytes, so a 50 MB message is not copied here.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.headerregistry import Address
from functools import lru_cache

HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")
LOOP_HEADER = b"X-Mailwarden-Loop"
BLANK_LINE = re.compile(rb"\n\r?\n")  # the end of a line, then an empty one
# Headers the client may not set: ours (no spoofing of operator or customer),
# and the ones the gateway owns.
DROP = {b"from", b"sender", b"return-path", b"bcc", b"x-mailwarden-operator", b"x-mailwarden-customer",
        b"x-mailwarden-loop", b"x-mailwarden-ref", b"x-mailwarden-notice", b"delivered-to"}


class MessageRejected(Exception):
    """The message cannot be accepted; ``smtp_reply`` is what the client sees."""

    def __init__(self, smtp_reply: str) -> None:
        super().__init__(smtp_reply)
        self.smtp_reply = smtp_reply


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
    except (UnicodeError, LookupError, ValueError, TypeError):
        return value


def loop_token(key: bytes, message_id: str) -> str:
    return hmac.new(key, message_id.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:24]


def _field(name: str, value: str) -> bytes:
    # Values here are built from checked, single-line parts; CR/LF can never
    # reach them (header injection), but strip once more to be sure.
    value = value.replace("\r", " ").replace("\n", " ")
    return f"{name}: {value}\r\n".encode("utf-8")


@lru_cache(maxsize=1024)
def format_from(display: str, address: str) -> str:
    """A From value with the display name quoted or RFC 2047-encoded as needed (the same
    few operators send all day, and the email package's folding costs ~0.5 ms)."""
    local, _, domain = address.partition("@")
    header = Address(display_name=display.replace("\r", " ").replace("\n", " "), username=local, domain=domain)
    from email.policy import SMTP

    return SMTP.header_factory("from", str(header)).fold(policy=SMTP).split(":", 1)[1].strip()


@dataclass
class Rewritten:
    head: bytes              # new header block, including the blank line
    body: memoryview         # the original body, not copied
    subject: str
    message_id: str
    dropped: list[str] = field(default_factory=list)
    rest: tuple[bytes | memoryview, ...] = ()  # more of the body, when it came in pieces

    @property
    def size(self) -> int:
        return len(self.head) + len(self.body) + sum(len(p) for p in self.rest)

    def chunks(self) -> tuple[bytes | memoryview, ...]:
        return (self.head, self.body, *self.rest)


def header_first(pieces: Sequence[bytes | memoryview], limit: int = 1 << 20) -> tuple[bytes, tuple[bytes | memoryview, ...]]:
    """Pieces of a message (a signed one: views of the original plus the inserted
    bytes) as ``bytes`` that hold the whole header block, and the pieces after it,
    not copied: the arguments :func:`rewrite` takes."""
    pieces = [p for p in pieces if len(p)]
    if len(pieces) == 1 and isinstance(pieces[0], bytes):
        return pieces[0], ()
    seen = b""
    for i, p in enumerate(pieces):
        view = memoryview(p)
        probe = seen + bytes(view[: max(0, limit - len(seen))])
        m = BLANK_LINE.search(probe)
        if m:
            cut = m.end() - len(seen)
            return probe[: m.end()], (view[cut:], *pieces[i + 1:])
        seen = probe
        if len(seen) >= limit:
            break
    return b"".join(pieces), ()  # no blank line near the top: no header block to keep apart


def rewrite(data: bytes, *, shared_address: str, display_name: str, company_domains: tuple[str, ...],
            loop_key: bytes, hostname: str, rest: tuple[bytes | memoryview, ...] = ()) -> Rewritten:
    """Make a submitted message go out as the shared mailbox.

    From becomes the shared address with the operator's display name; Sender,
    Return-Path, Bcc and any X-Mailwarden-* header the client set are dropped;
    a Reply-To outside the company's domains is dropped (replies must come back
    to the shared mailbox); Date and Message-ID are added when missing; the
    loop-guard header is added.  ``rest``: the message continues after
    ``data`` (see :func:`header_first`).
    """
    h = split_headers(data)
    dropped: list[str] = []
    message_id = h.get("message-id")
    if message_id and not re.fullmatch(r"<[^<>\s]+>", message_id):
        message_id = None  # malformed: replace it with a proper one
    for raw in h.get_all("x-mailwarden-loop"):
        m = re.search(r"token=([0-9a-f]{24})", raw)
        if m and message_id and hmac.compare_digest(m.group(1), loop_token(loop_key, message_id)):
            raise MessageRejected("554 5.4.6 This message has already passed through the gateway (mail loop); not sent again")
    kept: list[bytes] = []
    for name, raw in h.fields:
        if name in DROP:
            dropped.append(name.decode("ascii", "replace"))
            continue
        if name == b"message-id" and message_id is None:
            continue
        if name == b"reply-to":
            addrs = email.utils.getaddresses([raw.split(b":", 1)[1].decode("utf-8", "replace")])
            if not all(a[1].rsplit("@", 1)[-1].lower() in company_domains for a in addrs if a[1]):
                dropped.append("reply-to")
                continue
        kept.append(raw if raw.endswith(b"\n") else raw + b"\r\n")
    domain = shared_address.rsplit("@", 1)[-1]
    new: list[bytes] = [_field("From", format_from(display_name, shared_address))]
    if h.get("date") is None:
        new.append(_field("Date", email.utils.format_datetime(email.utils.localtime())))
    if message_id is None:
        message_id = email.utils.make_msgid(domain=domain)
        new.append(_field("Message-ID", message_id))
    if h.get("mime-version") is None and h.fields:
        new.append(_field("MIME-Version", "1.0"))
    new.append(_field(LOOP_HEADER.decode(), f"{hostname}; token={loop_token(loop_key, message_id)}"))
    head = b"".join(new) + b"".join(kept) + b"\r\n"
    body = memoryview(data)[h.body_offset:]
    return Rewritten(head=head, body=body, subject=decoded(h.get("subject")), message_id=message_id, dropped=dropped,
                     rest=rest)


def tag_headers(operator: str, operator_name: str, customers: list[tuple[int, str]], ref: str = "") -> bytes:
    """The X-Mailwarden-Operator / -Customer fields for the Sent copy, and ``X-Mailwarden-Ref``:
    the gateway's own name for the message, by which a copy already in Sent is found again."""
    op = make_header_value(f"{operator} ({operator_name})")
    out = [_field("X-Mailwarden-Operator", op)]
    for cid, name in customers:
        out.append(_field("X-Mailwarden-Customer", make_header_value(f"{cid} {name}")))
    if ref:
        out.append(_field("X-Mailwarden-Ref", ref))
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
