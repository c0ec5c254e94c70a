"""The store's copy of the company mailbox: folders, mails, where each lies upstream, and
whose it is.  Keyword-only query functions taking a ``session``, as in :mod:`.directory`.

A mail is its bytes (a blob, named by their SHA-256) in one company mailbox: the same message
in two folders, or fetched twice, is one :class:`~.models.Mail` with a
:class:`~.models.MailLocation` per place.  So an import that is killed and started again, or a
folder whose UIDVALIDITY changed, never makes a second copy.

Whose view a mail is in is decided once, at import (its *filing*), and stored as a customer
(the customer's owner, looked up when read, is whose it is), a user (mail for one person), or
neither (the pool).  Nothing here deletes a mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from .directory import DirectoryError, require_customer, require_user
from .rawsql import raw
from .views import bump_epoch
from .models import DEFAULT_MAILBOX, Contact, Customer, Folder, Mail, MailLocation, Message, \
    MessageCustomer, SyncStatus, User, utcnow

FILED_BY = ("contact", "domain", "thread", "sent", "notice", "manual", "pool", "round-robin", "unreadable", "draft", "copy")


@dataclass(frozen=True)
class Filing:
    """Whose a mail is: ``customer_id``, else ``user_id``, else the pool; ``filed_by`` says why."""

    filed_by: str
    customer_id: int | None = None
    user_id: int | None = None
    thread_id: int | None = None
    out_message_id: int | None = None


@dataclass
class NewMail:
    """What an import learned from a message's bytes (see :mod:`mailwarden.gateway.sync.reading`)."""

    blob: str
    size: int
    internal_date: datetime
    sent_date: datetime | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    refs: list[str] = field(default_factory=list)
    subject: str = ""
    from_addr: str = ""
    to_addrs: list[str] = field(default_factory=list)
    cc_addrs: list[str] = field(default_factory=list)
    direction: str = "in"
    folder_role: str = "inbox"
    facts: str | None = None
    text: str = ""
    masked_blob: str | None = None  # the rendition for roles that may not see private contacts
    masked_facts: str | None = None


# ---- folders ---------------------------------------------------------------------------------

def get_folder(*, session: Session, name: str, mailbox_id: int = DEFAULT_MAILBOX) -> Folder | None:
    return session.exec(select(Folder).where(Folder.mailbox_id == mailbox_id, Folder.name == name)).first()


def ensure_folder(*, session: Session, name: str, role: str, mailbox_id: int = DEFAULT_MAILBOX) -> Folder:
    folder = get_folder(session=session, name=name, mailbox_id=mailbox_id)
    if folder is None:
        folder = Folder(mailbox_id=mailbox_id, name=name, role=role)
        session.add(folder)
        session.flush()
    elif folder.role != role or folder.state != "active":
        folder.role, folder.state = role, "active"
        session.add(folder)
    return folder


def list_folders(*, session: Session, mailbox_id: int = DEFAULT_MAILBOX) -> Sequence[Folder]:
    return session.exec(select(Folder).where(Folder.mailbox_id == mailbox_id).order_by(Folder.name)).all()


def folder_counts(*, session: Session, mailbox_id: int = DEFAULT_MAILBOX) -> dict[int, int]:
    """Mails present in each folder (its current UIDVALIDITY, not expunged upstream)."""
    rows = session.exec(select(MailLocation.folder_id, func.count()).join(
        Folder, and_(Folder.id == MailLocation.folder_id, Folder.uidvalidity == MailLocation.uidvalidity)).where(
        Folder.mailbox_id == mailbox_id, col(MailLocation.gone_at).is_(None)).group_by(MailLocation.folder_id)).all()
    return {fid: n for fid, n in rows}


# ---- mails -----------------------------------------------------------------------------------

_INSERT_MAIL = (
    "INSERT INTO mails (mailbox_id, blob, size, internal_date, sent_date, message_id, in_reply_to, refs, thread_id, "
    "subject, from_addr, to_addrs, cc_addrs, direction, folder_role, customer_id, user_id, filed_by, filed_at, "
    "out_message_id, facts, masked_blob, masked_facts, created_at) VALUES (:mailbox_id, :blob, :size, :internal_date, "
    ":sent_date, :message_id, :in_reply_to, :refs, :thread_id, :subject, :from_addr, :to_addrs, :cc_addrs, :direction, "
    ":folder_role, :customer_id, :user_id, :filed_by, :now, :out_message_id, :facts, :masked_blob, :masked_facts, :now)")
