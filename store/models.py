"""Tables of the store.

Timestamps are timezone-aware UTC.  Lookup columns (login, domain, contact
address, spool state) are indexed.  The audit table is append-only; see
:mod:`mailwarden.store.audit` for the hash chain.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

ROLES = ("sales", "senior", "supervisor", "admin")
DEFAULT_MAILBOX = 1  # the id of the mailbox ``[upstream]`` names: the company mailbox of every row until told otherwise


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(**kw: object) -> object:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, **kw))


def _ts_or_none(**kw: object) -> object:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True, **kw))


def _mailbox_ref() -> object:
    """The company mailbox a row belongs to (the default one unless said otherwise)."""
    return Field(default=DEFAULT_MAILBOX, sa_column=Column(
        Integer, ForeignKey("mailboxes.id"), nullable=False, server_default=text(str(DEFAULT_MAILBOX))))


class Mailbox(SQLModel, table=True):
    """A company mailbox behind the gateway (``[upstream]`` is the one with id 1, "default")."""

    __tablename__ = "mailboxes"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    address: str = Field(default="", max_length=320)
    created_at: datetime = _ts()  # type: ignore[assignment]


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    role: str = Field(default="sales", max_length=16)
    team: str | None = Field(default=None, max_length=64)
    title: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=64)
    password_hash: str = Field(max_length=255)
    enabled: bool = Field(default=True)
    created_at: datetime = _ts()  # type: ignore[assignment]
    # Bumped on disable/passwd so that live sessions notice and end.
    generation: int = Field(default=0)
    # The language of what the gateway tells this user (refusals, notices); None: the config's.
    lang: str | None = Field(default=None, max_length=8)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    # The name casefolded: names are found, and unique, regardless of case ("ACME" is "Acme").
    name_key: str = Field(index=True, unique=True, max_length=220)
    owner_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    created_at: datetime = _ts()  # type: ignore[assignment]
    created_by: str | None = Field(default=None, max_length=64)
    mailbox_id: int = _mailbox_ref()  # type: ignore[assignment]
    # When the owner was told the customer returns to the pool for want of mail (auto-return).
    return_reminded_at: datetime | None = _ts_or_none()  # type: ignore[assignment]


class CustomerDomain(SQLModel, table=True):
    __tablename__ = "customer_domains"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    domain: str = Field(index=True, unique=True, max_length=255)


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    email: str = Field(index=True, unique=True, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=64)


class Message(SQLModel, table=True):
    """One message the gateway handled, in either direction."""

    __tablename__ = "messages"
    id: int | None = Field(default=None, primary_key=True)
    direction: str = Field(max_length=8)  # "out" | "in"
    operator_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    customer_id: int | None = Field(default=None, foreign_key="customers.id", index=True)
    recipients: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    message_id: str | None = Field(default=None, max_length=998, index=True)
    size: int = 0
    status: str = Field(default="queued", max_length=16, index=True)
    status_detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()  # type: ignore[assignment]
    delivered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    mailbox_id: int = _mailbox_ref()  # type: ignore[assignment]


class MessageCustomer(SQLModel, table=True):
    """Every customer a message was addressed to (a message may reach several)."""

    __tablename__ = "message_customers"
    __table_args__ = (UniqueConstraint("message_id", "customer_id"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)


class SpoolItem(SQLModel, table=True):
    """A message accepted for relay.  The bytes live in a file under the spool folder.

    ``stage``: where it is in its lifecycle (``relay``, ``append``, ``done``, ``bounced``, ``held``,
    ``shunt:<stage>`` …), named in :mod:`mailwarden.store.spool.states`, changed only by the spool
    and quarantine modules of the store.
    """

    __tablename__ = "spool"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    blob: str = Field(max_length=255)
    mail_from: str = Field(max_length=320)
    rcpts: str = Field(sa_column=Column(Text, nullable=False))
    operator: str = Field(max_length=64)
    keywords: str = Field(default="", max_length=500)
    sent_headers: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    decision: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # rules' findings (JSON)
    stage: str = Field(default="relay", max_length=16, index=True)
    attempts: int = 0
    next_attempt: datetime = _ts(index=True)  # type: ignore[assignment]
    created_at: datetime = _ts()  # type: ignore[assignment]
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    mailbox_id: int = _mailbox_ref()  # type: ignore[assignment]
    # SHA-256 (hex) of the spool file when it was accepted, checked before it is sent; None for
    # rows from before digests (sent as they are) and for notices.
    digest: str | None = Field(default=None, max_length=64)


class AuditEvent(SQLModel, table=True):
    """Append-only; ``seq`` is contiguous and ``mac`` chains each row to the previous."""

    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True, unique=True)
    ts: datetime = _ts()  # type: ignore[assignment]
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    target: str = Field(default="", max_length=320)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    peer: str | None = Field(default=None, max_length=64)
    prev_mac: str = Field(max_length=64)
    mac: str = Field(max_length=64)



class RulesEpoch(SQLModel, table=True):
    """One row; ``epoch`` grows with every change an admin makes to the rules through the CLI
    (``rules import-words``, ``rules reload``): each running gateway compares it every second and
    loads its rule packs and word lists again when it moved (see :mod:`mailwarden.gateway.rulesreload`)."""

    __tablename__ = "rules_epoch"
    id: int | None = Field(default=None, primary_key=True)
    epoch: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    changed_at: datetime | None = _ts_or_none()  # type: ignore[assignment]
    changed_by: str | None = Field(default=None, max_length=64)
    change: str = Field(default="", max_length=500)


class RulesLoaded(SQLModel, table=True):
    """What each running gateway has loaded: its policy version, the epoch it saw, and the last
    load that failed (the old policy keeps running), for ``rules list`` and ``/healthz``."""

    __tablename__ = "rules_loaded"
    gateway: str = Field(primary_key=True, max_length=200)  # host name and data directory
    version: str = Field(max_length=32)
    epoch: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    loaded_at: datetime = _ts()  # type: ignore[assignment]
    seen_at: datetime = _ts()  # type: ignore[assignment]
    error: str | None = Field(default=None, max_length=2000)
    error_at: datetime | None = _ts_or_none()  # type: ignore[assignment]


# ---- the store's copy of the company mailbox (the inbound sync) ------------------------------

class Folder(SQLModel, table=True):
    """A folder of a company mailbox the sync keeps a copy of, and how far it got.

    UIDs below ``uid_next`` (under ``uidvalidity``) are in the store; ``highest_modseq`` is the
    CONDSTORE mark of the last flag sync (None: the server has no CONDSTORE)."""

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("mailbox_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox_id: int = _mailbox_ref()  # type: ignore[assignment]
    name: str = Field(max_length=500)  # as the user reads it (decoded from modified UTF-7)
    role: str = Field(default="other", max_length=16)  # inbox, sent, drafts, trash, junk, archive, all, other
    uidvalidity: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    uid_next: int = Field(default=1, sa_column=Column(BigInteger, nullable=False, default=1))  # UIDs are 32-bit unsigned
    highest_modseq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    message_count: int = 0  # EXISTS at the last SELECT
    synced_at: datetime | None = _ts_or_none()  # type: ignore[assignment]
    diffed_at: datetime | None = _ts_or_none()  # type: ignore[assignment]
    state: str = Field(default="active", max_length=16)  # active | gone
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


SYNCED_SQL = "direction IN ('in', 'out', 'notice')"  # mail that came from the company mailbox


class Mail(SQLModel, table=True):
    """One message of a company mailbox, in the store (the archive: never deleted by a user).

    ``blob`` is the SHA-256 of its bytes (:mod:`mailwarden.store.blobs`); the same bytes in two
    folders are one mail with two :class:`MailLocation` rows.  Filing: ``customer_id`` (whose
    owner, looked up when read, decides whose view it is in: reassigning a customer moves its
    mail at once), else ``user_id`` (mail for one person: the gateway's notices to an operator,
    a reply to a thread they began with no customer, round-robin), else the pool.
    ``filed_by`` says which rule decided."""

    __tablename__ = "mails"
    # One row per message of the company mailbox; a user's own copies (APPEND, COPY into their
    # folders: direction "draft", "copy") are rows of their own, of the same bytes.
    __table_args__ = (Index("ix_mails_synced_blob", "mailbox_id", "blob", unique=True,
                            sqlite_where=text(SYNCED_SQL), postgresql_where=text(SYNCED_SQL)),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox_id: int = _mailbox_ref()  # type: ignore[assignment]
    blob: str = Field(max_length=64)
    size: int = 0
    internal_date: datetime = _ts()  # type: ignore[assignment]
    sent_date: datetime | None = _ts_or_none()  # type: ignore[assignment]
    message_id: str | None = Field(default=None, max_length=998, index=True)
    in_reply_to: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    refs: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    thread_id: int | None = Field(default=None, index=True)  # the id of the thread's first mail in the store
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    from_addr: str = Field(default="", max_length=320, index=True)
    to_addrs: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    cc_addrs: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    direction: str = Field(default="in", max_length=8)  # in | out | notice
    folder_role: str = Field(default="inbox", max_length=16)
    customer_id: int | None = Field(default=None, foreign_key="customers.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    filed_by: str = Field(default="pool", max_length=16)
    filed_at: datetime = _ts()  # type: ignore[assignment]
    out_message_id: int | None = Field(default=None, foreign_key="messages.id", index=True)
    facts: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # what IMAP FETCH serves (JSON)
    # The rendition roles that may not see a customer's private contacts are served (None: the
    # same as the original): its blob and facts.
    masked_blob: str | None = Field(default=None, max_length=64)
    masked_facts: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts(index=True)  # type: ignore[assignment]


class MailLocation(SQLModel, table=True):
    """Where a mail is (or was) in a folder of the upstream: its UID and flags there."""

    __tablename__ = "mail_locations"
    __table_args__ = (UniqueConstraint("folder_id", "uidvalidity", "uid"),)
    id: int | None = Field(default=None, primary_key=True)
    mail_id: int = Field(foreign_key="mails.id", index=True)
    folder_id: int = Field(foreign_key="folders.id", index=True)
    uidvalidity: int = Field(sa_column=Column(BigInteger, nullable=False))
    uid: int = Field(sa_column=Column(BigInteger, nullable=False))
    flags: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    modseq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    gone_at: datetime | None = _ts_or_none()  # type: ignore[assignment]  # expunged upstream (kept here)


class MailText(SQLModel, table=True):
    """The searchable text of a mail (headers and decoded text parts, case-folded), for SEARCH."""

    __tablename__ = "mail_text"
    mail_id: int = Field(foreign_key="mails.id", primary_key=True)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class BlobChunk(SQLModel, table=True):
    """A message's bytes in the database (a PostgreSQL store, shared by several gateways), in
    pieces; a SQLite store keeps them as files instead."""

    __tablename__ = "blob_chunks"
    sha256: str = Field(max_length=64, primary_key=True)
    seq: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SyncStatus(SQLModel, table=True):
    """What each part of the running sync last did (``mailwarden sync status`` reads it)."""

    __tablename__ = "sync_status"
    __table_args__ = (UniqueConstraint("mailbox_id", "component"),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox_id: int = _mailbox_ref()  # type: ignore[assignment]
    component: str = Field(max_length=64)  # "idle INBOX", "worker", "import"
    state: str = Field(default="", max_length=32)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    last_event_at: datetime | None = _ts_or_none()  # type: ignore[assignment]
    updated_at: datetime = _ts()  # type: ignore[assignment]


# ---- the salespeople's IMAP views of the store ------------------------------------------------

class ImapBox(SQLModel, table=True):
    """A mailbox of one user's IMAP view: INBOX, Sent, Pool, Customers/<name> … (see
    :mod:`mailwarden.store.views`).  UIDs are never reused: ``uid_next`` only grows, and a box
    made again gets a new ``uidvalidity``."""

    __tablename__ = "imap_boxes"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=500)  # canonical: "INBOX", "Sent", "Customers/Acme GmbH"
    kind: str = Field(max_length=16)  # inbox sent drafts trash pool customer retention personal
    customer_id: int | None = Field(default=None, foreign_key="customers.id")
    uidvalidity: int = Field(sa_column=Column(BigInteger, nullable=False))
    uid_next: int = Field(default=1, sa_column=Column(BigInteger, nullable=False, default=1))
    highest_modseq: int = Field(default=1, sa_column=Column(BigInteger, nullable=False, default=1))
    # UIDs above it are \Recent: no session with the box selected has been told of them yet
    recent_uid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0"))
    subscribed: bool = True
    gone: bool = False  # no longer the user's (a customer reassigned away): hidden, kept for its UIDs
    created_at: datetime = _ts()  # type: ignore[assignment]


class ImapEntry(SQLModel, table=True):
    """A mail at a UID of a box.  ``expunged_modseq`` set: it left the box then (the user
    expunged it, or it left the user's view); the UID is not used again."""

    __tablename__ = "imap_entries"
    __table_args__ = (UniqueConstraint("box_id", "uid"),)
    id: int | None = Field(default=None, primary_key=True)
    box_id: int = Field(foreign_key="imap_boxes.id", index=True)
    uid: int = Field(sa_column=Column(BigInteger, nullable=False))
    mail_id: int = Field(foreign_key="mails.id", index=True)
    modseq: int = Field(sa_column=Column(BigInteger, nullable=False))
    expunged_modseq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class ImapFlags(SQLModel, table=True):
    """One user's flags and keywords on one mail (\\Seen in INBOX is \\Seen in Customers/… too)."""

    __tablename__ = "imap_flags"
    user_id: int = Field(foreign_key="users.id", primary_key=True)
    mail_id: int = Field(foreign_key="mails.id", primary_key=True)
    flags: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class ImapPlacement(SQLModel, table=True):
    """Where one user put one mail, away from where its filing shows it: in Trash, in a folder
    of their own (``box_id``), or deleted (``hidden``: in none of their boxes; kept, and in
    Retention for admins)."""

    __tablename__ = "imap_placements"
    user_id: int = Field(foreign_key="users.id", primary_key=True)
    mail_id: int = Field(foreign_key="mails.id", primary_key=True)
    place: str = Field(max_length=16)  # trash | hidden | box
    box_id: int | None = Field(default=None, foreign_key="imap_boxes.id")
    placed_at: datetime = _ts()  # type: ignore[assignment]


class ViewEpoch(SQLModel, table=True):
    """One row; ``epoch`` grows whenever whose mail is whose may have changed (new mail filed, a
    customer reassigned, a user's role changed): an IMAP session re-resolves its view when it
    differs from what it saw last."""

    __tablename__ = "view_epoch"
    id: int | None = Field(default=None, primary_key=True)
    epoch: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class LoginFailure(SQLModel, table=True):
    """Failed logins counted per (login, address), per login (``ip`` "") and per address
    (``login`` ""), shared by every process on the store; see :mod:`mailwarden.store.throttle`."""

    __tablename__ = "login_failures"
    login: str = Field(primary_key=True, max_length=128)
    ip: str = Field(primary_key=True, max_length=64)
    count: int = Field(default=0)
    last_at: float = Field(default=0.0)  # seconds since the epoch: comparable across machines
