"""Held (quarantined) messages: list, show, release, reject.

A held message sits in the spool at stage ``held``.  Releasing it moves it
to ``relay`` (the running gateway sends it within seconds); rejecting it
moves it to ``rejected`` and queues a notice for the sender.  The states are
those of the spool (:mod:`.spool.states`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlmodel import Session, col, select

from .audit import AuditLog
from .directory import DirectoryError
from .models import Message, SpoolItem, User, utcnow
from .spool import add_notice, write_blob
from .spool import states as st


@dataclass(frozen=True)
class Held:
    id: int                 # the message id users see ("Held for review as 12")
    operator: str
    rcpts: list[str]
    subject: str
    size: int
    held_at: datetime
    findings: list[dict[str, str]]
    reason: str
    blob: str


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts


def _held(item: SpoolItem, msg: Message) -> Held:
    assert msg.id is not None
    findings = json.loads(item.decision).get("findings", []) if item.decision else []
    return Held(id=msg.id, operator=item.operator, rcpts=json.loads(item.rcpts), subject=msg.subject, size=msg.size,
                held_at=_aware(item.created_at), findings=findings,
                reason="; ".join(f"{f.get('rule')}: {f.get('match')}" for f in findings), blob=item.blob)


def list_held(*, session: Session, visible_to: Callable[[str], bool] | None = None) -> list[Held]:
    rows = session.exec(select(SpoolItem, Message).join(Message, col(Message.id) == SpoolItem.message_id)
                        .where(SpoolItem.stage == st.HELD).order_by(SpoolItem.created_at)).all()
    return [_held(item, msg) for item, msg in rows if visible_to is None or visible_to(item.operator)]


def get_held(*, session: Session, message_id: int) -> tuple[SpoolItem, Held]:
    row = session.exec(select(SpoolItem, Message).join(Message, col(Message.id) == SpoolItem.message_id)
                       .where(SpoolItem.message_id == message_id, SpoolItem.stage == st.HELD)).first()
    if row is None:
        raise DirectoryError(f"no held message {message_id} (see `mailwarden quarantine list`)")
    return row[0], _held(row[0], row[1])


def release(*, session: Session, audit: AuditLog, message_id: int, actor: str, note: str = "",
            spool_dir: Path | None = None, notice: Callable[[Held, str], bytes] | None = None) -> Held:
    """Send a held message on; ``notice`` (made from the held message and the address of its
    company mailbox) is queued for its sender (its file in ``spool_dir``).  Four eyes: a supervisor may not release their own held mail;
    an admin may, and the event says it was their own."""
    item, held = get_held(session=session, message_id=message_id)
    own = actor == held.operator
    if own:
        role = session.exec(select(User.role).where(User.login == actor)).first()
        if role != "admin":
            raise DirectoryError(f"message {message_id} is your own: held mail is released by someone else "
                                 f"(another supervisor, or an admin)")
    name = None
    if notice is not None:
        assert spool_dir is not None
        name = write_blob(spool_dir, [notice(held, item.mail_from)])[0]
    try:
        item.stage = st.RELAY
        item.next_attempt = utcnow()
        session.add(item)
        msg = session.get(Message, message_id)
        if msg is not None:
            msg.status = st.QUEUED
            session.add(msg)
        if name is not None:
            add_notice(session=session, message_id=message_id, operator=held.operator, blob=name)
        audit.append(session=session, actor=actor, action="quarantine.release", target=",".join(held.rcpts),
                     message=message_id, operator=held.operator, note=note, **({"own_message": True} if own else {}))
        session.commit()
    except BaseException:
        session.rollback()
        if name is not None and spool_dir is not None:
            (spool_dir / name).unlink(missing_ok=True)
        raise
    return held


def reject(*, session: Session, audit: AuditLog, spool_dir: Path, message_id: int, actor: str, reason: str,
           notice: bytes) -> Held:
    item, held = get_held(session=session, message_id=message_id)
    name = write_blob(spool_dir, [notice])[0]
    try:
        item.stage = st.REJECTED
        session.add(item)
        msg = session.get(Message, message_id)
        if msg is not None:
            msg.status = st.REJECTED
            msg.status_detail = reason[:2000]
            session.add(msg)
        add_notice(session=session, message_id=message_id, operator=held.operator, blob=name)
        audit.append(session=session, actor=actor, action="quarantine.reject", target=",".join(held.rcpts),
                     message=message_id, operator=held.operator, reason=reason)
        session.commit()
    except BaseException:
        session.rollback()
        (spool_dir / name).unlink(missing_ok=True)
        raise
    return held


def expired(*, session: Session, older_than: datetime) -> Sequence[SpoolItem]:
    return session.exec(select(SpoolItem).where(SpoolItem.stage == st.HELD, SpoolItem.created_at < older_than)).all()


def may_review(*, session: Session, reviewer: str) -> Callable[[str], bool]:
    """Who may see and decide on whose held mail: admins everyone's, supervisors their team's."""
    user = session.exec(select(User).where(User.login == reviewer)).first()
    if user is None or not user.enabled or user.role not in ("supervisor", "admin"):
        raise DirectoryError(f"{reviewer!r} is not an enabled supervisor or admin")
    if user.role == "admin":
        return lambda _op: True
    team = {u.login for u in session.exec(select(User).where(User.team == user.team)).all()} if user.team else set()
    return lambda op: op in team
