"""MIME surgery: put the rendered signature into a message, one function per MIME shape.

Shapes (after GNU Mailman's ``handlers/decorate.py``, minus its wrapping): a text/plain part
(``format=flowed`` and ``delsp`` kept), a text/html part, both parts of multipart/alternative,
the root of multipart/related (the logo added there once, as an inline CID image),
the body of multipart/mixed (attachments untouched), and HTML-only messages (a text alternative
is added only when ``add_text_alternative`` is set). The message is never wrapped in a new
multipart/mixed: the signature would show as an attachment. The only structure ever added is a
multipart/related around an HTML part that needs the logo, and the configured text alternative.

Only the changed parts are rewritten; every other byte of the message (attachments, header
folding, boundaries) is copied once, unchanged, into the result (see :mod:`.mime`). Where the
parts lie comes from the mail model (:class:`mailwarden.rules.mail.Mail`), which the gateway
builds once and shares with the rules.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from dataclasses import dataclass, field

from mailwarden.rules.mail import Mail
from mailwarden.rules.mail.charset import decode_bytes
from mailwarden.rules.mail.structure import Part, decode_body, newline_of

from . import mime
from .htmlsig import html_to_text, sign_html
from .model import SignatureUser, SignResult
from .templates import SignatureSet, render_safely
from .textsig import sign_text

log = logging.getLogger(__name__)

_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_SURROGATES = re.compile("[\udc80-\udcff]")
_PGP_INLINE = ("-----BEGIN PGP SIGNED MESSAGE-----", "-----BEGIN PGP MESSAGE-----")
_REPORTS = {"multipart/report", "message/delivery-status", "message/disposition-notification",
            "message/feedback-report"}
_CONTENT_FIELDS = {"content-type", "content-transfer-encoding", "content-disposition", "content-id",
                   "content-description", "content-language", "content-location", "content-base"}


class _Untouched(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Job:
    """What one call does: the parsed message, the rendered signature and the planned splices."""

    raw: bytes
    nl: bytes
    sigs: SignatureSet
    text_sig: str
    html_sig: str
    splices: list[tuple[int, int, bytes]] = field(default_factory=list)
    applied: bool = False
    stripped: bool = False
    undecodable: bool = False


# ------------------------------------------------------------------ what must not be altered


def unalterable_reason(root: Part) -> str | None:
    """Why a message must be left untouched (signed, encrypted, invitation, report), or None."""
    for part in root.walk():
        ct = part.ctype
        if ct == "multipart/signed":
            protocol = (part.param("protocol") or "").lower()
            return "pgp" if "pgp" in protocol else "smime-signed"
        if ct == "multipart/encrypted" or ct in ("application/pgp-encrypted", "application/pgp-signature"):
            return "pgp"
        if ct in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
            return "smime-signed" if (part.param("smime-type") or "").lower() == "signed-data" else "smime-encrypted"
        if ct in ("text/calendar", "application/ics") and (
            part.param("method") or part.disposition != "attachment"
        ):
            return "calendar"
        if ct in _REPORTS:
            return "delivery-report"
    return None


# ------------------------------------------------------------------ finding the body


def _related_root(part: Part) -> Part | None:
    if not part.children:
        return None
    start = part.param("start")
    if start:
        for child in part.children:
            if str(child.headers.get("content-id", "")).strip() == start.strip():
                return child
    return part.children[0]


def body_parts(part: Part) -> tuple[Part | None, Part | None]:
    """The (text/plain, text/html) parts that make up the message body; attachments excluded."""
    if part.disposition == "attachment":
        return None, None
    ct = part.ctype
    if ct == "text/plain":
        return part, None
    if ct == "text/html":
        return None, part
    if ct == "multipart/related":
        root = _related_root(part)
        return body_parts(root) if root is not None else (None, None)
    if ct == "multipart/alternative":
        plain = html = None
        for child in part.children:  # the last alternative is the preferred one
            p, h = body_parts(child)
            plain, html = p or plain, h or html
        return plain, html
    if part.maintype == "multipart":
        for child in part.children:  # mixed and unknown: the first part that is a body
            p, h = body_parts(child)
            if p or h:
                return p, h
    return None, None


# ------------------------------------------------------------------ per-shape functions


def _encode_leaf(job: _Job, part: Part, data: bytes, charset: str | None) -> bytes:
    body, cte = mime.transfer_encode(data, part.cte, job.nl)
    changes = mime.leaf_changes(part, cte, charset)
    if not changes:
        job.splices.append((part.body_start, part.end, body))
        return b""
    return mime.rebuilt_leaf(job.raw, part, body, changes, job.nl)


def sign_plain_part(job: _Job, part: Part) -> bytes | None:
    """text/plain: signature under the new text; charset kept if it can carry the signature.

    Returns the whole part's new bytes when its headers change, ``b""`` when only the body
    changed (already spliced), None when the part cannot be decoded.
    """
    body = decode_body(job.raw, part)
    # 8-bit text with no charset (swaks and many scripts send it): read it as the rules do
    # (UTF-8, else the likely Chinese or other charset) and declare what it is written in,
    # or a client would read the re-encoded body as US-ASCII.
    charset_param, guessed = part.param("charset"), False
    if charset_param is None and not body.isascii():
        text, guessed = decode_bytes(body, None)
        decoded = (text, "utf-8") if guessed else mime.decode_text(body, None)
    else:
        decoded = mime.decode_text(body, charset_param)
    if decoded is None:
        job.undecodable = True
        return None
    text, declared = decoded
    if text.lstrip().startswith(_PGP_INLINE) or "\n-----BEGIN PGP SIGNED MESSAGE-----" in text[:4096]:
        raise _Untouched("pgp")
    outcome = sign_text(
        text.replace("\r\n", "\n"), job.text_sig,
        identifiers=job.sigs.identifiers, phone_digits=job.sigs.phone_digits,
        flowed=(part.param("format") or "").lower() == "flowed",
        delsp=(part.param("delsp") or "").lower() == "yes",
        strip_client=job.sigs.settings.strip_client_signature,
    )
    job.applied, job.stripped = True, job.stripped or outcome.stripped_client
    charset = "utf-8" if guessed else None
    if mime.can_encode(job.text_sig, declared):
        data = mime.encode_text(outcome.text, declared)
    else:
        data = _SURROGATES.sub("\ufffd", outcome.text).encode("utf-8")
        charset = "utf-8"
    return _encode_leaf(job, part, data, charset)


def _html_charset(job: _Job, part: Part) -> str | None:
    charset = part.param("charset")
    if charset is None:
        m = _META_CHARSET.search(job.raw, part.body_start, min(part.end, part.body_start + 2048))
        if m and part.cte not in ("base64", "quoted-printable"):
            charset = m.group(1).decode("ascii")
    return charset


def sign_html_part(job: _Job, part: Part, html_sig: str) -> bytes | None:
    """text/html: the marked signature element above the quoted history; the charset is kept
    (characters it lacks are written as character references, valid in any HTML)."""
    decoded = mime.decode_text(decode_body(job.raw, part), _html_charset(job, part))
    if decoded is None:
        job.undecodable = True
        return None
    html, declared = decoded
    safe_sig = html_sig.encode(declared, "xmlcharrefreplace").decode(declared)
    outcome = sign_html(html, safe_sig, strip_client=job.sigs.settings.strip_client_signature)
    job.applied, job.stripped = True, job.stripped or outcome.stripped_client
    return _encode_leaf(job, part, mime.encode_text(outcome.html, declared), None)


def _boundary(raw: bytes) -> str:
    while True:
        b = f"=_mailwarden_{secrets.token_hex(12)}"
        if b.encode() not in raw:
            return b


def _logo_part(job: _Job) -> bytes:
    logo = job.sigs.logo
    assert logo is not None
    nl = job.nl
    head = (f'Content-Type: {logo.mime_type}; name="{logo.filename}"\nContent-Transfer-Encoding: base64\n'
            f'Content-ID: <{logo.cid}>\nContent-Disposition: inline; filename="{logo.filename}"\n\n')
    body = base64.encodebytes(logo.data).rstrip(b"\n")
    return head.encode("ascii").replace(b"\n", nl) + body.replace(b"\n", nl)


def _has_logo(job: _Job, related: Part) -> bool:
    assert job.sigs.logo is not None
    want = job.sigs.logo.cid.lower()
    return any(str(c.headers.get("content-id", "")).strip().strip("<>").lower() == want
               for c in related.children)


def _multipart(job: _Job, subtype: str, extra: str, children: list[bytes]) -> tuple[bytes, bytes]:
    """(Content-Type header line, body) of a new multipart holding ``children``."""
    b = _boundary(job.raw)
    nl = job.nl
    header = f'Content-Type: multipart/{subtype}; boundary="{b}"{extra}'.encode() + nl
    delim = nl + b"--" + b.encode() + nl
    body = b"--" + b.encode() + nl + delim.join(children) + nl + b"--" + b.encode() + b"--" + nl
    return header, body


def _take(job: _Job, part: Part) -> bytes:
    """The new bytes of ``part`` with the splices planned inside it applied (and withdrawn)."""
    inside = [sp for sp in job.splices if sp[0] >= part.start and sp[1] <= part.end]
    job.splices = [sp for sp in job.splices if not (sp[0] >= part.start and sp[1] <= part.end)]
    shifted = [(s - part.start, e - part.start, d) for s, e, d in inside]
    return _splice(job.raw[part.start : part.end], shifted)


def _wrap(job: _Job, part: Part, subtype: str, extra: str, before: list[bytes], after: list[bytes]) -> None:
    """Replace ``part`` by a new multipart/<subtype> holding ``before + [part] + after``.

    For a nested part all its headers go inside; for the top-level part the message headers
    (From, To, Subject, ...) stay outside and only the Content-* fields move in.
    """
    new = _take(job, part)
    cut = new.find(job.nl + job.nl)
    if part.parent is not None:
        outer, inner = b"", new
    else:
        head, body = new[: cut + len(job.nl)], new[cut + len(job.nl) :]
        inner_head, outer = mime.split_header_block(head, _CONTENT_FIELDS)
        if b"mime-version:" not in outer.lower():
            outer += b"MIME-Version: 1.0" + job.nl
        inner = inner_head + job.nl + body
    header, body = _multipart(job, subtype, extra, [*before, inner.rstrip(b"\r\n"), *after])
    if part.parent is not None:
        body = body.rstrip(b"\r\n")  # the parent's delimiter brings the line ending
    job.splices.append((part.start, part.end, outer + header + job.nl + body))


def _text_alternative(job: _Job, part: Part) -> bytes | None:
    """A signed text/plain part made from an HTML-only body (``add_text_alternative``)."""
    decoded = mime.decode_text(decode_body(job.raw, part), _html_charset(job, part))
    if decoded is None:
        return None
    text = html_to_text(decoded[0])
    outcome = sign_text(text, job.text_sig, identifiers=job.sigs.identifiers,
                        phone_digits=job.sigs.phone_digits)
    data = _SURROGATES.sub("\ufffd", outcome.text).encode("utf-8")
    body, cte = mime.transfer_encode(data, "7bit", job.nl)
    charset = "us-ascii" if data.isascii() else "utf-8"
    head = f'Content-Type: text/plain; charset="{charset}"\nContent-Transfer-Encoding: {cte}\n\n'
    return head.encode("ascii").replace(b"\n", job.nl) + body.rstrip(b"\r\n")


def sign_html_body(job: _Job, html: Part, has_plain: bool) -> None:
    """An HTML body part in any shape: sign it, add the logo once, add the text alternative."""
    needs_logo = job.sigs.logo is not None and job.sigs.logo.cid in job.html_sig
    parent = html.parent
    related = parent if parent is not None and parent.ctype == "multipart/related" else None
    text_alt = None
    in_alternative = any(p.ctype == "multipart/alternative" for p in _ancestors(html))
    if not has_plain and not in_alternative and job.sigs.settings.add_text_alternative:
        text_alt = _text_alternative(job, html)
    new_leaf = sign_html_part(job, html, job.html_sig)
    if new_leaf is None:
        return
    if new_leaf:
        job.splices.append((html.start, html.end, new_leaf))
    if needs_logo and related is not None:
        if not _has_logo(job, related):
            last = related.children[-1]
            delim = job.nl + b"--" + (related.param("boundary") or "").encode("ascii", "surrogateescape")
            job.splices.append((last.end, last.end, delim + job.nl + _logo_part(job)))
    elif needs_logo:
        _wrap(job, html, "related", '; type="text/html"', [], [_logo_part(job)])
    if text_alt is not None:
        _wrap(job, related or html, "alternative", "", [text_alt], [])


def _ancestors(part: Part) -> list[Part]:
    out = []
    while part.parent is not None:
        part = part.parent
        out.append(part)
    return out
# ------------------------------------------------------------------ entry point


def _splice(raw: bytes, splices: list[tuple[int, int, bytes]]) -> bytes:
    return b"".join(_pieces(raw, splices))


def _pieces(raw: bytes, splices: list[tuple[int, int, bytes]]) -> list[bytes | memoryview]:
    view = memoryview(raw)
    pieces: list[bytes | memoryview] = []
    pos = 0
    for start, end, data in sorted(splices, key=lambda s: (s[0], s[1])):
        if start < pos:
            raise AssertionError("overlapping splices")
        pieces.append(view[pos:start])
        pieces.append(data)
        pos = end
    pieces.append(view[pos:])
    return pieces


def apply_signature(message: bytes, sigs: SignatureSet, user: SignatureUser,
                    customer: str | None = None, *, joined: bool = True,
                    mail: Mail | None = None) -> SignResult:
    """Sign ``message`` for ``user``: the one code path of the gateway and of ``signature apply``.

    *mail*: the message's model, when the caller built it (the gateway shares the one the
    rules read); built here otherwise. Never raises for a bad message or template: a
    template failure falls back to the plain company signature (``fallback=True``), a
    message that must not or cannot be altered comes back unchanged with ``untouched_reason``.
    """
    raw = message if isinstance(message, bytes) else bytes(message)
    if mail is None:
        mail = Mail(raw)
    elif not mail.is_of(raw):
        raise ValueError("mail is the model of another message")
    try:
        root = mail.structure
    except Exception:  # noqa: BLE001 - malformed input is reported, never raised
        log.warning("signature not applied for operator %s: unparseable message", user.login)
        return SignResult(raw, False, False, "malformed")
    reason = unalterable_reason(root)
    if reason is not None:
        return SignResult(raw, False, False, reason)
    plain, html = body_parts(root)
    if plain is None and html is None:
        return SignResult(raw, False, False, "no-text-body")
    rendered, error = render_safely(sigs, user, customer)
    job = _Job(raw, newline_of(raw), sigs, rendered.text, rendered.html)
    try:
        if plain is not None:
            new = sign_plain_part(job, plain)
            if new:
                job.splices.append((plain.start, plain.end, new))
        if html is not None:
            sign_html_body(job, html, has_plain=plain is not None)
    except _Untouched as exc:
        return SignResult(raw, False, False, exc.reason)
    if not job.applied:
        return SignResult(raw, False, error is not None, "undecodable-body", detail=error)
    if not joined:
        return SignResult(raw, True, error is not None, None, detail=error, stripped_client_signature=job.stripped,
                          pieces=tuple(_pieces(raw, job.splices)))
    out = _splice(raw, job.splices)
    return SignResult(out, True, error is not None, None, detail=error, stripped_client_signature=job.stripped)