_INSERT_LOCATION = (
    "INSERT INTO mail_locations (mail_id, folder_id, uidvalidity, uid, flags, modseq) "
    "VALUES (:mail_id, :folder_id, :uidvalidity, :uid, :flags, :modseq) "
    "ON CONFLICT (folder_id, uidvalidity, uid) DO NOTHING")


def insert_mail(*, session: Session, new: NewMail, filing: Filing, mailbox_id: int = DEFAULT_MAILBOX) -> int:
    """A new mail row (and its search text), filed; returns its id.  The caller checked that the
    store has no mail of these bytes yet (:func:`known_blobs`).  Plain SQL: an import writes
    thousands of these."""
    if filing.filed_by not in FILED_BY:
        raise ValueError(f"filed_by {filing.filed_by!r}")
    r = raw(session)
    mail_id = r.insert(_INSERT_MAIL, {
        "mailbox_id": mailbox_id, "blob": new.blob, "size": new.size, "internal_date": new.internal_date,
        "sent_date": new.sent_date, "message_id": new.message_id[:998] if new.message_id else None,
        "in_reply_to": new.in_reply_to, "refs": " ".join(new.refs) or None, "thread_id": filing.thread_id,
        "subject": new.subject, "from_addr": new.from_addr[:320], "to_addrs": ", ".join(new.to_addrs),
        "cc_addrs": ", ".join(new.cc_addrs), "direction": new.direction, "folder_role": new.folder_role,
        "customer_id": filing.customer_id, "user_id": filing.user_id, "filed_by": filing.filed_by, "now": utcnow(),
        "out_message_id": filing.out_message_id, "facts": new.facts, "masked_blob": new.masked_blob,
        "masked_facts": new.masked_facts})
    if filing.thread_id is None:  # the first of its thread
        r.execute("UPDATE mails SET thread_id = :id WHERE id = :id", {"id": mail_id})
    r.execute("INSERT INTO mail_text (mail_id, body) VALUES (:id, :body)", {"id": mail_id, "body": new.text})
    return mail_id


def add_mail(*, session: Session, new: NewMail, filing: Filing, mailbox_id: int = DEFAULT_MAILBOX) -> Mail:
    """:func:`insert_mail`, returning the row."""
    mail = session.get(Mail, insert_mail(session=session, new=new, filing=filing, mailbox_id=mailbox_id))
    assert mail is not None
    return mail


def known_blobs(*, session: Session, names: Sequence[str], mailbox_id: int = DEFAULT_MAILBOX) -> dict[str, int]:
    """Which of these blobs are mails of the mailbox already: name -> mail id."""
    out: dict[str, int] = {}
    for i in range(0, len(names), 500):
        chunk = list(names[i:i + 500])
        out.update(session.exec(select(Mail.blob, Mail.id).where(
            Mail.mailbox_id == mailbox_id, col(Mail.blob).in_(chunk),
            col(Mail.direction).in_(("in", "out", "notice")))).all())  # type: ignore[arg-type]
    return out


def add_location(*, session: Session, mail_id: int, folder_id: int, uidvalidity: int, uid: int,
                 flags: Sequence[str] = (), modseq: int | None = None) -> bool:
    """Record that ``mail_id`` is at ``uid`` of the folder; False when that was known already."""
    cur = raw(session).execute(_INSERT_LOCATION, {"mail_id": mail_id, "folder_id": folder_id, "uidvalidity": uidvalidity,
                                                  "uid": uid, "flags": " ".join(flags), "modseq": modseq})
    return bool(cur.rowcount)


def locations(*, session: Session, folder: Folder) -> dict[int, MailLocation]:
    """The folder's mails still present upstream under its current UIDVALIDITY, by UID."""
    rows = session.exec(select(MailLocation).where(
        MailLocation.folder_id == folder.id, MailLocation.uidvalidity == folder.uidvalidity,
        col(MailLocation.gone_at).is_(None))).all()
    return {loc.uid: loc for loc in rows}


