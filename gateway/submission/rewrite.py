"""The header rewrite of a submitted message: it goes out as the shared mailbox.

Only the header block is parsed and rewritten; the body is passed through as a view of the
original bytes, so a 50 MB message is not copied here.  Pure functions of bytes, no I/O.
"""

from __future__ import annotations

import email.utils
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from functools import lru_cache

from mailwarden.gateway.headers import LOOP_HEADER, decoded, header_field, loop_token, split_headers

BLANK_LINE = re.compile(rb"\n\r?\n")  # the end of a line, then an empty one
# Headers the client may not set: ours (no spoofing of operator or customer),
# and the ones the gateway owns.
DROP = {b"from", b"sender", b"return-path", b"bcc", b"x-mailwarden-operator", b"x-mailwarden-customer",
        b"x-mailwarden-loop", b"x-mailwarden-ref", b"x-mailwarden-notice", b"delivered-to"}


CHARSET_SAMPLE = 64 * 1024  # bytes of an undeclared body read to tell its charset


def undeclared_charset(sample: bytes) -> str | None:
    """The charset of 8-bit text sent without MIME headers (None when it is ASCII): UTF-8 when
    it is valid UTF-8 (a cut-off last character aside), else the likeliest one."""
    if sample.isascii():
        return None
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"
    from charset_normalizer import from_bytes  # noqa: PLC0415  (rare: only mail without MIME headers)

    best = from_bytes(sample).best()
    return best.encoding.replace("_", "-") if best is not None else "utf-8"


class MessageRejected(Exception):
    """The message cannot be accepted; ``smtp_reply`` is what the client sees."""

    def __init__(self, smtp_reply: str) -> None:
        super().__init__(smtp_reply)
        self.smtp_reply = smtp_reply


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
    new: list[bytes] = [header_field("From", format_from(display_name, shared_address))]
    if h.get("date") is None:
        new.append(header_field("Date", email.utils.format_datetime(email.utils.localtime())))
    if message_id is None:
        message_id = email.utils.make_msgid(domain=domain)
        new.append(header_field("Message-ID", message_id))
    body = memoryview(data)[h.body_offset:]
    if h.get("mime-version") is None and h.fields:
        new.append(header_field("MIME-Version", "1.0"))
        if h.get("content-type") is None:
            # Declaring MIME without a Content-Type says US-ASCII: 8-bit text would be misread.
            sample = bytes(body[:CHARSET_SAMPLE]) or (bytes(rest[0][:CHARSET_SAMPLE]) if rest else b"")
            charset = undeclared_charset(sample)
            if charset is not None:
                new.append(header_field("Content-Type", f'text/plain; charset="{charset}"'))
                new.append(header_field("Content-Transfer-Encoding", "8bit"))
    new.append(header_field(LOOP_HEADER.decode(), f"{hostname}; token={loop_token(loop_key, message_id)}"))
    head = b"".join(new) + b"".join(kept) + b"\r\n"
    return Rewritten(head=head, body=body, subject=decoded(h.get("subject")), message_id=message_id, dropped=dropped,
                     rest=rest)
