"""Views: which mail each user may see over IMAP, and in which of their mailboxes, decided here
and nowhere else.

A user's mailboxes (:class:`~.models.ImapBox`), by role:

==================  ====================================================================
``INBOX``           mail received for them: inbound mail and the gateway's notices, of the
                    customers they own, or filed for them alone (no customer)
``Sent``            what they sent through the gateway
``Drafts``          what their client saved there
``Trash``           what they moved there
``Pool``            mail nobody owns yet (roles ``senior``, ``supervisor``, ``admin``)
``Customers/<n>``   every mail of one customer, both ways: their own customers; a
                    supervisor's team's too; every customer for an admin
``Retention``       mail any user deleted (``admin``)
==================  ====================================================================

What a mailbox holds is a query over the store's mail and its filing (:func:`wanted`), minus
where the user put mail themselves (:class:`~.models.ImapPlacement`: Trash, a folder of their
own, deleted).  :func:`refresh` brings a mailbox's UIDs in line with it: mail newly in view gets
the next, higher UID (so a client picks it up), mail gone from view is expunged, and no UID is
ever used twice.  Customers reassigned, users disabled, roles changed: the next command's
refresh shows it.  :func:`epoch` is a counter that grows with every change of whose mail is
whose, so a session refreshes only when something changed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, exists, or_
from sqlalchemy.sql import Select
from sqlmodel import Session, col, select

from .models import Customer, ImapBox, ImapEntry, ImapPlacement, Mail, User, ViewEpoch
from .rawsql import raw

FIXED = (("INBOX", "inbox"), ("Sent", "sent"), ("Drafts", "drafts"), ("Trash", "trash"))
POOL_ROLES = ("senior", "supervisor", "admin")
CUSTOMERS = "Customers"
DELIMITER = "/"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a view is for: what of a :class:`~.models.User` views look at (a row of the
    session's costs more to make than the rest of a flag change)."""

    id: int
    login: str
    role: str
    team: str | None


Person = User | Viewer


@dataclass(frozen=True)
class Change:
    """What a refresh did to a mailbox: UIDs that appeared (with their mail) and UIDs expunged."""

    added: list[tuple[int, int]]
    removed: list[int]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def epoch(session: Session) -> int:
    return session.exec(select(ViewEpoch.epoch).where(ViewEpoch.id == 1)).one()


def changes(session: Session) -> tuple[int, int]:
    """(view epoch, the sum of every box's HIGHESTMODSEQ): either moves with any change a
    session of any user should hear of."""
    row = raw(session).execute("SELECT (SELECT epoch FROM view_epoch WHERE id = 1), "
                               "(SELECT coalesce(sum(highest_modseq), 0) FROM imap_boxes)").fetchone()
    return int(row[0]), int(row[1])


def bump_epoch(session: Session) -> None:
    """Whose mail is whose may have changed (call in the transaction that changed it): one
    UPDATE of the one row the migration made."""
    raw(session).execute("UPDATE view_epoch SET epoch = epoch + 1 WHERE id = 1")


def _new_uidvalidity(session: Session, user_id: int) -> int:
    """Non-zero, below 2**31 (clients store it in 32 bits, some signed), never one the user had."""
    value = max(1, int(time.time()) % (2**31 - 1))
    used = set(session.exec(select(ImapBox.uidvalidity).where(ImapBox.user_id == user_id)).all())
    while value in used:
        value = value % (2**31 - 2) + 1
    return value


def visible_customers(session: Session, user: Person) -> Select:  # type: ignore[type-arg]
    """The customers whose mail ``user`` may read: their own; a supervisor's team's; an admin's all."""
    q = select(Customer)
    if user.role == "admin":
        return q
    if user.role == "supervisor" and user.team:
        team = select(User.id).where(User.team == user.team)
        return q.where(or_(Customer.owner_id == user.id, col(Customer.owner_id).in_(team)))
    return q.where(Customer.owner_id == user.id)


class NeedsWrite(Exception):
    """A look in a read-only transaction found that something must be written first: the
    caller does it again in a writing one (on SQLite that takes the one write lock, so what
    only reads does not).  ``durable``: what is to be written must survive a power cut (UIDs,
    boxes); else it is a mark a power cut may undo (\\Recent)."""

    def __init__(self, what: str, *, durable: bool = True) -> None:
        super().__init__(what)
        self.durable = durable


def boxes(session: Session, user: Person, *, readonly: bool = False) -> list[ImapBox]:
    """The user's mailboxes now, made where missing; a customer box of a customer they may no
    longer see is marked gone (and comes back, with its UIDs, if the customer does).
    ``readonly``: raise :class:`NeedsWrite` instead of changing anything."""
    have = {b.name: b for b in session.exec(select(ImapBox).where(ImapBox.user_id == user.id)).all()}
    want: list[tuple[str, str, int | None]] = [(n, k, None) for n, k in FIXED]
    if user.role in POOL_ROLES:
        want.append(("Pool", "pool", None))
    if user.role == "admin":
        want.append(("Retention", "retention", None))
    for c in session.exec(visible_customers(session, user).order_by(Customer.name)).all():
        want.append((f"{CUSTOMERS}{DELIMITER}{_component(c.name)}", "customer", c.id))
    wanted_names = set()
    out = []
    for name, kind, cid in want:
        wanted_names.add(name)
        box = have.get(name)
        if readonly and (box is None or box.gone or box.customer_id != cid):
            raise NeedsWrite(name)
        if box is None:
            assert user.id is not None
            box = ImapBox(user_id=user.id, name=name, kind=kind, customer_id=cid,
                          uidvalidity=_new_uidvalidity(session, user.id))
            session.add(box)
            session.flush()
        elif box.gone or box.customer_id != cid:
            box.gone, box.customer_id = False, cid
            session.add(box)
        out.append(box)
    for name, box in have.items():
        if name in wanted_names or box.kind == "personal":
            if box.kind == "personal" and not box.gone:
                out.append(box)
            continue
        if not box.gone:
            if readonly:
                raise NeedsWrite(name)
            box.gone = True
            session.add(box)
    return out


