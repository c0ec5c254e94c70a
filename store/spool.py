"""The durable outbound queue.

``accept`` writes the message bytes to a file (write, fsync, rename, fsync the
folder), then commits the spool row, the message row and the audit event in
one transaction.  Only after it returns may the client hear 250.  If the
commit fails, the file is removed again; a file without a row (a crash
between the two) is swept by :func:`sweep_orphans`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from .audit import AuditLog
from .models import SpoolItem, utcnow
from .rawsql import raw


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
_SPOOL = ("INSERT INTO spool (message_id, blob, mail_from, rcpts, operator, keywords, sent_headers, stage, decision, "
          "attempts, next_attempt, created_at) VALUES (:message_id, :blob, :mail_from, :rcpts, :operator, :keywords, "
          ":sent_headers, :stage, :decision, :attempts, :next_attempt, :created_at)")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_blob(spool_dir: Path, chunks: Sequence[bytes | memoryview], *, sync_dir: bool = True) -> tuple[str, int]:
    """Durably write the chunks to a new file in ``spool_dir``; returns its name and size.

    With ``sync_dir=False`` the caller must fsync the folder (:func:`sync_dirs`)
    before committing the rows that name the file — the gateway does that once
    per group commit instead of once per message."""
    name = f"{utcnow():%Y%m%d%H%M%S}-{uuid.uuid4().hex}.eml"
    tmp = spool_dir / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            size += len(view)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, spool_dir / name)
    if sync_dir:
        _fsync_dir(spool_dir)
    return name, size


@dataclass
class Blobs:
    """The files of one accepted message, written before its rows are committed."""

    message: str
    size: int
    notices: list[str]
    written: list[Path]
    original: str | None = None  # file name under originals/ (the message before redaction)

    def discard(self) -> None:
        """Remove the files again (the commit failed: nothing may be left half-written)."""
        for p in self.written:
            p.unlink(missing_ok=True)


def originals_dir(spool_dir: Path) -> Path:
    return spool_dir.parent / "originals"


def sync_dirs(*dirs: Path) -> None:
    """Make the names of files written with ``sync_dir=False`` durable."""
    for d in dirs:
        if d.exists():
            _fsync_dir(d)


def write_blobs(spool_dir: Path, chunks: Sequence[bytes | memoryview], notices: Sequence[bytes] = (),
                original: bytes | None = None, *, sync_dir: bool = True) -> Blobs:
    """Durably write a message, its notices and (when redacted) its original."""
    name, size = write_blob(spool_dir, chunks, sync_dir=sync_dir)
    blobs = Blobs(name, size, [], [spool_dir / name])
    try:
        for n in notices:
            blobs.notices.append(write_blob(spool_dir, [n], sync_dir=sync_dir)[0])
            blobs.written.append(spool_dir / blobs.notices[-1])
        if original is not None:
            kept = originals_dir(spool_dir)
            kept.mkdir(mode=0o700, exist_ok=True)
            blobs.original = write_blob(kept, [original], sync_dir=sync_dir)[0]
            blobs.written.append(kept / blobs.original)
    except BaseException:
        blobs.discard()
        raise
    return blobs


def record(*, session: Session, audit: AuditLog, env: Envelope, blobs: Blobs, stage: str = "relay",
           events: Sequence[tuple[str, dict[str, Any]]] = (), decision: str = "") -> int:
    """Add the rows for one accepted message (no commit: the caller commits); returns the message id.

    ``stage`` is ``relay`` (send now) or ``held`` (quarantined).  Notices are
    messages for the operator, delivered to the shared INBOX tagged for them.
    ``events`` are further audit events (action, detail) committed with it.
    Plain SQL (:mod:`.rawsql`), not ORM objects: this runs for every message, on the writer thread.
    """
    db = raw(session)
    now = utcnow()
    rcpts = json.dumps(list(env.rcpts))
    msg_id = db.insert(_MESSAGES, {
        "direction": "out", "operator_id": env.operator_id,
        "customer_id": env.customer_ids[0] if env.customer_ids else None, "recipients": rcpts,
        "subject": env.subject[:2000], "message_id": env.message_id, "size": blobs.size,
        "status": "quarantined" if stage == "held" else "queued", "created_at": now})
    customers = [{"message_id": msg_id, "customer_id": cid} for cid in dict.fromkeys(env.customer_ids)]
    if customers:
        db.executemany(_MESSAGE_CUSTOMERS, customers)
    item = {"message_id": msg_id, "blob": blobs.message, "mail_from": env.mail_from, "rcpts": rcpts,
            "operator": env.operator, "keywords": " ".join(env.keywords), "sent_headers": env.sent_headers,
            "stage": stage, "decision": decision, "attempts": 0, "next_attempt": now, "created_at": now}
    db.execute(_SPOOL, item)
    if blobs.notices:
        db.executemany(_SPOOL, [
            {**item, "blob": n, "mail_from": "", "rcpts": "[]", "keywords": f"$mw_op_{env.operator} $mw_notice",
             "sent_headers": "", "stage": "notice", "decision": ""} for n in blobs.notices])
    audit.append(session=session, actor=env.operator, action="send.accepted", target=",".join(env.rcpts),
                 peer=env.peer, message=msg_id, subject=env.subject[:200], size=blobs.size,
                 customers=list(env.customer_ids), held=stage == "held",
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


PENDING = ("relay", "append", "notice")


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
    verify: bool = False  # the append stage asks the upstream first whether the copy is there already


_DUE_COLUMNS = tuple(f.name for f in fields(DueItem) if f.name != "verify")  # read in this order


def due(*, session: Session, now: datetime, limit: int, stages: Sequence[str] = PENDING,
        exclude: Collection[int] = ()) -> list[DueItem]:
    """Items to work on now, oldest first; ``exclude``: ids already being worked on (left out
    in the query when there are few enough to name, else after it).  Plain SQL: the delivery
    process asks after every burst of accepted mail."""
    db = raw(session)
    params: dict[str, Any] = {"now": now, "limit": limit}
    params.update({f"s{i}": st for i, st in enumerate(stages)})
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


def backoff(attempts: int, initial: float, cap: float = 3600.0) -> timedelta:
    """Exponential: initial, 2×, 4× … capped at an hour."""
    return timedelta(seconds=min(cap, initial * (2 ** max(0, attempts - 1))))


def sweep_orphans(*, session: Session, spool_dir: Path, older_than: timedelta = timedelta(hours=1)) -> int:
    """Remove spool files no row refers to (left by a crash between write and commit)."""
    known = set(session.exec(select(SpoolItem.blob)).all())
    cutoff = (utcnow() - older_than).timestamp()
    removed = 0
    for p in spool_dir.iterdir():
        if p.name.endswith(".eml") and p.name not in known and p.stat().st_mtime < cutoff:
            p.unlink(missing_ok=True)
            removed += 1
        elif p.name.startswith(".") and p.name.endswith(".tmp") and p.stat().st_mtime < cutoff:
            p.unlink(missing_ok=True)
    return removed
