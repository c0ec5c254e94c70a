"""The audit chain: append-only events, each MAC-linked to the previous one.

Each event's ``mac`` is HMAC-SHA256, under a key kept outside the database, of
the previous event's mac and the event's own fields.  ``seq`` is contiguous.
So editing a row breaks its mac, deleting a row breaks the link or leaves a
gap in ``seq``, and cutting rows off the end is caught by the head anchor (the
last seq and mac, written beside the key after each append, itself MAC'd with
the key, so that whoever can write the table but not read the key can neither
remove nor rewrite it unnoticed).

Against someone who holds the key too, an operator keeps anchors elsewhere:
:func:`anchor_line` (``mailwarden audit anchor``) is the number of events and
the head's mac at one moment; :meth:`AuditLog.verify` given such lines checks
that the chain still holds that event with that mac, so removing events from
either end, or all of them, is detected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from .db import session_scope, writer_engine
from .models import AuditEvent, utcnow
from .rawsql import raw

log = logging.getLogger(__name__)
GENESIS = "0" * 64


def load_or_create_key(path: Path) -> bytes:
    """The chain's HMAC key; created (mode 0600) on first use."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())
    return bytes.fromhex(key)


def _mac(key: bytes, prev: str, seq: int, ts: datetime, actor: str, action: str, target: str,
         detail: str, peer: str | None) -> str:
    body = json.dumps(
        [prev, seq, ts.isoformat(timespec="microseconds"), actor, action, target, detail, peer or ""],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _normal_ts(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes: they were stored as UTC.
    from datetime import timezone

    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


@dataclass(frozen=True)
class Appended:
    """What an append leaves behind: the event's place in the chain."""

    seq: int
    mac: str


_INSERT = ("INSERT INTO audit_events (seq, ts, actor, action, target, detail, peer, prev_mac, mac) "
           "VALUES (:seq, :ts, :actor, :action, :target, :detail, :peer, :prev_mac, :mac)")
_TAIL = "mw_audit_tail"   # session.info: (root transaction, seq, mac) of its last event
_LAST = "mw_audit_last"   # session.info: the last event appended, for the head anchor after commit
_HEAD_WIDTH = 112  # bytes of the anchor record: "seq mac check", space-padded, newline


class AuditLog:
    """Appends and verifies events.  Thread-safe within one process; across
    processes the database's write lock (SQLite) or an advisory lock
    (PostgreSQL) orders the appends."""

    def __init__(self, engine: Engine, key_file: Path) -> None:
        self.engine = engine
        self.key = load_or_create_key(key_file)
        self.head_file = key_file.with_name(key_file.name + ".head")
        self._lock = threading.Lock()

    def append(self, *, actor: str, action: str, target: str = "", peer: str | None = None,
               session: Session | None = None, **detail: Any) -> Appended:
        """Record one event.  With ``session`` the event joins that transaction
        (so a spool commit and its audit event are one commit)."""
        if session is not None:
            ev = self._append(session, actor, action, target, peer, detail)
            # One anchor write per commit, however many events it carries.
            if not session.info.get("mw_audit_listener"):
                session.info["mw_audit_listener"] = True
                event.listen(session, "after_commit", self._after_commit)
            session.info[_LAST] = ev
            return ev
        # A writer's transaction: on SQLite it queues behind this process's other writers
        # instead of sleeping in SQLite's busy handler while one of them holds the file.
        with self._lock:
            with session_scope(writer_engine(self.engine)) as s:
                ev = self._append(s, actor, action, target, peer, detail)
            self._write_head(ev)
            return ev

    def _append(self, s: Session, actor: str, action: str, target: str, peer: str | None,
                detail: dict[str, Any]) -> Appended:
        # The tail is read (and locked) once per transaction, then carried along; a new
        # transaction is a new root object, so a stale tail is never used.
        db = raw(s)  # begins the transaction if the session has none yet
        root = s.get_transaction()
        tail = s.info.get(_TAIL)
        if tail is not None and tail[0] is root:
            head = tail[1], tail[2]
        else:
            if not db.sqlite:
                db.execute("SELECT pg_advisory_xact_lock(7461736)")
            else:
                # Take the write lock now so no other writer slips in between reading the head and appending.
                db.execute("UPDATE audit_events SET seq = seq WHERE 0")
            last = db.execute("SELECT seq, mac FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
            head = (last[0], last[1]) if last else (0, GENESIS)
        seq, prev = head[0] + 1, head[1]
        ts = utcnow()
        target = target[:320]
        d = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
        mac = _mac(self.key, prev, seq, ts, actor, action, target, d, peer)
        db.insert(_INSERT, {"seq": seq, "ts": ts, "actor": actor, "action": action, "target": target,
                            "detail": d, "peer": peer, "prev_mac": prev, "mac": mac})
        s.info[_TAIL] = (root, seq, mac)
        return Appended(seq, mac)

    def _after_commit(self, session: Session) -> None:
        if session.in_nested_transaction():  # a SAVEPOINT released: the events are not committed yet
            return
        ev = session.info.pop(_LAST, None)
        if ev is not None:
            self._write_head(ev)

    def _write_head(self, ev: Appended) -> None:
        """Overwrite the anchor in place: one ``pwrite`` of a fixed-width record (a rename per
        commit cost more than the commit's inserts).  Every writer (the gateway's processes, an
        admin command) writes the same width at offset 0, so a late writer can only make the
        anchor older, never wrong.  A reader may catch a write half done: the record carries a
        check of its own (:func:`_read_anchor` reads again until it holds).  Opened for each
        write, so a replaced or removed file is followed."""
        record = _anchor_record(self.key, ev.seq, ev.mac)
        try:
            fd = os.open(self.head_file, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.pwrite(fd, record, 0)
            finally:
                os.close(fd)
        except OSError as exc:  # the chain itself is in the database; the anchor is an extra check
            log.warning("cannot write audit head anchor %s: %s", self.head_file, exc.strerror)

    def _has_history(self) -> bool:
        with Session(self.engine) as s:
            db = raw(s)
            return any(db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in ("users", "messages"))

    def verify(self, anchors: Sequence[Anchor] = ()) -> "VerifyResult":
        """Walk the chain; report the first event that does not hold, or the end that was cut
        (against the head record beside the key, and the operator's ``anchors``)."""
        prev, expect_seq, count = GENESIS, 1, 0
        # Read the anchor first: events appended while we walk must not look like a cut-off tail.
        anchor = _read_anchor(self.key, self.head_file)
        wanted = {a.events: a for a in anchors if a.events > 0}
        seen: dict[int, str] = {}
        with Session(self.engine) as s:
            for ev in s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))):
                count += 1
                if ev.seq != expect_seq:
                    return VerifyResult(False, count - 1, expect_seq, f"event #{expect_seq} is missing (next present is #{ev.seq})")
                if ev.prev_mac != prev:
                    return VerifyResult(False, count - 1, ev.seq, f"event #{ev.seq} does not link to event #{ev.seq - 1} (a row was removed or replaced)")
                want = _mac(self.key, ev.prev_mac, ev.seq, _normal_ts(ev.ts), ev.actor, ev.action, ev.target, ev.detail, ev.peer)
                if not hmac.compare_digest(want, ev.mac):
                    return VerifyResult(False, count - 1, ev.seq, f"event #{ev.seq} ({ev.action} by {ev.actor}) was altered")
                if ev.seq in wanted:
                    seen[ev.seq] = ev.mac
                prev, expect_seq = ev.mac, ev.seq + 1
        last = expect_seq - 1
        for events, a in sorted(wanted.items()):
            when = f" of {a.at}" if a.at else ""
            if events > last:
                return VerifyResult(False, count, last + 1, f"the chain ends at event #{last}, but the anchor{when} "
                                                            f"records {events} events: events were removed")
            if not hmac.compare_digest(seen[events], a.head):
                return VerifyResult(False, count, events, f"event #{events} differs from the anchor{when}: "
                                                          f"the chain was replaced")
        if anchor == FORGED:
            return VerifyResult(False, count, None, f"the recorded head of the chain ({self.head_file}) was not written "
                                                f"by this gateway's key: it was altered or replaced")
        if anchor == OLDER:
            return VerifyResult(False, count, None, f"the recorded head of the chain ({self.head_file}) was written by an "
                                                f"older version, without a key check; the next audited event (any "
                                                f"login) rewrites it: verify again after that")
        if anchor == MISSING:
            if count:
                return VerifyResult(False, count, None, f"the recorded head of the chain ({self.head_file}) is missing: "
                                                        f"events may have been removed from the end")
            if self._has_history():
                return VerifyResult(False, 0, 1, "the chain is empty and its recorded head missing, yet the store "
                                                 "has users or messages, each of which was audited: events were removed")
            return VerifyResult(True, 0, None, "")
        assert isinstance(anchor, tuple)
        head_seq, head_mac = anchor
        if head_seq > last:
            return VerifyResult(False, count, last + 1, f"events #{last + 1}..#{head_seq} were removed from the end of the chain")
        if head_seq == last and not hmac.compare_digest(head_mac, prev):
            return VerifyResult(False, count, head_seq, f"event #{head_seq} differs from the recorded head of the chain")
        return VerifyResult(True, count, None, "")


def _anchor_check(key: bytes, body: str) -> str:
    return hmac.new(key, b"head\0" + body.encode(), hashlib.sha256).hexdigest()[:32]


def _anchor_record(key: bytes, seq: int, mac: str) -> bytes:
    body = f"{seq} {mac}"
    return f"{body} {_anchor_check(key, body)}".ljust(_HEAD_WIDTH - 1).encode() + b"\n"


MISSING = "missing"
FORGED = "forged"
OLDER = "older"  # written by a version before the key check: the next append rewrites it


def _read_anchor(key: bytes, path: Path, tries: int = 50) -> tuple[int, str] | str:
    """(seq, mac) of the anchor, or why there is none to trust: MISSING (no file), FORGED (its
    check does not hold under the key, however often it is read: not a write caught half done)."""
    for _ in range(tries):
        try:
            fields = path.read_text(errors="replace").split()
        except FileNotFoundError:
            return MISSING
        if len(fields) == 3 and fields[0].isdigit() and \
                hmac.compare_digest(_anchor_check(key, f"{fields[0]} {fields[1]}"), fields[2]):
            return int(fields[0]), fields[1]
        if len(fields) == 2 and fields[0].isdigit() or len(fields) == 3 and len(fields[2]) == 16 and \
                hashlib.sha256(f"{fields[0]} {fields[1]}".encode()).hexdigest()[:16] == fields[2]:
            return OLDER  # anyone could have written it: it proves nothing
        time.sleep(0.002)
    return FORGED


@dataclass(frozen=True)
class Anchor:
    """The chain at one moment, kept by the operator away from the gateway: ``events`` events,
    the last with ``head`` as its mac."""

    events: int
    head: str
    at: str = ""

    def line(self) -> str:
        return f"mailwarden-audit-anchor events={self.events} head={self.head} at={self.at}"


def anchor_line(engine: Engine) -> Anchor:
    """The chain's anchor now (for ``audit anchor``, and for the digest to carry)."""
    with Session(engine) as s:
        last = raw(s).execute("SELECT seq, mac FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, mac = (int(last[0]), str(last[1])) if last else (0, GENESIS)
    return Anchor(seq, mac, utcnow().isoformat(timespec="seconds"))


def parse_anchors(text: str, where: str) -> list[Anchor]:
    """The anchor lines of a file the operator kept; a bad line raises ValueError naming it."""
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = dict(f.partition("=")[::2] for f in line.split()[1:])
        if not line.startswith("mailwarden-audit-anchor ") or not fields.get("events", "").isdigit() \
                or len(fields.get("head", "")) != 64:
            raise ValueError(f"{where}: line {n}: not an audit anchor (mailwarden-audit-anchor events=N head=MAC)")
        found.append(Anchor(int(fields["events"]), fields["head"], fields.get("at", "")))
    return found


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    bad_seq: int | None
    problem: str
