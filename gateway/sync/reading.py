"""What the sync reads from a message's bytes before it files and stores it: the header fields
filing and listings need (addresses from the headers themselves, never a provider's
ENVELOPE), the thread ids, and the text SEARCH looks in.  Pure functions of bytes.

The text comes from the product's one mail model (:class:`mailwarden.rules.mail.Mail`): its
byte-offset structure, and of it the text parts only (plain and HTML, in their charsets), so
attachments are never opened on import; headers and text are case-folded and cut at
:data:`TEXT_LIMIT` characters.
"""

from __future__ import annotations

import email.utils
import logging
import re
from datetime import datetime, timezone

from mailwarden.rules.mail import Mail
from mailwarden.rules.mail.charset import decode_bytes
from mailwarden.rules.mail.htmltext import html_to_text
from mailwarden.rules.mail.structure import decode_body
from mailwarden.store.blobs import name_of
from mailwarden.store.mails import NewMail
from mailwarden.store.searchtext import TEXT_LIMIT, search_text

from mailwarden.gateway.headers import Headers, decoded, split_headers

log = logging.getLogger(__name__)

_MSGID = re.compile(r"<[^<>\s]{1,900}>")


def message_ids(value: str | None) -> list[str]:
    """The ``<id>`` tokens of a Message-ID, In-Reply-To or References field, in order."""
    return _MSGID.findall(value or "")


def addresses(h: Headers, name: str) -> list[str]:
    """The addresses of a header field, lower case, as written in the header (groups flattened)."""
    values = [decoded(v) for v in h.get_all(name)]
    out = []
    for _display, addr in email.utils.getaddresses(values):
        addr = addr.strip().lower()
        if "@" in addr and addr not in out:
            out.append(addr)
    return out


def header_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        ts = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


def body_text(raw: bytes) -> str:
    """The decoded text of the message's text parts (not attachments), up to about
    :data:`TEXT_LIMIT` characters; nothing for a message whose structure cannot be read."""
    try:
        parts = Mail(raw).structure.walk()
    except Exception as exc:  # noqa: BLE001 - malformed mail is stored and filed all the same
        log.info("text of a %d-byte message not indexed: %s", len(raw), type(exc).__name__)
        return ""
    out, total = [], 0
    for part in parts:
        if part.maintype != "text" or part.disposition == "attachment" or part.ctype not in ("text/plain", "text/html"):
            continue
        text, _ok = decode_bytes(decode_body(raw, part)[:TEXT_LIMIT * 4], part.param("charset"))
        if part.ctype == "text/html":
            text = html_to_text(text)
        out.append(text)
        total += len(text)
        if total > TEXT_LIMIT:
            break
    return "\n".join(out)


def read_mail(raw: bytes, *, internal_date: datetime | None, folder_role: str, facts: str | None = None,
              blob: str | None = None) -> tuple[NewMail, Headers]:
    """The :class:`NewMail` of ``raw`` and its parsed header block (``blob``: the name of
    ``raw``, when the caller has it)."""
    h = split_headers(raw)
    subject = decoded(h.get("subject"))
    senders = addresses(h, "from")
    head = " ".join(decoded(raw.decode("utf-8", "replace")) for _name, raw in h.fields)
    refs = message_ids(h.get("references"))
    in_reply_to = message_ids(h.get("in-reply-to"))
    ids = message_ids(h.get("message-id"))
    new = NewMail(
        blob=blob or name_of(raw), size=len(raw),
        internal_date=internal_date or header_date(h.get("date")) or datetime.now(timezone.utc),
        sent_date=header_date(h.get("date")), message_id=ids[0] if ids else None,
        in_reply_to=in_reply_to[-1] if in_reply_to else None, refs=refs, subject=subject[:2000],
        from_addr=senders[0] if senders else "", to_addrs=addresses(h, "to"), cc_addrs=addresses(h, "cc"),
        direction="out" if folder_role == "sent" else "in", folder_role=folder_role, facts=facts,
        text=search_text(head, body_text(raw)))
    return new, h
