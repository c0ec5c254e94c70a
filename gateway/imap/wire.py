"""The IMAP wire form of ENVELOPE, BODY and BODYSTRUCTURE, from :class:`~.bodystructure.MessageFacts`.

Strings are written as quoted strings where IMAP allows it and as literals (``{n}\\r\\n``
then the bytes) for 8-bit bytes, CR or LF, or more than a few quote/backslash escapes; text
meant for people (subjects, display names) has its runs of blanks and folding collapsed to
one space first. These choices are Dovecot's, byte for byte, so a client that compares or
caches answers sees no difference between the gateway and the upstream.
"""

from __future__ import annotations

from .bodystructure import MessageFacts, PartFacts
from .envelope import Address, Envelope

__all__ = ["nstring", "render_body", "render_bodystructure", "render_envelope", "string_for_humans"]

_MAX_ESCAPES = 4  # past this many quote/backslash escapes a literal is shorter
_DEFAULT_CHARSET = (b"charset", b"us-ascii")
_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0'


def _quoted(value: bytes) -> bytes:
    out = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\r", b"").replace(b"\n", b"")
    return b'"' + out + b'"'


def nstring(value: bytes | None) -> bytes:
    """NIL, a quoted string, or a literal when *value* has 8-bit bytes, CR/LF or many escapes."""
    if value is None:
        return b"NIL"
    escapes = value.count(b'"') + value.count(b"\\")
    if escapes > _MAX_ESCAPES or b"\r" in value or b"\n" in value or not value.isascii():
        return b"{%d}\r\n" % len(value) + value
    return _quoted(value)


def nstring_nolf(value: bytes | None) -> bytes:
    """:func:`nstring` of a header value with its line breaks taken out (a space kept
    between lines where the next one does not start with a blank)."""
    if value is None or (b"\r" not in value and b"\n" not in value):
        return nstring(value)
    out = bytearray()
    n = len(value)
    for i, c in enumerate(value):
        if c not in (0x0D, 0x0A):
            out.append(c)
        elif i + 1 < n and value[i + 1] not in (0x20, 0x09, 0x0D, 0x0A, 0):
            out.append(0x20)
    return nstring(bytes(out))


def string_for_humans(value: bytes) -> bytes:
    """A subject or display name: blanks, tabs and line breaks collapsed to one space and
    trimmed, NUL shown as 0x80; quoted when nothing needed changing, else a literal."""
    modify = False
    last_lwsp = True
    for c in value:
        if c in (0x0D, 0x0A, 0x09) or (c == 0x20 and last_lwsp) or c in (0, 0x22, 0x5C) or c >= 0x80:
            modify = True
            break
        last_lwsp = c == 0x20
    if not modify and value and value[-1] == 0x20:
        modify = True
    if not modify:
        return b'"' + value + b'"'
    out = bytearray()
    last_lwsp = True
    for c in value:
        if c in (0x0D, 0x0A, 0x09, 0x20):
            if not last_lwsp:
                out.append(0x20)
            last_lwsp = True
        else:
            out.append(0x80 if c == 0 else c)
            last_lwsp = False
    if out and last_lwsp:
        del out[-1]
    if not out:
        return b'""'
    return b"{%d}\r\n" % len(out) + bytes(out)


def _addresses(addresses: list[Address] | None) -> bytes:
    if not addresses:
        return b"NIL"
    out = [b"("]
    for name, route, mailbox, domain in addresses:
        out += [b"(", b"NIL" if name is None else string_for_humans(name), b" ", nstring(route), b" ",
                nstring(mailbox), b" ", nstring(domain), b")"]
    out.append(b")")
    return b"".join(out)


def _envelope(env: Envelope | None) -> bytes:
    if env is None:
        return b"NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL"
    sender = env.sender if env.sender is not None else env.from_
    reply_to = env.reply_to if env.reply_to is not None else env.from_
    return b" ".join([
        nstring_nolf(env.date), b"NIL" if env.subject is None else string_for_humans(env.subject),
        _addresses(env.from_), _addresses(sender), _addresses(reply_to), _addresses(env.to),
        _addresses(env.cc), _addresses(env.bcc), nstring_nolf(env.in_reply_to), nstring_nolf(env.message_id),
    ])


def render_envelope(facts: MessageFacts) -> bytes:
    """The message's ENVELOPE, parenthesised, as it follows ``ENVELOPE`` in a FETCH answer."""
    return b"(" + _envelope(facts.root.envelope) + b")"


def render_bodystructure(facts: MessageFacts, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (with the extension data) or, ``extensible=False``, BODY."""
    out: list[bytes] = []
    _part(facts.root, out, extensible)
    return b"(" + b"".join(out) + b")"


def render_body(facts: MessageFacts) -> bytes:
    """BODY: the non-extensible form of :func:`render_bodystructure`."""
    return render_bodystructure(facts, extensible=False)


def _params(params: list[tuple[bytes, bytes]], default_charset: bool) -> bytes:
    if not params and not default_charset:
        return b"NIL"
    items = [nstring(k) + b" " + nstring(v) for k, v in params]
    if default_charset and not any(k.lower() == b"charset" for k, _v in params):
        items.append(b'"charset" "us-ascii"')
    return b"(" + b" ".join(items) + b")"


def _common(part: PartFacts) -> bytes:
    if part.disposition is None:
        disposition = b"NIL"
    else:
        disposition = b"(" + nstring(part.disposition) + b" " + _params(part.disposition_params, False) + b")"
    language = b"NIL" if not part.language else b"(" + b" ".join(nstring(x) for x in part.language) + b")"
    return b" " + disposition + b" " + language + b" " + nstring_nolf(part.location)


def _part(part: PartFacts, out: list[bytes], extensible: bool) -> None:
    if part.kind == "multipart":
        if part.children:
            for child in part.children:
                out.append(b"(")
                _part(child, out, extensible)
                out.append(b")")
        else:  # a multipart without parts: one empty text part, as RFC 3501 has no form for none
            out.append(_EMPTY_BODY + (b" NIL NIL NIL NIL)" if extensible else b")"))
        out.append(b" " + nstring(part.subtype or b""))
        if extensible:
            out.append(b" " + _params(part.params, False) + _common(part))
        return
    text = False
    if part.kind == "message":
        out.append(b'"message" "rfc822"')
    elif part.kind == "opaque":
        out.append(b'"application" "octet-stream"')
    elif part.ctype is None:
        text = True
        out.append(b'"text" "plain"')
    else:
        text = part.kind == "text"
        out.append(nstring(part.ctype) + b" " + nstring(part.subtype or b""))
    out += [b" ", _params(part.params, text), b" ", nstring_nolf(part.id), b" ", nstring_nolf(part.description),
            b" ", nstring(part.encoding) if part.encoding is not None else b'"7bit"', b" %d" % part.size]
    if text:
        out.append(b" %d" % part.lines)
    elif part.kind == "message":
        inner = part.children[0]
        out.append(b" (" + _envelope(inner.envelope) + b") (")
        _part(inner, out, extensible)
        out.append(b") %d" % part.lines)
    if extensible:
        out.append(b" " + nstring_nolf(part.md5) + _common(part))
