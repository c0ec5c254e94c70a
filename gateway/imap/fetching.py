"""FETCH responses, from a mail's precomputed facts and its blob.

ENVELOPE, BODY and BODYSTRUCTURE come from the facts the import wrote (no parse of the message
at FETCH); body sections are byte ranges of the blob (:mod:`.sections`), read only for the
items that ask for bytes.  A role that may not see customers' private contacts is served the
masked rendition, whose facts and sizes are its own, for every form.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from mailwarden.store.blobs import Blobs, BlobMissing
from mailwarden.store.models import Mail
from sqlalchemy.engine import Engine

from .bodystructure import MessageFacts, describe
from .commands import FetchItem
from .sections import locate, partial
from .wire import render_body, render_bodystructure, render_envelope

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FIELD_NAME = re.compile(rb"([!-9;-~]+)[ \t]*:")


@dataclass(eq=False)
class Source:
    """What one message is served from, for one role; ``wire``: its ENVELOPE, BODYSTRUCTURE
    and BODY as written once."""

    blob: str
    facts: MessageFacts
    internal_date: datetime
    wire: dict[str, bytes] = field(default_factory=dict)

    def render(self, name: str) -> bytes:
        out = self.wire.get(name)
        if out is None:
            out = self.wire[name] = _RENDER[name](self.facts)
        return out


_RENDER = {"ENVELOPE": render_envelope, "BODYSTRUCTURE": render_bodystructure, "BODY": render_body}


class SourceCache:
    """The sources of the mails served last, by (mail id, masked).  A stored mail's bytes and
    facts never change, so a listing after the first is written from memory, as Dovecot writes
    its own from its index cache; the oldest go past ``limit``.  Safe across worker threads."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._items: OrderedDict[tuple[int, bool], Source] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, mail_id: int, masked: bool) -> Source | None:
        with self._lock:
            src = self._items.get((mail_id, masked))
            if src is not None:
                self._items.move_to_end((mail_id, masked))
            return src

    def put(self, mail_id: int, masked: bool, src: Source) -> Source:
        with self._lock:
            self._items[(mail_id, masked)] = src
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return src

    def source(self, mail: Mail, *, masked: bool, blobs: Blobs) -> Source:
        assert mail.id is not None
        return self.get(mail.id, masked) or self.put(mail.id, masked, source_of(mail, masked=masked, blobs=blobs))


_CACHES: weakref.WeakKeyDictionary[Engine, SourceCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def sources(engine: Engine) -> SourceCache:
    """The cache of one store (its engine) in this process: the sessions of every user share it,
    since a source is a mail's, not a view's."""
    with _CACHES_LOCK:
        cache = _CACHES.get(engine)
        if cache is None:
            cache = _CACHES[engine] = SourceCache()
        return cache


def source_of(mail: Mail, *, masked: bool, blobs: Blobs) -> Source:
    """The rendition ``mail`` is served as (``masked``: the role sees the masked one where
    the import made one).  Facts missing (a mail stored before they were kept) are made now."""
    blob, facts = mail.blob, mail.facts
    if masked and mail.masked_blob:
        blob, facts = mail.masked_blob, mail.masked_facts
    try:
        parsed = MessageFacts.from_json(facts) if facts else describe(blobs.read(blob))
    except (ValueError, BlobMissing):
        parsed = describe(b"")
    when = mail.internal_date if mail.internal_date.tzinfo else mail.internal_date.replace(tzinfo=timezone.utc)
    return Source(blob, parsed, when)


def internal_date(when: datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 +0000"``."""
    when = when.astimezone(timezone.utc)
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (when.day, _MONTHS[when.month - 1].encode(), when.year,
                                                      when.hour, when.minute, when.second)


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def header_fields(header: bytes, names: tuple[str, ...], keep: bool) -> bytes:
    """The fields of ``header`` named (``keep``) or not named in ``names``, then the blank line."""
    wanted = {n.lower().encode() for n in names}
    out = []
    lines = header.split(b"\n")
    field: list[bytes] = []
    selected = False

    def flush() -> None:
        if field and selected:
            out.append(b"\n".join(field) + b"\n")

    for line in lines:
        if line in (b"", b"\r"):
            continue
        if line[:1] in (b" ", b"\t") and field:
            field.append(line)
            continue
        flush()
        m = _FIELD_NAME.match(line)
        field = [line]
        selected = m is not None and ((m.group(1).lower() in wanted) == keep)
    flush()
    return b"".join(out) + b"\r\n"


def body_bytes(item: FetchItem, src: Source, blobs: Blobs) -> bytes | None:
    """The bytes a body item answers (None: no such part, answered as an empty string)."""
    name = item.name
    if name == "RFC822":
        span: tuple[int, int] | None = (0, src.facts.size)
    elif name == "RFC822.HEADER":
        span = locate(src.facts, "HEADER")
    elif name == "RFC822.TEXT":
        span = locate(src.facts, "TEXT")
    else:
        assert item.section is not None or name == "BODY[]"
        span = locate(src.facts, item.section.spec() if item.section else "")
    if span is None:
        return None
    section = item.section
    if section is not None and section.text.startswith("HEADER.FIELDS"):
        data = header_fields(blobs.read_range(src.blob, *span), section.fields, keep=section.text == "HEADER.FIELDS")
        if item.partial is not None:
            off, count = item.partial
            data = data[off:off + count]
        return data
    if item.partial is not None:
        span = partial(span, *item.partial)
    return blobs.read_range(src.blob, *span) if span[1] > span[0] else b""


def sets_seen(item: FetchItem) -> bool:
    return (item.name in ("BODY[]", "RFC822", "RFC822.TEXT")) and not item.peek


def render_item(item: FetchItem, src: Source, blobs: Blobs) -> bytes:
    """``NAME value`` of one item (FLAGS, UID and MODSEQ are the session's)."""
    name = item.name
    if name in _RENDER:
        return name.encode() + b" " + src.render(name)
    if name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % src.facts.size
    if name == "INTERNALDATE":
        return b"INTERNALDATE " + internal_date(src.internal_date)
    data = body_bytes(item, src, blobs)
    label = item.label().encode()
    return label + b" " + (b'""' if data is None else literal(data))
