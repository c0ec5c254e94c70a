"""The spool's rows: one function per transition of an item (see :mod:`.states`).

``accept`` writes the message bytes (:mod:`.files`), then commits the spool row, the message
row and the audit event in one transaction.  Only after it returns may the client hear 250.

The transitions the delivery worker makes run for every message, on the group-commit
writer's thread: they are plain SQL (:mod:`..rawsql`), keyword-only, given the writer's
``session`` (they never commit: the writer does, for a batch) and the item as the worker
read it (:class:`DueItem`), whose row nobody else changes while it is in flight.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlmodel import Session

from ..audit import AuditLog
from ..models import utcnow
from ..rawsql import raw
from . import states as st
from .files import Blobs, is_retry_twin, link_twin, write_blob, write_blobs


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpts: tuple[str, ...]
    operator: str
    operator_id: int | None
    customer_ids: tuple[int, ...]
    subject: str
    message_id: str | None
    keywords: tuple[str, ...]
    peer: str | None = None
    sent_headers: str = ""  # header fields added to the Sent copy only


_MESSAGES = ("INSERT INTO messages (direction, operator_id, customer_id, recipients, subject, message_id, size, "
             "status, created_at) VALUES (:direction, :operator_id, :customer_id, :recipients, :subject, "
             ":message_id, :size, :status, :created_at)")
_MESSAGE_CUSTOMERS = "INSERT INTO message_customers (message_id, customer_id) VALUES (:message_id, :customer_id)"
_INSERT = ("INSERT INTO spool (message_id, blob, mail_from, rcpts, operator, keywords, sent_headers, stage, decision, "
           "attempts, next_attempt, created_at, last_error, digest) VALUES (:message_id, :blob, :mail_from, :rcpts, "
           ":operator, :keywords, :sent_headers, :stage, :decision, :attempts, :next_attempt, :created_at, "
           ":last_error, :digest)")  # the one INSERT of a spool row
ERROR_MAX = 2000  # characters of an error kept


def _row(*, message_id: int, blob: str, operator: str, now: datetime, mail_from: str = "", rcpts: str = "[]",
         keywords: str = "", sent_headers: str = "", stage: str = st.RELAY, decision: str = "", attempts: int = 0,
         next_attempt: datetime | None = None, last_error: str | None = None,
         digest: str | None = None) -> dict[str, Any]:
    return {"message_id": message_id, "blob": blob, "mail_from": mail_from, "rcpts": rcpts, "operator": operator,
            "keywords": keywords, "sent_headers": sent_headers, "stage": stage, "decision": decision,
            "attempts": attempts, "next_attempt": next_attempt or now, "created_at": now, "last_error": last_error,
            "digest": digest}


def _notice(*, message_id: int, blob: str, operator: str, now: datetime) -> dict[str, Any]:
    """A notice for the operator: put in the shared INBOX, tagged for them."""
    return _row(message_id=message_id, blob=blob, operator=operator, now=now, stage=st.NOTICE,
                keywords=f"$mw_op_{operator} $mw_notice")


def record(*, session: Session, audit: AuditLog, env: Envelope, blobs: Blobs, stage: str = st.RELAY,
           events: Sequence[tuple[str, dict[str, Any]]] = (), decision: str = "") -> int:
    """Add the rows for one accepted message (no commit: the caller commits); returns the message id.

    ``stage`` is ``relay`` (send now) or ``held`` (quarantined).  Notices are
    messages for the operator, delivered to the shared INBOX tagged for them.
    ``events`` are further audit events (action, detail) committed with it.
    """
    db = raw(session)
    now = utcnow()
    rcpts = json.dumps(list(env.rcpts))
    msg_id = db.insert(_MESSAGES, {
        "direction": "out", "operator_id": env.operator_id,
        "customer_id": env.customer_ids[0] if env.customer_ids else None, "recipients": rcpts,
        "subject": env.subject[:2000], "message_id": env.message_id, "size": blobs.size,
        "status": st.QUARANTINED if stage == st.HELD else st.QUEUED, "created_at": now})
    customers = [{"message_id": msg_id, "customer_id": cid} for cid in dict.fromkeys(env.customer_ids)]
    if customers:
        db.executemany(_MESSAGE_CUSTOMERS, customers)
    db.executemany(_INSERT, [
        _row(message_id=msg_id, blob=blobs.message, mail_from=env.mail_from, rcpts=rcpts, operator=env.operator,
             keywords=" ".join(env.keywords), sent_headers=env.sent_headers, stage=stage, decision=decision, now=now,
             digest=blobs.digest),
        *(_notice(message_id=msg_id, blob=n, operator=env.operator, now=now) for n in blobs.notices)])
    audit.append(session=session, actor=env.operator, action="send.accepted", target=",".join(env.rcpts),
                 peer=env.peer, message=msg_id, subject=env.subject[:200], size=blobs.size,
                 customers=list(env.customer_ids), held=stage == st.HELD,
                 **({"original": blobs.original} if blobs.original else {}))
    for action, detail in events:
        audit.append(session=session, actor=env.operator, action=action, target=",".join(env.rcpts),
                     peer=env.peer, message=msg_id, **detail)
    return msg_id


def accept(*, session: Session, audit: AuditLog, spool_dir: Path, chunks: Sequence[bytes | memoryview],
           env: Envelope, **kw: Any) -> int:
    """Write the files and commit the rows of one message; nothing is left behind on failure."""
    blobs = write_blobs(spool_dir, chunks)
    try:
        msg_id = record(session=session, audit=audit, env=env, blobs=blobs, **kw)
        session.commit()
    except BaseException:
        session.rollback()
        blobs.discard()
        raise
    return msg_id


def add_notice(*, session: Session, message_id: int, operator: str, blob: str) -> None:
    """Queue a notice for ``operator`` about message ``message_id`` (its file written already)."""
    raw(session).execute(_INSERT, _notice(message_id=message_id, blob=blob, operator=operator, now=utcnow()))


PENDING = st.PENDING


@dataclass(slots=True)
class DueItem:
    """A spool row as the delivery worker reads it: a plain record, not an ORM object (whose
    construction cost more than the query).  The same fields as :class:`SpoolItem`."""

    id: int
    message_id: int
    blob: str
    mail_from: str
    rcpts: str
    operator: str
    keywords: str
    sent_headers: str
    decision: str
    stage: str
    attempts: int
    next_attempt: datetime
    created_at: datetime
    last_error: str | None
    digest: str | None = None  # SHA-256 of the spool file when accepted (None: spooled before digests)
    verify: bool = False  # the append stage asks the upstream first whether the copy is there already


_DUE_COLUMNS = tuple(f.name for f in fields(DueItem) if f.name != "verify")  # read in this order


def due(*, session: Session, now: datetime, limit: int, stages: Sequence[str] = PENDING,
        exclude: Collection[int] = ()) -> list[DueItem]:
    """Items to work on now, oldest first; ``exclude``: ids already being worked on (left out
    in the query when there are few enough to name, else after it).  Plain SQL: the delivery
    process asks after every burst of accepted mail.  Shunted items are in no stage offered."""
    db = raw(session)
    params: dict[str, Any] = {"now": now, "limit": limit}
    params.update({f"s{i}": stage for i, stage in enumerate(stages)})
    where = f"stage IN ({', '.join(f':s{i}' for i in range(len(stages)))}) AND next_attempt <= :now"
    named = list(exclude) if exclude and len(exclude) <= 900 else []  # well under any database's parameter limit
    if named:
        params.update({f"x{i}": x for i, x in enumerate(named)})
        where += f" AND id NOT IN ({', '.join(f':x{i}' for i in range(len(named)))})"
    rows = db.execute(f"SELECT {', '.join(_DUE_COLUMNS)} FROM spool WHERE {where} "
                      "ORDER BY next_attempt, id LIMIT :limit", params).fetchall()
    items = [DueItem(*_read_times(list(row))) for row in rows]
    return [i for i in items if i.id not in exclude] if exclude and not named else items


_TIMES = (_DUE_COLUMNS.index("next_attempt"), _DUE_COLUMNS.index("created_at"))


def _read_times(row: list[Any]) -> list[Any]:
    for k in _TIMES:
        if isinstance(row[k], str):  # SQLite: as SQLAlchemy stored it, UTC without a zone
            row[k] = datetime.fromisoformat(row[k]).replace(tzinfo=timezone.utc)
    return row


def aware(ts: datetime) -> datetime:
    """A stored time as UTC with its zone (SQLite's come back without)."""
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts


def backoff(attempts: int, initial: float, cap: float = 3600.0) -> timedelta:
    """Exponential: initial, 2×, 4× … capped at an hour."""
    return timedelta(seconds=min(cap, initial * (2 ** max(0, attempts - 1))))


def next_stage(item: DueItem) -> str:
    """After the upstream took an item: its Sent copy next, unless it is the retry of some of
    a message's recipients, whose copy the first delivery filed."""
    return st.DONE if is_retry_twin(item.blob) else st.APPEND


# -- transitions the delivery worker makes --------------------------------------


def delivered(*, session: Session, audit: AuditLog, item: DueItem, rcpts: Sequence[str],
              retry: Mapping[str, str], retry_initial: float, spool_dir: Path) -> bool:
    """The upstream took ``item`` for ``rcpts`` (recording it is what makes delivery exactly-once):
    on to its Sent copy.  ``retry``: recipients refused for now (→ their error), split off as an
    item of their own to relay again, with its own name for the file (a hard link) so each item
    files its own.  True when such a link was made: its name must be made durable
    (:func:`~.files.sync_dirs`) before this commits."""
    db, now = raw(session), utcnow()
    if retry:
        db.execute(_INSERT, _row(
            message_id=item.message_id, blob=link_twin(spool_dir, item.blob), mail_from=item.mail_from,
            rcpts=json.dumps(list(retry)), operator=item.operator, sent_headers=item.sent_headers, now=now,
            attempts=item.attempts + 1, next_attempt=now + backoff(item.attempts + 1, retry_initial),
            last_error="; ".join(retry.values())[:ERROR_MAX], digest=item.digest))
    db.execute("UPDATE spool SET stage = :stage, rcpts = :rcpts, next_attempt = :now WHERE id = :id",
               {"stage": next_stage(item), "rcpts": json.dumps(list(rcpts)), "now": now, "id": item.id})
    db.execute("UPDATE messages SET status = :status, delivered_at = :now WHERE id = :id",
               {"status": st.DELIVERED, "now": now, "id": item.message_id})
    audit.append(actor=item.operator, action="send.delivered", target=",".join(rcpts), session=session,
                 message=item.message_id)
    return bool(retry)


def retry_later(*, session: Session, item: DueItem, error: str | None, retry_initial: float,
                rcpts: Sequence[str] | None = None) -> None:
    """Try again after a backoff: the upstream said "later" (``error``: what it said; None keeps
    the error recorded).  ``rcpts``: only these recipients are left to try."""
    attempts = item.attempts + 1
    sets = {"attempts": attempts, "next_attempt": utcnow() + backoff(attempts, retry_initial)}
    if error is not None:
        sets["last_error"] = error[:ERROR_MAX]
    if rcpts is not None:
        sets["rcpts"] = json.dumps(list(rcpts))
    raw(session).execute(f"UPDATE spool SET {', '.join(f'{k} = :{k}' for k in sets)} WHERE id = :id",
                         {**sets, "id": item.id})


def sent_copies_filed(*, session: Session, items: Sequence[DueItem]) -> None:
    """The Sent copies (or notices) are in their folder: done."""
    raw(session).executemany("UPDATE spool SET stage = :stage WHERE id = :id",
                             [{"stage": st.DONE, "id": item.id} for item in items])


def bounced(*, session: Session, audit: AuditLog, item: DueItem, rcpts: Sequence[str], reason: str,
            partial: bool = False) -> None:
    """The operator has the bounce report for ``rcpts``.  ``partial``: the others were delivered
    (the item goes on to its Sent copy)."""
    db = raw(session)
    if not partial:
        db.execute("UPDATE spool SET stage = :stage, last_error = :error WHERE id = :id",
                   {"stage": st.BOUNCED, "error": reason[:ERROR_MAX], "id": item.id})
        db.execute("UPDATE messages SET status = :status, status_detail = :error WHERE id = :id",
                   {"status": st.BOUNCED, "error": reason[:ERROR_MAX], "id": item.message_id})
    audit.append(actor=item.operator, action="send.bounced", target=",".join(rcpts), session=session,
                 message=item.message_id, reason=reason[:500])


def bounce_later(*, session: Session, item: DueItem, reason: str, retry_initial: float) -> None:
    """Given up, but the bounce report could not be stored in the INBOX yet: the item waits in
    ``bounce`` (never sent again), its reason kept for the report."""
    attempts = item.attempts + 1
    raw(session).execute(
        "UPDATE spool SET stage = :stage, attempts = :attempts, next_attempt = :next, last_error = :error "
        "WHERE id = :id", {"stage": st.BOUNCE, "attempts": attempts, "error": reason[:ERROR_MAX], "id": item.id,
                           "next": utcnow() + backoff(attempts, retry_initial)})


_INTERNAL = re.compile(r"internal error \((\d+)/\d+\)")


def internal_failures(last_error: str | None) -> int:
    """Unexpected errors in a row that ``last_error`` says the item has had."""
    m = _INTERNAL.match(last_error or "")
    return int(m.group(1)) if m else 0


def bounce_reason(last_error: str | None) -> str:
    """What the bounce report of an item in ``bounce`` tells the sender: its recorded reason,
    without the unexpected errors noted in front of it meanwhile."""
    if internal_failures(last_error) and "\n" in (last_error or ""):
        return (last_error or "").split("\n", 1)[1]
    return last_error or "not sent"


def failed(*, session: Session, audit: AuditLog, item: DueItem, error: str, retry_initial: float) -> bool:
    """Handling ``item`` hit an unexpected error (a bug, a database hiccup): tried again after a
    backoff, and after :data:`~.states.SHUNT_AFTER` in a row shunted.  True when shunted.  An item
    in ``bounce`` keeps its reason (on the error's next line)."""
    n = internal_failures(item.last_error) + 1
    text = f"internal error ({n}/{st.SHUNT_AFTER}): {error}".replace("\n", " ")
    if item.stage == st.BOUNCE:
        text += "\n" + bounce_reason(item.last_error)
    if n < st.SHUNT_AFTER:
        retry_later(session=session, item=item, error=text, retry_initial=retry_initial)
        return False
    return shunt(session=session, audit=audit, item=item, error=text)


def shunt(*, session: Session, audit: AuditLog, item: DueItem, error: str, **detail: Any) -> bool:
    """Move ``item`` aside: kept, shown by ``queue list``, offered to no worker until an operator
    retries or bounces it.  Only from the stage it was read in (an operator may have acted, or the
    item moved on meanwhile): False, and nothing recorded, when it is no longer there.  ``detail``:
    more for its audit event."""
    moved = raw(session).execute(
        "UPDATE spool SET stage = :shunt, attempts = :attempts, last_error = :error WHERE id = :id AND stage = :stage",
        {"shunt": st.shunted(item.stage), "attempts": item.attempts + 1, "error": error[:ERROR_MAX],
         "id": item.id, "stage": item.stage}).rowcount
    if not moved:
        return False
    audit.append(actor=item.operator, action="send.shunted", target=",".join(json.loads(item.rcpts)),
                 session=session, message=item.message_id, stage=item.stage, error=error[:500], **detail)
    return True


def damaged(*, session: Session, audit: AuditLog, item: DueItem, reason: str, spool_dir: Path,
            notice: bytes | None = None) -> bool:
    """The item's spool file is not what was accepted (:func:`~.files.damage` says how): shunted
    with that reason, never sent as it is; ``notice`` (for the sender) queued with it.  False when
    the item moved on meanwhile (then nothing is recorded)."""
    what = "Sent copy not filed" if item.stage == st.APPEND else "not sent"  # an append: the customer has it
    if not shunt(session=session, audit=audit, item=item, error=f"{what}: {reason}", damaged=True):
        return False
    if notice is not None:
        add_notice(session=session, message_id=item.message_id, operator=item.operator,
                   blob=write_blob(spool_dir, [notice])[0])
    return True
