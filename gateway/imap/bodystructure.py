"""What FETCH serves about a message, computed once from its bytes when the sync imports it.

:func:`describe` reads a message through the mail model's byte-offset structure
(:attr:`mailwarden.rules.mail.Mail.structure`, embedded message/rfc822 entities scanned in
place) and keeps, per MIME part, what BODY, BODYSTRUCTURE and ENVELOPE are written from and
where the part lies in the bytes; so the IMAP server answers listings and ``BODY[section]``
from the store without parsing a body again. :class:`MessageFacts` round-trips through one
compact, versioned JSON text (:meth:`MessageFacts.to_json`); :mod:`.wire` writes the IMAP
forms and :mod:`.sections` turns section specifiers into byte ranges.

The part tree and every value follow what Dovecot (the usual upstream) answers for the same
bytes, so a client sees the same message through the gateway as directly; the sizes count
the stored bytes, which are what the upstream's ``FETCH BODY[]`` gave (CRLF line endings).
Nothing here raises on malformed input: whatever the bytes, the facts describe them, and the
ranges of the parts nest and add up.
"""

from __future__ import annotations

import binascii
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from mailwarden.rules.mail import Mail
from mailwarden.rules.mail.structure import MAX_DEPTH, Part, scan, scan_parts

from .envelope import Envelope
from .fields import fields
from .rfc822 import NUL_REPLACEMENT, Tokenizer, parse_params

__all__ = ["JSON_VERSION", "MessageFacts", "PartFacts", "describe"]

log = logging.getLogger(__name__)

JSON_VERSION = 1
MAX_NESTING = 2 * MAX_DEPTH  # parts nested deeper (multiparts, embedded messages) are not followed
MAX_PARTS = 10_000  # Dovecot's limit: no boundary line counts after it, the last part runs to the end

Params = list[tuple[bytes, bytes]]


