"""The masked rendition of an inbound message: what roles that may not see a customer's
private contacts (default ``sales``) are served instead of the original.

:func:`masked_rendition` masks the private mobile numbers, messenger IDs and free-mail
addresses (:class:`~.masker.Masker` says which, as the outbound rules would) in every
text/plain and text/html part that is not an attachment -- both parts of an alternative, and
the text parts of embedded messages -- and changes nothing else. The store keeps the original;
the rendition is made once, at import, so that it has its own sizes and BODYSTRUCTURE.

Surgery as the signature engine does it (:mod:`mailwarden.signatures.mime`): the parts lie
where the mail model's byte-offset structure (:attr:`mailwarden.rules.mail.Mail.structure`)
says; only a part with something to mask is decoded and rebuilt, in its own charset (UTF-8
when the declared one does not read it, and then declared), with its own
Content-Transfer-Encoding (a 7bit or 8bit part that now needs more becomes quoted-printable);
every other byte -- attachments, headers, boundaries -- is copied as it was. Attachments are
never decoded, so a big message costs its scan and, only when something is masked, one copy.

Pure: bytes in, bytes out; never raises (a message it cannot read has no rendition, logged).
"""

from __future__ import annotations

import logging
import re

from mailwarden.rules.mail import Mail, Part
from mailwarden.rules.mail.charset import decode_bytes
from mailwarden.rules.mail.structure import decode_body, newline_of
from mailwarden.signatures import mime

from .maskhtml import HtmlText
from .masker import Masker, apply

__all__ = ["Masker", "masked_rendition"]

log = logging.getLogger(__name__)

MAX_NESTING = 8  # embedded messages inside embedded messages followed this deep
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_SURROGATES = re.compile("[\udc80-\udcff]")

Splice = tuple[int, int, bytes]  # raw[start:end] becomes the bytes


def masked_rendition(raw: bytes, *, masker: Masker) -> bytes | None:
    """``raw`` with the private contacts in its text parts masked, or None when it has none
    to mask (or cannot be read at all: logged)."""
    try:
        return _rendition(bytes(raw), masker, 0)
    except Exception as exc:  # noqa: BLE001 - an import must never fail on a message's bytes
        log.warning("no masked rendition of a %d-byte message: %s", len(raw), type(exc).__name__)
        return None


def _rendition(raw: bytes, masker: Masker, depth: int) -> bytes | None:
    nl = newline_of(raw)
    splices: list[Splice] = []
    for part in Mail(raw).structure.walk():
        if part.children:
            continue
        try:
            splice = _part(raw, part, nl, masker, depth)
        except Exception as exc:  # noqa: BLE001 - the other parts are masked all the same
            log.warning("a %s part of a %d-byte message left unmasked: %s", part.ctype, len(raw),
                        type(exc).__name__)
            continue
        if splice is not None:
            splices.append(splice)
    if not splices:
        return None
    out: list[bytes | memoryview] = []
    view, pos = memoryview(raw), 0
    for start, end, data in splices:  # walk() is in order of the bytes; leaves never overlap
        out += (view[pos:start], data)
        pos = end
    out.append(view[pos:])
    return b"".join(out)


def _part(raw: bytes, part: Part, nl: bytes, masker: Masker, depth: int) -> Splice | None:
    if part.ctype == "message/rfc822":
        return _embedded(raw, part, nl, masker, depth)
    if part.ctype not in ("text/plain", "text/html") or part.disposition == "attachment":
        return None
    body = decode_body(raw, part)
    html = part.ctype == "text/html"
    charset = part.param("charset")
    if html and charset is None:
        m = _META_CHARSET.search(body, 0, 2048)
        charset = m.group(1).decode("ascii") if m else None
    text, codec = _decode(body, charset)
    if html:
        source = HtmlText(text)
        reps = masker.find(source.text)
        new = source.apply(reps)
    else:
        reps = masker.find(text)
        new = apply(text, reps)
    if not reps:
        return None
    data = None
    if codec is not None:
        try:
            data = mime.encode_text(new, codec)
        except UnicodeEncodeError:
            pass  # the declared charset lacks a character the text kept: UTF-8 below
    new_charset = None
    if data is None:
        data, new_charset = _SURROGATES.sub("\ufffd", new).encode("utf-8"), "utf-8"
    return _leaf(raw, part, nl, data, new_charset)


def _decode(body: bytes, charset: str | None) -> tuple[str, str | None]:
    """The text of a body and the codec that writes it back byte for byte, or None when the
    declared charset (or none) does not read it: then it is read as the rules read it
    (:func:`~mailwarden.rules.mail.charset.decode_bytes`) and written back as UTF-8."""
    if charset is not None or body.isascii():
        decoded = mime.decode_text(body, charset)
        if decoded is not None and not _SURROGATES.search(decoded[0]):
            return decoded
    return decode_bytes(body, charset)[0], None


def _leaf(raw: bytes, part: Part, nl: bytes, data: bytes, charset: str | None) -> Splice:
    """The part with ``data`` as its body: its encoding kept where it still holds, the
    Content-Type's charset and the Content-Transfer-Encoding changed where they must."""
    body, cte = _transfer_encoded(raw, part, data, nl, recoded=charset is not None)
    changes = mime.leaf_changes(part, cte, charset)
    if not changes:
        return part.body_start, part.end, body
    return part.start, part.end, mime.rebuilt_leaf(raw, part, body, changes, nl)


def _transfer_encoded(raw: bytes, part: Part, data: bytes, nl: bytes, *, recoded: bool = False) -> tuple[bytes, str]:
    """``data`` encoded for the part's body: base64 and quoted-printable kept; a 7bit or 8bit
    body as it is unless it now needs more (``recoded``: it is in another charset now, so
    what the old bytes had says nothing), then quoted-printable."""
    cte = part.cte
    if cte in ("base64", "quoted-printable"):
        body, cte = mime.transfer_encode(data, cte, nl)
        if cte == "base64" and not raw[part.body_start : part.end].endswith(b"\n"):
            body = body.rstrip(b"\r\n")  # the line ending before the boundary is the boundary's
        return body, cte
    had = set() if recoded else _needs(raw[part.body_start : part.end], cte)
    if _needs(data, cte) <= had:
        return data, cte  # the body as it was read, line endings and all
    return mime.transfer_encode(data, "quoted-printable", nl)


def _needs(data: bytes, cte: str) -> set[str]:
    """What ``data`` has that a ``cte`` body may not: 8-bit bytes in 7bit, lines too long.
    A body that had it already keeps its encoding: the rendition changes what it masks, not
    what the sender wrote."""
    out = set()
    if len(data) > mime.MAX_LINE and max(map(len, data.split(b"\n"))) > mime.MAX_LINE + 1:  # +1: CR
        out.add("long lines")
    if cte not in ("8bit", "binary") and not data.isascii():
        out.add("8-bit bytes")
    return out


def _embedded(raw: bytes, part: Part, nl: bytes, masker: Masker, depth: int) -> Splice | None:
    """A message/rfc822 part: the rendition of the message inside it."""
    if depth >= MAX_NESTING:
        return None
    cte = part.cte
    if cte not in ("base64", "quoted-printable"):
        inner = _rendition(raw[part.body_start : part.end], masker, depth + 1)
        return None if inner is None else (part.body_start, part.end, inner)
    inner = _rendition(decode_body(raw, part), masker, depth + 1)  # not allowed by RFC 2046, but sent
    if inner is None:
        return None
    body, _cte = _transfer_encoded(raw, part, inner, nl)
    return part.body_start, part.end, body
