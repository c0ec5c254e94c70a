"""Putting fetched messages into the store: bytes to a blob, the header facts and search text
read, the mail filed, and its place upstream recorded -- a batch in one transaction, with the
folder's progress mark, so an import killed at any moment starts again where it stopped and
never stores a message twice (a mail is its bytes: the same bytes found again only gain a
location).

Runs in a worker thread (it parses and writes); the asyncio side hands it batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mailwarden.store import StoreHandle
from mailwarden.store.blobs import name_of
from mailwarden.store.directory import AddressBook
from mailwarden.store.mails import Filing, NewMail, add_location, insert_mail, known_blobs, stale_locations
from mailwarden.store.models import DEFAULT_MAILBOX, Folder, MailLocation, utcnow
from mailwarden.store.views import bump_epoch

from sqlmodel import Session

from mailwarden.gateway.headers import Headers
from mailwarden.gateway.sync.filing import FilingPolicy, file_mail
from mailwarden.gateway.sync.reading import read_mail

log = logging.getLogger(__name__)

Describe = Callable[[bytes], "str | None"]  # a message's bytes -> what IMAP FETCH will serve (JSON)
Mask = Callable[[bytes], "bytes | None"]  # an inbound message -> its rendition with private contacts masked


@dataclass(frozen=True)
class Incoming:
    """One message as fetched from a folder upstream."""

    uid: int
    raw: bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    modseq: int | None = None


@dataclass(frozen=True)
class Imported:
    uid: int
    mail_id: int
    new: bool  # False: the same bytes were in the store already (another folder, an earlier run)
    filing: Filing | None


class Importer:
    """Stores batches of fetched messages for one company mailbox."""

    def __init__(self, store: StoreHandle, policy: FilingPolicy, *, mailbox_id: int = DEFAULT_MAILBOX,
                 describe: Describe | None = None, mask: Mask | None = None) -> None:
        self.store, self.policy, self.mailbox_id, self.describe, self.mask = store, policy, mailbox_id, describe, mask

    def store_batch(self, folder_id: int, uidvalidity: int, items: Sequence[Incoming]) -> list[Imported]:
        """Store ``items`` of the folder (under ``uidvalidity``) and move its progress mark past
        them.  The messages are read, described and masked first, outside any transaction; their
        bytes are written and made durable; then one short write transaction files them and
        records where they are.  A message that cannot be read is stored all the same, filed for
        the pool as ``unreadable`` (never holding the folder up)."""
        if not items:
            return []
        names = [name_of(it.raw) for it in items]
        with Session(self.store.engine) as r:  # reads only: no write lock while parsing
            folder = r.get(Folder, folder_id)
            assert folder is not None
            role = folder.role
            known = known_blobs(session=r, names=names, mailbox_id=self.mailbox_id)
        prepared: dict[str, tuple[NewMail, Headers | None]] = {}
        for it, name in zip(items, names):
            if name not in known and name not in prepared:
                prepared[name] = self._read(it, name, role, folder_id)
        for it, name in zip(items, names):
            self.store.blobs.put(it.raw, name)
        self.store.blobs.sync()
        out: list[Imported] = []
        with self.store.session() as s:
            folder = s.get(Folder, folder_id)
            assert folder is not None
            if folder.uidvalidity != uidvalidity:  # changed under us: the caller re-reads the folder
                raise RuntimeError(f"folder {folder.name!r} changed UIDVALIDITY during the import")
            known = known_blobs(session=s, names=names, mailbox_id=self.mailbox_id)  # again: another process may have
            book = AddressBook(s)
            for it, name in zip(items, names):
                mail_id = known.get(name)
                filing = None
                if mail_id is None:
                    new, headers = prepared[name]
                    filing = self._file(s, new, headers, book, it.uid)
                    if filing.filed_by == "notice":
                        new.direction = "notice"
                    elif filing.filed_by == "sent":
                        new.direction = "out"
                    if new.direction != "in":  # only what customers wrote is masked
                        new.masked_blob = new.masked_facts = None
                    mail_id = known[name] = insert_mail(session=s, new=new, filing=filing, mailbox_id=self.mailbox_id)
                add_location(session=s, mail_id=mail_id, folder_id=folder_id, uidvalidity=uidvalidity, uid=it.uid,
                             flags=it.flags, modseq=it.modseq)
                out.append(Imported(it.uid, mail_id, filing is not None, filing))
            if any(i.new for i in out):
                bump_epoch(s)  # new mail in somebody's view
            folder.uid_next = max(folder.uid_next, max(it.uid for it in items) + 1)
            folder.synced_at = utcnow()
            s.add(folder)
        return out

    def _read(self, it: Incoming, name: str, role: str, folder_id: int) -> tuple[NewMail, Headers | None]:
        """What the store keeps of a message besides its bytes (and its masked rendition)."""
        try:
            new, headers = read_mail(it.raw, internal_date=it.internal_date, folder_role=role,
                                     facts=self._facts(it.raw), blob=name)
        except Exception:  # noqa: BLE001 - malformed beyond reading: kept, and filed where a person looks
            log.exception("folder %d UID %d: a %d-byte message that cannot be read; stored for the pool",
                          folder_id, it.uid, len(it.raw))
            return NewMail(blob=name, size=len(it.raw), internal_date=it.internal_date or utcnow(),
                           subject="(a message the gateway could not read)", folder_role=role,
                           direction="out" if role == "sent" else "in"), None
        if new.direction == "in":
            new.masked_blob, new.masked_facts = self._masked(it.raw)
        return new, headers

    def _file(self, s: Session, new: NewMail, headers: Headers | None, book: AddressBook, uid: int) -> Filing:
        if headers is None:
            return Filing("unreadable")
        try:
            return file_mail(session=s, new=new, headers=headers, policy=self.policy, book=book)
        except Exception:  # noqa: BLE001 - as above: the message is kept, a person files it
            log.exception("UID %d: cannot file a message; stored for the pool", uid)
            return Filing("unreadable")

    def _masked(self, raw: bytes) -> tuple[str | None, str | None]:
        """The masked rendition of an inbound message (its blob, made durable, and its facts), or
        (None, None) when it shows nothing private."""
        if self.mask is None:
            return None, None
        try:
            masked = self.mask(raw)
        except Exception:  # noqa: BLE001 - stored all the same; the views then serve the original
            log.exception("cannot mask a %d-byte message", len(raw))
            return None, None
        if masked is None:
            return None, None
        name = self.store.blobs.put(masked)
        self.store.blobs.sync()
        return name, self._facts(masked)

    def _facts(self, raw: bytes) -> str | None:
        if self.describe is None:
            return None
        try:
            return self.describe(raw)
        except Exception:  # noqa: BLE001 - the message is stored all the same; the server computes on demand
            log.exception("cannot describe a %d-byte message for IMAP", len(raw))
            return None

    def remap(self, folder_id: int, uidvalidity: int, found: dict[int, tuple[str | None, int]]) -> set[int]:
        """After the folder's UIDVALIDITY changed to ``uidvalidity``: give each mail known under
        the old one its new UID, matched by Message-ID and size (``found``: new UID ->
        (Message-ID, size), from the headers alone), so nothing is downloaded again that the store
        has.  Returns the new UIDs matched; the others are fetched as new (and, being the same
        bytes, still only gain a location)."""
        matched: set[int] = set()
        with self.store.session() as s:
            folder = s.get(Folder, folder_id)
            assert folder is not None
            folder.uidvalidity, folder.uid_next, folder.highest_modseq = uidvalidity, 1, None
            s.add(folder)
            s.flush()
            by_key: dict[tuple[str, int], list[MailLocation]] = {}
            for loc, mail in stale_locations(session=s, folder=folder):
                if mail.message_id:
                    by_key.setdefault((mail.message_id, mail.size), []).append(loc)
            now = utcnow()
            for uid in sorted(found):
                message_id, size = found[uid]
                olds = by_key.get((message_id or "", size))
                if not olds:
                    continue
                old = olds.pop(0)
                add_location(session=s, mail_id=old.mail_id, folder_id=folder_id, uidvalidity=uidvalidity, uid=uid,
                             flags=old.flags.split())
                matched.add(uid)
            for loc, _mail in stale_locations(session=s, folder=folder):
                loc.gone_at = now  # the old UIDs mean nothing any more; the mails stay in the store
                s.add(loc)
        log.info("folder %d: UIDVALIDITY is now %d; %d of %d messages matched by Message-ID and size",
                 folder_id, uidvalidity, len(matched), len(found))
        return matched
