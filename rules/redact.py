"""Redaction: replace the matches of redact findings in every text/plain and text/html part."""

from __future__ import annotations

import base64
import email.policy
import html
import quopri
import re
from email.message import Message
from email.parser import BytesParser
from io import BytesIO
from email.generator import BytesGenerator

from .mail.charset import decode_bytes
from .findings import Decision

__all__ = ["redact", "REPLACEMENT"]

REPLACEMENT = "[REDACTED]"


def _patterns(decision: Decision) -> list[str]:
    matches = {f.match for f in decision.findings if f.action == "redact" and f.match.strip()}
    return sorted(matches, key=len, reverse=True)


def _replace(text: str, matches: list[str], is_html: bool) -> str:
    for m in matches:
        variants = {m}
        if is_html:
            variants.add(html.escape(m, quote=False))
            variants.add(html.escape(m, quote=True))
        for v in variants:
            text = re.sub(re.escape(v), REPLACEMENT, text, flags=re.IGNORECASE)
    return text


def _encode(part: Message, text: str) -> None:
    charset = part.get_content_charset() or "utf-8"
    try:
        data = text.encode(charset)
    except (UnicodeEncodeError, LookupError):
        charset = "utf-8"
        data = text.encode(charset)
        part.set_param("charset", charset)
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64":
        part.set_payload(base64.encodebytes(data).decode("ascii"))
    elif cte == "quoted-printable":
        part.set_payload(quopri.encodestring(data).decode("ascii"))
    elif data.isascii():
        part.set_payload(data.decode("ascii"))
    else:
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "base64"
        part.set_payload(base64.encodebytes(data).decode("ascii"))


def redact(message: bytes, decision: Decision) -> bytes:
    """*message* with every redact finding's match replaced by ``[REDACTED]`` in its text
    parts; headers, attachments and structure are kept as they were."""
    matches = _patterns(decision)
    if not matches:
        return message
    msg = BytesParser(policy=email.policy.compat32).parsebytes(message)
    changed = False
    for part in msg.walk():
        if part.is_multipart() or part.get_content_type() not in ("text/plain", "text/html"):
            continue
        if part.get_filename() or part.get_content_disposition() == "attachment":
            continue
        raw = part.get_payload(decode=True)
        if not isinstance(raw, bytes):
            continue
        text, _ok = decode_bytes(raw, part.get_content_charset())
        new = _replace(text, matches, part.get_content_type() == "text/html")
        if new != text:
            _encode(part, new)
            changed = True
    if not changed:
        return message
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=email.policy.compat32.clone(linesep="\r\n"
                   if b"\r\n" in message[:4096] else "\n")).flatten(msg)
    return out.getvalue()
