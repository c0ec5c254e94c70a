"""The waiting spool as an operator sees it: ``mailwarden queue list|show|retry|bounce``.

An operator never sends or bounces anything here: :func:`retry` makes the waiting items of a
message due now (and puts a shunted one back where it was), :func:`give_up` moves them to
``bounce``; the delivery process, which holds the upstream connections, acts on them at its
next look at the spool.  Each change is one conditional UPDATE per item (``WHERE stage =`` the
stage just read), so an item the deliverer finished meanwhile is left as it is — nothing is
done twice.  Every change is an audit event naming who made it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from ..audit import AuditLog
from ..directory import DirectoryError
from ..models import Message, SpoolItem, utcnow
from . import states as st
from .rows import aware, bounce_reason


@dataclass(frozen=True)
class Queued:
    """One spool item, with what its message's row adds."""

    id: int               # the spool item
    message_id: int       # what the sender was told ("Queued as 12"); the commands take this
    operator: str
    rcpts: list[str]
    state: str            # see states.STATES; a shunted item is "shunt"
    stage: str            # as stored ("shunt:relay")
    attempts: int
    next_attempt: datetime
    created_at: datetime
    last_error: str | None
    subject: str
    size: int
    blob: str

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "message": self.message_id, "operator": self.operator, "rcpts": self.rcpts,
                "state": self.state, "stage": self.stage, "attempts": self.attempts,
                "next_attempt": self.next_attempt.isoformat(), "created_at": self.created_at.isoformat(),
                "last_error": self.last_error, "subject": self.subject, "size": self.size, "file": self.blob}


def _stages(states: Sequence[str]) -> tuple[list[str], bool]:
    unknown = [s for s in states if s not in st.STATES]
    if unknown:
        raise DirectoryError(f"unknown state {unknown[0]!r}: choose from {', '.join(st.STATES)}")
    return [s for s in states if s != st.SHUNT], st.SHUNT in states


def _queued(item: SpoolItem, msg: Message | None) -> Queued:
    assert item.id is not None
    return Queued(id=item.id, message_id=item.message_id, operator=item.operator, rcpts=json.loads(item.rcpts),
                  state=st.state_name(item.stage), stage=item.stage, attempts=item.attempts,
                  next_attempt=aware(item.next_attempt), created_at=aware(item.created_at),
                  last_error=item.last_error, subject=msg.subject if msg else "", size=msg.size if msg else 0,
                  blob=item.blob)


def list_queue(*, session: Session, states: Sequence[str] = st.WAITING, message_id: int | None = None,
               visible_to: Callable[[str], bool] | None = None) -> list[Queued]:
    """Items in ``states``, the next due first."""
    plain, shunts = _stages(states)
    where = col(SpoolItem.stage).in_(plain)
    if shunts:
        where = where | col(SpoolItem.stage).startswith(st.SHUNT + ":")
    q = (select(SpoolItem, Message).join(Message, col(Message.id) == SpoolItem.message_id, isouter=True)
         .where(where).order_by(col(SpoolItem.next_attempt), col(SpoolItem.id)))
    if message_id is not None:
        q = q.where(SpoolItem.message_id == message_id)
    return [_queued(item, msg) for item, msg in session.exec(q).all() if visible_to is None or visible_to(item.operator)]


def waiting(*, session: Session, message_id: int, visible_to: Callable[[str], bool] | None = None,
            states: Sequence[str] = st.WAITING) -> list[Queued]:
    """The waiting items of a message (or those in ``states``); an error naming what to do
    when there are none."""
    items = list_queue(session=session, message_id=message_id, states=states)
    if not items:
        msg = session.get(Message, message_id)
        if msg is None:
            raise DirectoryError(f"no message {message_id} (see `mailwarden queue list`)")
        raise DirectoryError(f"message {message_id} is not waiting in the queue: it is {msg.status}")
    if visible_to is not None and not any(visible_to(i.operator) for i in items):
        raise DirectoryError(f"message {message_id} is not from your team")
    return items


def _move(session: Session, item: Queued, **values: object) -> bool:
    """One conditional UPDATE: only if the item is still in the stage it was read in."""
    result = session.execute(update(SpoolItem).where(col(SpoolItem.id) == item.id, col(SpoolItem.stage) == item.stage)
                             .values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def retry(*, session: Session, audit: AuditLog, message_id: int, actor: str,
          visible_to: Callable[[str], bool] | None = None) -> list[Queued]:
    """Make the waiting items of a message due now; a shunted one goes back to the stage it
    was shunted from, with its count of unexpected errors started again.  Commits."""
    moved = []
    for item in waiting(session=session, message_id=message_id, visible_to=visible_to):
        values: dict[str, object] = {"next_attempt": utcnow()}
        if st.is_shunted(item.stage):  # the count of unexpected errors starts again
            values["stage"] = st.unshunted(item.stage)
            values["last_error"] = (bounce_reason(item.last_error) if values["stage"] == st.BOUNCE
                                    else f"retried by {actor} after: {item.last_error or ''}")[:2000]
        if _move(session, item, **values):
            moved.append(item)
            audit.append(session=session, actor=actor, action="queue.retry", target=",".join(item.rcpts),
                         message=message_id, item=item.id, operator=item.operator, state=item.state)
    session.commit()
    return moved


BOUNCEABLE = (st.RELAY, st.BOUNCE, st.shunted(st.RELAY), st.shunted(st.BOUNCE))


def give_up(*, session: Session, audit: AuditLog, message_id: int, actor: str, reason: str,
            visible_to: Callable[[str], bool] | None = None) -> list[Queued]:
    """Stop trying to send a message: its items still to be relayed go to ``bounce``, and the
    delivery process puts the bounce report in the sender's INBOX view.  Commits."""
    items = waiting(session=session, message_id=message_id, visible_to=visible_to)
    unsent = [i for i in items if i.stage in BOUNCEABLE]
    if not unsent:
        raise DirectoryError(f"message {message_id} was delivered already; only its "
                             f"{'Sent copy' if any(i.state == st.APPEND for i in items) else 'notice'} "
                             f"waits (use `mailwarden queue retry {message_id}`)")
    moved = []
    for item in unsent:
        text = f"not sent: given up by {actor}" + (f": {reason}" if reason else "")
        if _move(session, item, stage=st.BOUNCE, next_attempt=utcnow(), last_error=text[:2000]):
            moved.append(item)
            audit.append(session=session, actor=actor, action="queue.bounce", target=",".join(item.rcpts),
                         message=message_id, item=item.id, operator=item.operator, reason=reason[:500])
    session.commit()
    if not moved:
        raise DirectoryError(f"message {message_id} was sent or changed meanwhile: see `mailwarden queue show "
                             f"{message_id}`")
    return moved