@dataclass(eq=False)
class PartFacts:
    """One MIME part: its header is ``raw[start:body_start]`` (the empty line included), its
    body ``raw[body_start:end]``. ``kind``: ``multipart`` (``children`` are its parts),
    ``message`` (message/rfc822: ``children`` is the one embedded message, whose ``envelope``
    is set), ``text`` (text/*: counts ``lines``), ``basic`` or ``opaque`` (a message/rfc822
    part not followed, nested too deep or past :data:`MAX_PARTS`: application/octet-stream)."""

    start: int
    body_start: int
    end: int
    kind: str
    ctype: bytes | None = None  # None: no usable Content-Type (text/plain)
    subtype: bytes | None = None
    params: Params = field(default_factory=list)
    id: bytes | None = None
    description: bytes | None = None
    encoding: bytes | None = None
    md5: bytes | None = None
    disposition: bytes | None = None
    disposition_params: Params = field(default_factory=list)
    language: list[bytes] | None = None
    location: bytes | None = None
    lines: int = 0  # line endings in the body
    binary_size: int | None = None  # the decoded size of a base64 or QP body
    envelope: Envelope | None = None
    children: list[PartFacts] = field(default_factory=list)

    @property
    def size(self) -> int:
        """The body's size in octets."""
        return self.end - self.body_start

    def walk(self) -> list[PartFacts]:
        """This part and every part inside it, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclass(eq=False)
class MessageFacts:
    """Everything FETCH needs about one stored message; ``root`` is the message itself (its
    ``envelope`` is the message's ENVELOPE)."""

    size: int  # RFC822.SIZE
    lines: int
    root: PartFacts

    @property
    def envelope(self) -> Envelope:
        """The message's envelope fields."""
        return self.root.envelope or Envelope()

    def to_json(self) -> str:
        """One compact JSON text (ASCII), versioned by its ``v`` field."""
        doc = {"v": JSON_VERSION, "size": self.size, "lines": self.lines, "root": _part_doc(self.root)}
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> MessageFacts:
        """The facts :meth:`to_json` wrote; ValueError for any other text or version."""
        try:
            doc = json.loads(text)
            if doc.get("v") != JSON_VERSION:
                raise ValueError(f"message facts of version {doc.get('v')!r}, this gateway reads {JSON_VERSION}")
            return cls(int(doc["size"]), int(doc["lines"]), _part_from_doc(doc["root"]))
        except (KeyError, TypeError, AttributeError, IndexError) as e:
            raise ValueError(f"malformed message facts: {type(e).__name__}: {e}") from None


# --------------------------------------------------------------------------- JSON
# bytes travel as latin-1 text (lossless for 8-bit header bytes); empty and None fields are left out.
_SCALARS = ("ctype", "subtype", "id", "description", "encoding", "md5", "disposition", "location")
_ENV_STRINGS = ("date", "subject", "in_reply_to", "message_id")
_ENV_ADDRESSES = ("from_", "sender", "reply_to", "to", "cc", "bcc")


def _s(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _b(value: str | None) -> bytes | None:
    return None if value is None else value.encode("latin-1")


def _part_doc(part: PartFacts) -> dict[str, Any]:
    doc: dict[str, Any] = {"r": [part.start, part.body_start, part.end], "k": part.kind}
    for name in _SCALARS:
        value = getattr(part, name)
        if value is not None:
            doc[name] = _s(value)
    if part.params:
        doc["params"] = [[_s(k), _s(v)] for k, v in part.params]
    if part.disposition_params:
        doc["dparams"] = [[_s(k), _s(v)] for k, v in part.disposition_params]
    if part.language is not None:
        doc["language"] = [_s(x) for x in part.language]
    if part.lines:
        doc["lines"] = part.lines
    if part.binary_size is not None:
        doc["bsize"] = part.binary_size
    if part.envelope is not None:
        env: dict[str, Any] = {}
        for name in _ENV_STRINGS:
            value = getattr(part.envelope, name)
            if value is not None:
                env[name] = _s(value)
        for name in _ENV_ADDRESSES:
            addresses = getattr(part.envelope, name)
            if addresses is not None:
                env[name] = [[_s(x) for x in address] for address in addresses]
        doc["env"] = env
    if part.children:
        doc["parts"] = [_part_doc(child) for child in part.children]
    return doc


def _part_from_doc(doc: dict[str, Any]) -> PartFacts:
    start, body_start, end = (int(x) for x in doc["r"])
    part = PartFacts(start, body_start, end, str(doc["k"]))
    for name in _SCALARS:
        if name in doc:
            setattr(part, name, _b(doc[name]))
    part.params = [(_b(k), _b(v)) for k, v in doc.get("params", ())]  # type: ignore[misc]
    part.disposition_params = [(_b(k), _b(v)) for k, v in doc.get("dparams", ())]  # type: ignore[misc]
    if "language" in doc:
        part.language = [_b(x) for x in doc["language"]]  # type: ignore[misc]
    part.lines = int(doc.get("lines", 0))
    part.binary_size = doc.get("bsize")
    if "env" in doc:
        env = Envelope()
        for name in _ENV_STRINGS:
            if name in doc["env"]:
                setattr(env, name, _b(doc["env"][name]))
        for name in _ENV_ADDRESSES:
            if name in doc["env"]:
                setattr(env, name, [tuple(_b(x) for x in a) for a in doc["env"][name]])
        part.envelope = env
    part.children = [_part_from_doc(child) for child in doc.get("parts", ())]
    return part


# --------------------------------------------------------------------------- describe
def describe(raw: bytes) -> MessageFacts:
    """The facts of the message *raw* (never raises on malformed MIME; never copies the body)."""
    try:
        budget = _Budget()
        root = _facts(raw, Mail(raw).structure, None, 0, budget, top=True)
        if budget.overflow:
            _run_to_the_end(raw, root)
    except Exception as e:  # noqa: BLE001 - nothing should fail here, but an import must not
        log.warning("MIME structure unreadable (%s): described as one part", type(e).__name__)
        root = PartFacts(0, 0, len(raw), "text", lines=raw.count(b"\n"), envelope=Envelope())
    return MessageFacts(len(raw), raw.count(b"\n"), root)


@dataclass
class _Budget:
    """The parts made so far, and whether a part was left out for :data:`MAX_PARTS`."""

    parts: int = 0
    overflow: bool = False

    def spent(self) -> bool:
        if self.parts >= MAX_PARTS:
            self.overflow = True
        return self.overflow


def _run_to_the_end(raw: bytes, root: PartFacts) -> None:
    """Past :data:`MAX_PARTS` the last part made, and every part around it, end where the
    message ends (boundary lines no longer count)."""
    part: PartFacts | None = root
    while part is not None:
        part.end = len(raw)
        if part.kind in ("text", "message"):
            part.lines = raw.count(b"\n", part.body_start, part.end)
        part.binary_size = _binary_size(raw, part)
        part = part.children[-1] if part.children else None


def _read_part(raw: bytes, part: PartFacts, parent: PartFacts | None) -> None:
    """Fill the header-derived fields of *part* from ``raw[part.start:part.body_start]`` (and
    its envelope, when it has one)."""
    is_mime = parent is not None and parent.kind == "multipart"
    envelope = part.envelope
    for name, value in fields(raw, part.start, part.body_start):
        lname = name.lower()
        if envelope is not None:
            envelope.add_field(lname, value)
        if lname == b"mime-version":
            is_mime = True
        elif lname.startswith(b"content-"):
            is_mime = is_mime or lname == b"content-type"
            _content_field(part, lname[8:], value)
    if not is_mime:  # without MIME-Version (or Content-Type) the Content-* fields mean nothing
        for attr in _SCALARS:
            setattr(part, attr, None)
        part.params, part.disposition_params, part.language = [], [], None


def _content_field(part: PartFacts, name: bytes, value: bytes) -> None:
    if name == b"type":
        if part.ctype is None:  # the first one counts; broken, it still says "not text"
            tok = Tokenizer(value)
            tok.skip_lwsp()
            out = bytearray()
            ret = tok.content_type(out)
            ctype, _, subtype = bytes(out).partition(b"/")
            part.ctype, part.subtype = ctype, subtype
            if ret >= 0:
                part.params = parse_params(tok)
    elif name == b"id" and part.id is None:
        part.id = value.replace(b"\0", NUL_REPLACEMENT)
    elif name == b"md5" and part.md5 is None:
        part.md5 = value.replace(b"\0", NUL_REPLACEMENT)
    elif name == b"description" and part.description is None:
        part.description = value.replace(b"\0", NUL_REPLACEMENT)
    elif name == b"location" and part.location is None:
        part.location = value.replace(b"\0", NUL_REPLACEMENT)
    elif name == b"transfer-encoding" and part.encoding is None:
        tok = Tokenizer(value)
        tok.skip_lwsp()
        out = bytearray()
        if tok.mime_token(out) >= 0 and tok.skip_lwsp() == 0 and out:
            part.encoding = bytes(out)
    elif name == b"disposition" and not part.disposition_params:
        # (Dovecot reads a later Content-Disposition while the earlier one had no parameters)
        tok = Tokenizer(value)
        tok.skip_lwsp()
        out = bytearray()
        if tok.mime_token(out) >= 0:
            part.disposition = bytes(out)
            part.disposition_params = parse_params(tok)
    elif name == b"language" and part.language is None:
        tok = Tokenizer(value)
        tok.skip_lwsp()
        langs: list[bytes] = []
        while True:
            out = bytearray()
            if tok.atom(out) < 0:
                break
            langs.append(bytes(out))
            if tok.pos >= tok.end or tok.peek() != 0x2C:
                break
            tok.pos += 1
            tok.skip_lwsp()
        part.language = langs or None


def _kind(part: PartFacts, parent: PartFacts | None) -> str:
    if part.ctype is not None:
        ctype, subtype = part.ctype.lower(), (part.subtype or b"").lower()
        if ctype == b"message" and subtype == b"rfc822":
            return "message"
        if ctype == b"text":
            return "text"
        if ctype == b"multipart":
            return "multipart"
        return "basic"
    if parent is not None and parent.kind == "multipart" and (parent.subtype or b"").lower() == b"digest":
        return "message"  # no Content-Type inside multipart/digest: message/rfc822
    return "text"


def _facts(raw: bytes, part: Part, parent: PartFacts | None, depth: int, budget: _Budget, *,
           top: bool = False) -> PartFacts:
    budget.parts += 1
    facts = PartFacts(part.start, min(part.body_start, part.end), part.end, "text")
    if top or (parent is not None and parent.kind == "message"):
        facts.envelope = Envelope()
    _read_part(raw, facts, parent)
    facts.kind = _kind(facts, parent)
    if facts.kind == "multipart":
        boundary = _boundary(facts)
        children = part.children
        if part.maintype != "multipart" or part.param("boundary") != boundary:
            # the mail model read the Content-Type field otherwise (a line that is no field
            # ends a header for it, not for IMAP servers): split by the boundary read here
            children = scan_parts(raw, part, boundary or "")
        if depth < MAX_NESTING:  # deeper, a multipart without parts (the structure's MAX_DEPTH does the same)
            for child in children:
                if budget.spent():
                    break
                facts.children.append(_facts(raw, child, facts, depth + 1, budget))
        _after_close_delimiter(raw, facts, boundary)
    elif facts.kind == "message":
        if depth >= MAX_NESTING or budget.spent():
            facts.kind = "opaque"
        else:
            scanned = scan(raw, facts.body_start, facts.end)
            inner = _facts(raw, scanned, facts, depth + 1, budget)
            facts.children = [inner]
            facts.end = inner.end
            if part.header_end < part.body_start and (
                    scanned.start == scanned.end or scanned.header_end == scanned.body_start):
                # the embedded header cut off by a boundary line: the line ending before that
                # line is the message part's (its header's own empty line, or the last field's)
                facts.end += _boundary_line_after(raw, facts.end)
    if facts.kind in ("text", "message"):
        facts.lines = raw.count(b"\n", facts.body_start, facts.end)
    facts.binary_size = _binary_size(raw, facts)
    return facts


# The line ending before a boundary line belongs to the boundary (RFC 2046 5.1.1), and the
# structure scanner leaves it out of the part before; but where the boundary line comes
# right after a close boundary line (an empty epilogue), Dovecot leaves that line ending in
# the multipart that just closed, and so in the parts around it that end there too.

def _newline_at(raw: bytes, pos: int) -> int:
    return 2 if raw.startswith(b"\r\n", pos) else 1 if raw.startswith(b"\n", pos) else 0


def _boundary_line_after(raw: bytes, pos: int) -> int:
    """The length of the line ending at *pos* when a boundary line follows it, else 0."""
    nl = _newline_at(raw, pos)
    return nl if nl and raw.startswith(b"--", pos + nl) else 0


def _boundary(facts: PartFacts) -> str | None:
    """The boundary parameter of a multipart, as text (bytes as they are)."""
    for name, value in facts.params:
        if name.lower() == b"boundary":
            return value.decode("ascii", "surrogateescape")
    return None


def _after_close_delimiter(raw: bytes, facts: PartFacts, boundary: str | None) -> None:
    """A multipart whose close boundary line is its last line keeps that line's ending."""
    if not facts.children or not boundary:
        return
    pos = facts.children[-1].end
    pos += _newline_at(raw, pos)
    close = b"--" + boundary.encode("ascii", "surrogateescape") + b"--"
    if raw.startswith(close, pos) and not raw[pos + len(close):facts.end].strip(b" \t"):
        facts.end += _boundary_line_after(raw, facts.end)


def _binary_size(raw: bytes, part: PartFacts) -> int | None:
    """The decoded size of a base64 or quoted-printable body (RFC 3516 BINARY.SIZE)."""
    if part.encoding is None or part.kind in ("multipart", "message"):
        return None
    encoding = part.encoding.lower()
    start, end = part.body_start, part.end
    if encoding == b"base64":
        # line breaks are the only bytes that are not data (spaces and junk are rare enough
        # to be counted as data); padding is only at the end
        tail = max(start, end - 80)
        chars = end - start - raw.count(b"\n", start, end) - raw.count(b"\r", start, end) \
            - raw.count(b"=", tail, end)
        return chars * 3 // 4
    if encoding == b"quoted-printable":
        return len(binascii.a2b_qp(raw[start:end]))
    return None