def stale_locations(*, session: Session, folder: Folder) -> Sequence[tuple[MailLocation, Mail]]:
    """Locations under an earlier UIDVALIDITY of the folder (to re-map after it changed)."""
    return session.exec(select(MailLocation, Mail).join(Mail, col(Mail.id) == MailLocation.mail_id).where(
        MailLocation.folder_id == folder.id, MailLocation.uidvalidity != folder.uidvalidity,
        col(MailLocation.gone_at).is_(None))).all()


def mark_gone(*, session: Session, locations: Sequence[MailLocation]) -> None:
    """The messages at these locations were removed upstream; the mails stay in the store."""
    now = utcnow()
    for loc in locations:
        loc.gone_at = now
        session.add(loc)


def update_flags(*, session: Session, here: dict[int, MailLocation],
                 flags: dict[int, tuple[tuple[str, ...], int | None]]) -> int:
    """Record the upstream flags (and modseq) of each UID in ``flags``; returns how many changed."""
    changed = 0
    for uid, (names, modseq) in flags.items():
        loc = here.get(uid)
        text = " ".join(names)
        if loc is not None and (loc.flags != text or (modseq is not None and loc.modseq != modseq)):
            loc.flags, loc.modseq = text, modseq
            session.add(loc)
            changed += 1
    return changed


# ---- the running sync's own account of itself ------------------------------------------------

def set_sync_status(*, session: Session, component: str, state: str, detail: str = "", event: bool = False,
                    mailbox_id: int = DEFAULT_MAILBOX) -> None:
    row = session.exec(select(SyncStatus).where(SyncStatus.mailbox_id == mailbox_id,
                                                SyncStatus.component == component)).first()
    if row is None:
        row = SyncStatus(mailbox_id=mailbox_id, component=component)
    now = utcnow()
    row.state, row.detail, row.updated_at = state, detail[:2000], now
    if event:
        row.last_event_at = now
    session.add(row)


def sync_status(*, session: Session, mailbox_id: int = DEFAULT_MAILBOX) -> Sequence[SyncStatus]:
    return session.exec(select(SyncStatus).where(SyncStatus.mailbox_id == mailbox_id).order_by(SyncStatus.component)).all()


# ---- threads ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ThreadHit:
    """A message of the thread a new mail answers: whose it was."""

    customer_id: int | None
    user_id: int | None
    thread_id: int | None
    out_message_id: int | None = None


def thread_of(*, session: Session, ids: Sequence[str], mailbox_id: int = DEFAULT_MAILBOX) -> ThreadHit | None:
    """The newest message, among those the mail names in In-Reply-To and References, that the
    gateway knows: mail sent through it (its operator and customer) or mail in the store (its
    filing).  The last id named is the direct parent: it is tried first."""
    wanted = [i for i in dict.fromkeys(reversed(ids)) if i][:50]
    if not wanted:
        return None
    sent = {m.message_id: m for m in session.exec(select(Message).where(
        Message.direction == "out", col(Message.message_id).in_(wanted), Message.mailbox_id == mailbox_id)).all()}
    stored: dict[str, Mail] = {}
    for m in session.exec(select(Mail).where(col(Mail.message_id).in_(wanted), Mail.mailbox_id == mailbox_id,
                                             Mail.filed_by != "pool").order_by(col(Mail.id))).all():
        stored.setdefault(m.message_id or "", m)
    for mid in wanted:
        mail = stored.get(mid)
        if mail is not None and (mail.customer_id or mail.user_id):
            return ThreadHit(mail.customer_id, mail.user_id, mail.thread_id, mail.out_message_id)
        msg = sent.get(mid)
        if msg is not None:
            thread = stored[mid].thread_id if mid in stored else None
            return ThreadHit(first_customer(session=session, message=msg), msg.operator_id, thread, msg.id)
    return None


def sent_message(*, session: Session, message_id: str, mailbox_id: int = DEFAULT_MAILBOX) -> Message | None:
    """The outbound record of a message sent through the gateway, by its Message-ID."""
    return session.exec(select(Message).where(Message.direction == "out", Message.message_id == message_id,
                                              Message.mailbox_id == mailbox_id).order_by(col(Message.id))).first()


def first_customer(*, session: Session, message: Message) -> int | None:
    cid = session.exec(select(MessageCustomer.customer_id).where(
        MessageCustomer.message_id == message.id).order_by(col(MessageCustomer.id))).first()
    return cid if cid is not None else message.customer_id