def _component(name: str) -> str:
    """A customer's name as one level of a mailbox name (the delimiter cannot be inside it)."""
    return name.replace(DELIMITER, "-").strip() or "-"


def wanted(user: Person, box: ImapBox) -> Select:  # type: ignore[type-arg]
    """The ids of the mail ``box`` should hold now, as a query."""
    owner = Customer.owner_id
    placed = exists().where(ImapPlacement.user_id == user.id, ImapPlacement.mail_id == Mail.id)
    q = select(Mail.id).outerjoin(Customer, col(Customer.id) == Mail.customer_id)
    kind = box.kind
    if box.gone:
        return q.where(False)  # type: ignore[arg-type]
    if kind == "inbox":
        mine = or_(owner == user.id, and_(col(Mail.customer_id).is_(None), Mail.user_id == user.id))
        return q.where(col(Mail.direction).in_(("in", "notice")), mine, ~placed)
    if kind == "sent":
        return q.where(Mail.direction == "out", Mail.user_id == user.id, ~placed)
    if kind == "pool":
        nobody = or_(and_(col(Mail.customer_id).is_(None), col(Mail.user_id).is_(None)),
                     and_(col(Mail.customer_id).is_not(None), col(owner).is_(None)))
        return q.where(nobody, Mail.direction != "notice", ~placed)
    if kind == "customer":
        hidden = exists().where(ImapPlacement.user_id == user.id, ImapPlacement.mail_id == Mail.id,
                                ImapPlacement.place == "hidden")
        return q.where(Mail.customer_id == box.customer_id, ~hidden)
    if kind in ("trash", "personal", "drafts"):
        place = "trash" if kind == "trash" else "box"
        return select(ImapPlacement.mail_id).where(ImapPlacement.user_id == user.id, ImapPlacement.place == place,
                                                   *(() if kind == "trash" else (ImapPlacement.box_id == box.id,)))
    if kind == "retention":
        return select(ImapPlacement.mail_id).where(ImapPlacement.place == "hidden").distinct()
    raise ValueError(f"unknown mailbox kind {kind!r}")


def refresh(session: Session, user: Person, box: ImapBox, *, readonly: bool = False) -> Change:
    """Bring ``box``'s UIDs in line with :func:`wanted`: new mail gets new UIDs (oldest first),
    mail gone from the view is expunged.  Both raise the box's HIGHESTMODSEQ.  ``readonly``:
    only look, and raise :class:`NeedsWrite` if there is something to do."""
    if box.id is not None and not readonly:
        # Read uid_next as it is now, and hold the box (PostgreSQL) until the caller commits: two
        # sessions of one user refreshing one box must not hand out the same UID.
        session.flush()  # a refresh would drop changes not yet flushed
        session.refresh(box, with_for_update=True)
    want = set(session.exec(wanted(user, box)).all())
    present = {mail_id: uid for uid, mail_id in session.exec(select(ImapEntry.uid, ImapEntry.mail_id).where(
        ImapEntry.box_id == box.id, col(ImapEntry.expunged_modseq).is_(None))).all()}
    gone = [present[m] for m in present if m not in want]
    new = [m for m in want if m not in present]
    if not gone and not new:
        return Change([], [])
    if readonly:
        raise NeedsWrite(box.name)
    box.highest_modseq += 1
    modseq = box.highest_modseq
    if gone:
        for entry in session.exec(select(ImapEntry).where(ImapEntry.box_id == box.id,
                                                          col(ImapEntry.uid).in_(gone))).all():
            entry.expunged_modseq = modseq
            session.add(entry)
    added: list[tuple[int, int]] = []
    if new:
        order = session.exec(select(Mail.id).where(col(Mail.id).in_(new)).order_by(Mail.internal_date, Mail.id)).all()
        for mail_id in order:
            uid = box.uid_next
            box.uid_next += 1
            session.add(ImapEntry(box_id=box.id, uid=uid, mail_id=mail_id, modseq=modseq))  # type: ignore[arg-type]
            added.append((uid, mail_id))
    session.add(box)
    return Change(added, sorted(gone))


def entries(session: Session, box: ImapBox) -> Sequence[tuple[int, int, int]]:
    """The box's messages in UID order: (uid, mail id, modseq)."""
    return session.exec(select(ImapEntry.uid, ImapEntry.mail_id, ImapEntry.modseq).where(
        ImapEntry.box_id == box.id, col(ImapEntry.expunged_modseq).is_(None)).order_by(ImapEntry.uid)).all()
