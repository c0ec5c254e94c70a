"""SEARCH over the messages of one mailbox view, from the store (runs in a worker thread).

Flags, sizes, dates and UIDs are the session's and the mails' rows; header keys read the
message's header (decoded: RFC 2047 words, any charset), case-insensitively; TEXT the
import's searchable text (every header field and the decoded text parts, case-folded), BODY
its body half (store/searchtext.py), so a search in Chinese
finds Chinese in a GB18030 or base64 body.  Strings match as substrings, as RFC 3501 says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_tz

from mailwarden.store.blobs import Blobs, BlobMissing
from mailwarden.store.models import Mail, MailText
from mailwarden.store.searchtext import body_part, searchable
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from .commands import And, Not, Or, SearchKey
from .envelope import parse_addresses
from .sections import locate

_FLAG_KEYS = {"ANSWERED": "\\Answered", "DELETED": "\\Deleted", "DRAFT": "\\Draft", "FLAGGED": "\\Flagged",
              "SEEN": "\\Seen"}


@dataclass
class Candidate:
    seq: int
    uid: int
    mail_id: int
    modseq: int
    flags: frozenset[str]


class SearchContext:
    """What keys are evaluated against, loaded once per SEARCH and only as far as asked."""

    def __init__(self, engine: Engine, blobs: Blobs, mails: dict[int, Mail], largest_seq: int, largest_uid: int,
                 blob_of: Callable[[Mail], tuple[str, object]]) -> None:
        self.engine, self.blobs, self.mails = engine, blobs, mails
        self.largest_seq, self.largest_uid = largest_seq, largest_uid
        self._texts: dict[int, str] | None = None
        self._headers: dict[int, object] = {}
        self.blob_of = blob_of

    def text(self, mail_id: int) -> str:
        if self._texts is None:
            with Session(self.engine) as s:
                self._texts = dict(s.exec(select(MailText.mail_id, MailText.body).where(
                    col(MailText.mail_id).in_(list(self.mails)))).all())
        return self._texts.get(mail_id, "")

    def header(self, mail_id: int):  # type: ignore[no-untyped-def]
        if mail_id not in self._headers:
            mail = self.mails[mail_id]
            blob, facts = self.blob_of(mail)
            try:
                span = locate(facts, "HEADER")  # type: ignore[arg-type]
                raw = self.blobs.read_range(blob, *span) if span else b""
            except BlobMissing:
                raw = b""
            self._headers[mail_id] = BytesHeaderParser(policy=compat32).parsebytes(raw)
        return self._headers[mail_id]


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def _needle(value: object, charset: str) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode()
    try:
        return raw.decode("utf-8" if charset in ("UTF-8", "US-ASCII", "") else charset).casefold()
    except (LookupError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace").casefold()


def _day(mail_date: datetime | None) -> date | None:
    if mail_date is None:
        return None
    if mail_date.tzinfo is None:
        mail_date = mail_date.replace(tzinfo=timezone.utc)
    return mail_date.astimezone(timezone.utc).date()


def _sent_day(ctx: SearchContext, mail_id: int) -> date | None:
    """The day of the Date field as written, in its own zone (RFC 3501 6.4.4: "disregarding
    time and timezone")."""
    value = ctx.header(mail_id).get("date")
    parsed = parsedate_tz(str(value)) if value else None
    if parsed is None:
        return None
    try:
        return date(parsed[0], parsed[1], parsed[2])
    except ValueError:
        return None


def matches(key: SearchKey, c: Candidate, ctx: SearchContext, charset: str, now: datetime) -> bool:
    if isinstance(key, And):
        return all(matches(k, c, ctx, charset, now) for k in key.keys)
    if isinstance(key, Or):
        return matches(key.left, c, ctx, charset, now) or matches(key.right, c, ctx, charset, now)
    if isinstance(key, Not):
        return not matches(key.key, c, ctx, charset, now)
    name, value = key.name, key.value
    if name == "ALL":
        return True
    if name in _FLAG_KEYS:
        return _FLAG_KEYS[name] in c.flags
    if name.startswith("UN") and name[2:] in _FLAG_KEYS:
        return _FLAG_KEYS[name[2:]] not in c.flags
    if name == "RECENT":
        return "\\Recent" in c.flags
    if name == "NEW":
        return "\\Recent" in c.flags and "\\Seen" not in c.flags
    if name == "OLD":
        return "\\Recent" not in c.flags
    if name == "KEYWORD":
        return str(value) in c.flags
    if name == "UNKEYWORD":
        return str(value) not in c.flags
    if name == "UID":
        return value.contains(c.uid, ctx.largest_uid)  # type: ignore[attr-defined]
    if name == "SEQ":
        return value.contains(c.seq, ctx.largest_seq)  # type: ignore[attr-defined]
    if name == "MODSEQ":
        return c.modseq >= int(value)  # type: ignore[arg-type]
    mail = ctx.mails.get(c.mail_id)
    if mail is None:
        return False
    if name in ("LARGER", "SMALLER"):
        return mail.size > int(value) if name == "LARGER" else mail.size < int(value)  # type: ignore[arg-type]
    if name in ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"):
        day = _sent_day(ctx, c.mail_id) if name.startswith("SENT") else _day(mail.internal_date)
        if day is None:
            return False
        op = name[4:] if name.startswith("SENT") else name
        return day < value if op == "BEFORE" else day == value if op == "ON" else day >= value  # type: ignore[operator]
    if name in ("YOUNGER", "OLDER"):
        when = mail.internal_date if mail.internal_date.tzinfo else mail.internal_date.replace(tzinfo=timezone.utc)
        age = now - when
        return age <= timedelta(seconds=int(value)) if name == "YOUNGER" else age > timedelta(seconds=int(value))  # type: ignore[arg-type]
    if name in ("BODY", "TEXT"):
        text = ctx.text(c.mail_id)
        return searchable(_needle(value, charset)) in (body_part(text) if name == "BODY" else text)
    if name in ("FROM", "TO", "CC", "BCC", "SUBJECT", "HEADER"):
        field, needle = (value if name == "HEADER" else (name, value))  # type: ignore[misc]
        wanted = _needle(needle, charset)
        values = ctx.header(c.mail_id).get_all(str(field)) or []
        if not wanted:
            return bool(values)  # HEADER x "": the field is there
        if name in _ADDRESS_KEYS:
            return any(wanted in _decoded(text).casefold() for v in values for text in (str(v), *_addresses(str(v))))
        return any(wanted in _decoded(str(v)).casefold() for v in values)
    return False


_ADDRESS_KEYS = frozenset({"FROM", "TO", "CC", "BCC"})


def _addresses(value: str) -> list[str]:
    """Each address of an address field as ``name <mailbox@domain>``, comments and quoting gone,
    so ``<user (c)@ (c) domain.org>`` is found as ``user@domain.org`` (as Dovecot finds it)."""
    out = []
    for name, _route, mailbox, domain in parse_addresses(value.encode("utf-8", "surrogateescape")):
        if mailbox is None or domain is None:
            continue  # a group's start or end
        addr = (mailbox + b"@" + domain).decode("utf-8", "replace")
        out.append(f"{name.decode('utf-8', 'replace')} <{addr}>" if name else addr)
    return out


def search(candidates: list[Candidate], key: SearchKey, ctx: SearchContext, charset: str) -> list[Candidate]:
    now = datetime.now(timezone.utc)
    return [c for c in candidates if matches(key, c, ctx, charset, now)]
