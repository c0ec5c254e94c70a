"""The audit chain: append-only events, each MAC-linked to the previous one.

Each event's ``mac`` is HMAC-SHA256, under a key kept outside the database, of
the previous event's mac and the event's own fields.  ``seq`` is contiguous.
So editing a row breaks its mac, deleting a row breaks the link or leaves a
gap in ``seq``, and cutting rows off the end is caught by the head anchor (the
last seq and mac, written beside the key after each append).
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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

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
        with self._lock, Session(self.engine, expire_on_commit=False) as s:
            ev = self._append(s, actor, action, target, peer, detail)
            s.commit()
            s.info.pop(_LAST, None)
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
        record = _anchor_record(ev.seq, ev.mac)
        try:
            fd = os.open(self.head_file, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.pwrite(fd, record, 0)
            finally:
                os.close(fd)
        except OSError as exc:  # the chain itself is in the database; the anchor is an extra check
            log.warning("cannot write audit head anchor %s: %s", self.head_file, exc.strerror)

    def verify(self) -> "VerifyResult":
        """Walk the chain; report the first event that does not hold."""
        prev, expect_seq, count = GENESIS, 1, 0
        # Read the anchor first: events appended while we walk must not look like a cut-off tail.
        anchor = _read_anchor(self.head_file)
        if anchor is None:
            return VerifyResult(False, 0, None, f"the recorded head of the chain ({self.head_file}) is unreadable")
        head_seq, head_mac = anchor
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
                prev, expect_seq = ev.mac, ev.seq + 1
        if not head_mac:
            return VerifyResult(True, count, None, "")
        if int(head_seq) > expect_seq - 1:
            return VerifyResult(False, count, expect_seq, f"events #{expect_seq}..#{head_seq} were removed from the end of the chain")
        if int(head_seq) == expect_seq - 1 and head_mac != prev:
            return VerifyResult(False, count, int(head_seq), f"event #{head_seq} differs from the recorded head of the chain")
        return VerifyResult(True, count, None, "")


def _anchor_record(seq: int, mac: str) -> bytes:
    body = f"{seq} {mac}"
    check = hashlib.sha256(body.encode()).hexdigest()[:16]
    return f"{body} {check}".ljust(_HEAD_WIDTH - 1).encode() + b"\n"


def _read_anchor(path: Path, tries: int = 50) -> tuple[str, str] | None:
    """(seq, mac) of the anchor; ("0", "") when there is none; None when it stays unreadable
    (a read that caught a write half done is read again)."""
    for _ in range(tries):
        try:
            fields = path.read_text(errors="replace").split()
        except FileNotFoundError:
            return "0", ""
        if len(fields) == 2 and fields[0].isdigit():  # written by an older version, by rename: never torn
            return fields[0], fields[1]
        if len(fields) == 3 and fields[0].isdigit() and \
                hashlib.sha256(f"{fields[0]} {fields[1]}".encode()).hexdigest()[:16] == fields[2]:
            return fields[0], fields[1]
        time.sleep(0.002)
    return None


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    bad_seq: int | None
    problem: str