# ---- listing and manual filing ---------------------------------------------------------------

@dataclass(frozen=True)
class MailRow:
    id: int
    internal_date: datetime
    direction: str
    folder_role: str
    from_addr: str
    to_addrs: str
    subject: str
    size: int
    customer: str | None
    owner: str | None
    filed_by: str
    message_id: str | None


def list_mails(*, session: Session, owner: str | None = None, customer: str | None = None, pool: bool = False,
               since: datetime | None = None, limit: int = 200, mailbox_id: int = DEFAULT_MAILBOX) -> list[MailRow]:
    """Mails newest first, cut by owner (the customer's owner, or the user a mail was filed
    for), customer, or the pool (no customer with an owner, no user)."""
    q = select(Mail, Customer.name, User.login).outerjoin(Customer, col(Customer.id) == Mail.customer_id).outerjoin(
        User, col(User.id) == func.coalesce(Customer.owner_id, Mail.user_id)).where(Mail.mailbox_id == mailbox_id)
    if owner:
        uid = require_user(session=session, login=owner).id
        q = q.where(or_(Customer.owner_id == uid, and_(col(Mail.customer_id).is_(None), Mail.user_id == uid)))
    if customer:
        q = q.where(Mail.customer_id == require_customer(session=session, name_or_id=customer).id)
    if pool:
        q = q.where(col(Customer.owner_id).is_(None), col(Mail.user_id).is_(None))
    if since is not None:
        q = q.where(Mail.internal_date >= since)
    q = q.order_by(col(Mail.internal_date).desc(), col(Mail.id).desc()).limit(limit)
    return [MailRow(m.id, m.internal_date, m.direction, m.folder_role, m.from_addr, m.to_addrs, m.subject, m.size,  # type: ignore[arg-type]
                    cname, login, m.filed_by, m.message_id) for m, cname, login in session.exec(q).all()]


def assign_mail(*, session: Session, mail_id: int, customer: str, add_contact: bool = True,
                freemail: Sequence[str] = ()) -> tuple[Mail, str | None, Customer]:
    """File mail ``mail_id`` for ``customer`` by hand; with ``add_contact`` its sender becomes a
    contact of the customer (so the next mail from them follows) unless it is somebody else's
    contact already.  Returns the mail, the customer it had before (name) and the new one."""
    mail = session.get(Mail, mail_id)
    if mail is None:
        raise DirectoryError(f"no mail {mail_id} (see `mailwarden mail list`)")
    target = require_customer(session=session, name_or_id=customer)
    before = session.get(Customer, mail.customer_id).name if mail.customer_id else None  # type: ignore[union-attr]
    mail.customer_id, mail.user_id, mail.filed_by, mail.filed_at = target.id, None, "manual", utcnow()
    session.add(mail)
    bump_epoch(session)
    sender = mail.from_addr.strip().lower()
    if add_contact and sender and mail.direction == "in" and "@" in sender:
        if session.exec(select(Contact).where(Contact.email == sender)).first() is None:
            session.add(Contact(customer_id=target.id, email=sender))  # type: ignore[arg-type]
    return mail, before, target


def last_activity(*, session: Session, mailbox_id: int = DEFAULT_MAILBOX) -> dict[int, datetime]:
    """The newest mail of each customer, either direction (what auto-return counts from)."""
    rows = session.exec(select(Mail.customer_id, func.max(Mail.internal_date)).where(
        col(Mail.customer_id).is_not(None), Mail.mailbox_id == mailbox_id).group_by(Mail.customer_id)).all()
    out: dict[int, datetime] = {cid: ts for cid, ts in rows if cid is not None}
    for cid, ts in session.exec(select(MessageCustomer.customer_id, func.max(Message.created_at)).join(
            Message, col(Message.id) == MessageCustomer.message_id).where(
            Message.mailbox_id == mailbox_id).group_by(MessageCustomer.customer_id)).all():
        if ts is not None and (cid not in out or aware(ts) > aware(out[cid])):
            out[cid] = ts
    return {cid: aware(ts) for cid, ts in out.items()}


def aware(ts: datetime) -> datetime:
    """A timestamp read back from SQLite (no zone) as the UTC it was stored in."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)
