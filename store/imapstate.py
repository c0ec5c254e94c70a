"""What an IMAP session reads from and changes in the store: a user's mailboxes, the messages of
one with the user's flags, and what the user does to them.

Every function runs in a worker thread (the session awaits it) in one short transaction.  What
a mailbox holds is decided by :mod:`.views`; this module only asks it.  A user's flags are
theirs alone (:class:`~.models.ImapFlags`).  What the user does to their mail (flags, moves,
deletes, drafts) is :mod:`.imapchanges`; this module reads: a box opened with its messages (one
snapshot shared by the sessions that open it in one state), what changed since a session last
looked, \\Recent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import threading
import weakref
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from .db import relaxed_engine, session_scope, writer_engine
from .models import ImapBox, Mail
from .rawsql import raw
from .views import NeedsWrite, Person, Viewer, boxes, epoch, refresh

SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
NO_FLAGS: frozenset[str] = frozenset()  # one for every message without flags (an empty set is 216 bytes)


@dataclass(slots=True)
class Message:
    """One message of an opened box (a session holds one per message: kept small)."""

    uid: int
    mail_id: int
    modseq: int
    flags: frozenset[str] = NO_FLAGS


class Snapshot(list):  # type: ignore[type-arg]
    """A box's messages at one HIGHESTMODSEQ, shared by every session of this process that
    opens the box then (a user's phone, laptop and webmail: one list, not three).  Read-only to
    its holders: a session that changes its list copies it first (:meth:`owned`)."""

    __slots__ = ("modseq", "uid_next", "__weakref__")

    def owned(self) -> list[Message]:
        return list(self)


_SNAPSHOTS: weakref.WeakKeyDictionary[Engine, weakref.WeakValueDictionary[int, Snapshot]] = \
    weakref.WeakKeyDictionary()  # per store: box id -> its latest snapshot, while a session holds it
_SNAPSHOTS_LOCK = threading.Lock()


_IN_LINE: weakref.WeakKeyDictionary[Engine, dict[int, int]] = weakref.WeakKeyDictionary()
"""Per store: box id -> the view epoch at which a committed refresh left the box in line with
its view.  Everything that changes a view raises the epoch, so at that epoch a refresh (two
queries over the whole box) would find nothing to do."""


def _in_line(engine: Engine) -> dict[int, int]:
    with _SNAPSHOTS_LOCK:
        return _IN_LINE.setdefault(engine, {})


def _snapshot(s: Session, engine: Engine, user_id: int, box: ImapBox | _BoxRow) -> Snapshot:
    """The box's messages now (after :func:`refresh`): the shared snapshot when one is of this
    very state (every change to a box raises its HIGHESTMODSEQ or its UIDNEXT)."""
    assert box.id is not None
    s.flush()  # the plain SQL below does not
    with _SNAPSHOTS_LOCK:
        shared = _SNAPSHOTS.setdefault(engine, weakref.WeakValueDictionary())  # type: ignore[arg-type]
        snap = shared.get(box.id)
    if snap is not None and snap.modseq == box.highest_modseq and snap.uid_next == box.uid_next:
        return snap
    snap = Snapshot(_message(r) for r in _entries(s, user_id, box.id, "e.expunged_modseq IS NULL"))
    snap.modseq, snap.uid_next = box.highest_modseq, box.uid_next
    with _SNAPSHOTS_LOCK:
        shared[box.id] = snap
    return snap


@dataclass
class BoxInfo:
    id: int
    name: str
    kind: str
    uidvalidity: int
    uid_next: int
    highest_modseq: int
    subscribed: bool


@dataclass
class Opened:
    box: BoxInfo
    epoch: int
    messages: list[Message]
    recent_above: int = 0  # UIDs above this are \Recent for the session that opened it


@dataclass
class Update:
    """What changed in a box since a session last looked."""

    box: BoxInfo
    epoch: int
    added: list[Message] = field(default_factory=list)
    expunged: list[int] = field(default_factory=list)
    changed: list[Message] = field(default_factory=list)  # flags or modseq changed (not added ones)
    recent_above: int | None = None  # claimed: UIDs above this are \Recent for this session


class NotYours(LookupError):
    """The mailbox is not one of the user's (or not any more)."""


def _writing(engine: Engine, *, durable: bool = True):  # type: ignore[no-untyped-def]
    """A transaction that may write: on SQLite it takes the write lock at BEGIN, so two
    sessions refreshing one box wait for each other instead of failing.  ``durable=False``:
    what it writes is flags, marks and UIDs, which a power cut may undo (:func:`relaxed_engine`);
    mail, placements and deletes are written durably."""
    return session_scope(writer_engine(engine if durable else relaxed_engine(engine)))


def _info(b: ImapBox | _BoxRow) -> BoxInfo:
    assert b.id is not None
    return BoxInfo(b.id, b.name, b.kind, b.uidvalidity, b.uid_next, b.highest_modseq, b.subscribed)


def _user(s: Session, user_id: int) -> Viewer:
    """The user as views need them, read by one plain statement (the ORM's get costs more than
    the rest of a flag change)."""
    row = raw(s).execute("SELECT login, role, team, enabled FROM users WHERE id = :id", {"id": user_id}).fetchone()
    if row is None or not row[3]:
        raise NotYours("the account is disabled")
    return Viewer(user_id, row[0], row[1], row[2])


def _in(prefix: str, values: Sequence[int]) -> tuple[str, dict[str, int]]:
    """``(:p0, :p1, …)`` and its parameters, for ``IN`` over at most :data:`CHUNK` values."""
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return "(" + ", ".join(":" + k for k in params) + ")", params


CHUNK = 900  # values bound in one statement (SQLite allows 999 by default on old builds)


def mailboxes(engine: Engine, user_id: int) -> list[BoxInfo]:
    """The user's mailboxes as their role and customers make them now."""
    return _read_first(engine, lambda s, writing: [_info(b) for b in boxes(s, _user(s, user_id),
                                                                         readonly=not writing)])


def _box(s: Session, user: Person, name: str, *, readonly: bool = False) -> ImapBox:
    for b in boxes(s, user, readonly=readonly):
        if b.name == name:
            return b
    raise NotYours(name)


def _flags(s: Session, user_id: int, mail_ids: Iterable[int]) -> dict[int, frozenset[str]]:
    ids = list(mail_ids)
    out: dict[int, frozenset[str]] = {}
    for start in range(0, len(ids), CHUNK):
        among, params = _in("m", ids[start:start + CHUNK])
        for mail_id, text in raw(s).execute(f"SELECT mail_id, flags FROM imap_flags WHERE user_id = :user "
                                            f"AND mail_id IN {among}", {"user": user_id, **params}).fetchall():
            out[mail_id] = _flag_set(text)
    return out


_FLAG_SETS: dict[str, frozenset[str]] = {}


def _flag_set(text: str) -> frozenset[str]:
    """One set object per combination of flags in use (sessions hold one per message)."""
    found = _FLAG_SETS.get(text)
    if found is None:
        found = frozenset(text.split()) or NO_FLAGS
        if len(_FLAG_SETS) < 4096:
            _FLAG_SETS[text] = found
    return found


def _entries(s: Session, user_id: int, box_id: int, where: str, **params: int) -> list[tuple]:  # type: ignore[type-arg]
    """(uid, mail id, modseq, the user's flags text or None, expunged modseq) of the box's
    entries matching ``where``, in UID order: one plain statement (the ORM's costs more than
    the rest of a command).  Plain SQL does not flush: callers flush first."""
    return raw(s).execute(
        "SELECT e.uid, e.mail_id, e.modseq, f.flags, e.expunged_modseq FROM imap_entries e "
        "LEFT JOIN imap_flags f ON f.user_id = :user AND f.mail_id = e.mail_id "
        f"WHERE e.box_id = :box AND {where} ORDER BY e.uid", {"user": user_id, "box": box_id, **params}).fetchall()


def _message(row: tuple) -> Message:  # type: ignore[type-arg]
    uid, mail_id, modseq, flags = row[:4]
    return Message(uid, mail_id, modseq, _flag_set(flags) if flags else NO_FLAGS)


_RECENT: weakref.WeakKeyDictionary[Engine, dict[int, int]] = weakref.WeakKeyDictionary()
"""Per store: box id -> the highest UID a session of this process has been told of as new."""


def _recent_mark(engine: Engine, box: ImapBox | _BoxRow) -> int:
    assert box.id is not None
    with _SNAPSHOTS_LOCK:
        return max(_RECENT.setdefault(engine, {}).get(box.id, 0), box.recent_uid)


def _claim_recent(engine: Engine, box: ImapBox | _BoxRow, top: int) -> int:
    """Take the news of the box up to UID ``top`` for one session: returns the old mark (UIDs
    above it are \\Recent to that session alone, RFC 3501 2.3.2).  The claim is the process's,
    in memory (no write lock for it); the box row keeps the mark whenever it is written anyway,
    so after a restart the first session may see as recent what was not yet recorded."""
    assert box.id is not None
    with _SNAPSHOTS_LOCK:
        marks = _RECENT.setdefault(engine, {})
        old = max(marks.get(box.id, 0), box.recent_uid)
        marks[box.id] = max(old, top)
    return old


def _keep_recent_mark(engine: Engine, box: ImapBox) -> None:
    """Record the process's mark in the box row being written."""
    mark = _recent_mark(engine, box)
    if mark > box.recent_uid:
        box.recent_uid = mark


def _read_first(engine: Engine, work):  # type: ignore[no-untyped-def]
    """``work(session, writing)`` in a read-only transaction, and again in a writing one if it
    raises :class:`NeedsWrite`: most SELECTs and polls change nothing, and on SQLite a writing
    transaction waits for the store's one write lock (and its fsync) however little it writes."""
    try:
        with Session(engine) as s:
            return work(s, False)
    except NeedsWrite as need:
        with _writing(engine, durable=need.durable) as s:
            return work(s, True)


def open_box(engine: Engine, user_id: int, name: str, *, claim: bool = False) -> Opened:
    """The mailbox ``name`` (canonical) of the user, brought up to date, with its messages;
    ``claim``: a SELECT, which takes the box's \\Recent messages for itself."""
    resolved: dict[str, int] = {}

    def work(s: Session, writing: bool) -> Opened:
        user = _user(s, user_id)
        seen = _epoch(s)
        known = _RESOLVED.setdefault(engine, {}).get(user_id)
        box: ImapBox | _BoxRow | None
        if not writing and known is not None and known[0] == seen and name in known[1]:
            box_id = known[1][name]  # the user's boxes as they were at this epoch
            if _in_line(engine).get(box_id) == seen:
                row = _box_row(s, box_id)  # in line with its view: only read, by plain SQL
                if row is not None and row.user_id == user_id:
                    messages = _snapshot(s, engine, user_id, row)
                    top = messages[-1].uid if messages else 0
                    recent = _claim_recent(engine, row, top) if claim else _recent_mark(engine, row)
                    return Opened(_info(row), seen, messages, recent)
            box = s.get(ImapBox, box_id)
            assert box is not None
        else:
            have = boxes(s, user, readonly=not writing)
            resolved.clear()
            resolved.update((b.name, b.id) for b in have if b.id is not None)
            box = next((b for b in have if b.name == name), None)
            if box is None:
                raise NotYours(name)
        assert box.id is not None
        if _in_line(engine).get(box.id) != seen:
            refresh(s, user, box, readonly=not writing)
            s.flush()
        messages = _snapshot(s, engine, user_id, box)
        top = messages[-1].uid if messages else 0
        recent = _claim_recent(engine, box, top) if claim else _recent_mark(engine, box)
        if writing:
            _keep_recent_mark(engine, box)
            s.add(box)
        return Opened(_info(box), seen, messages, recent)

    opened = _read_first(engine, work)
    _in_line(engine)[opened.box.id] = opened.epoch  # committed (or found so)
    if resolved:
        _RESOLVED[engine][user_id] = (opened.epoch, resolved)
    return opened


_RESOLVED: weakref.WeakKeyDictionary[Engine, dict[int, tuple[int, dict[str, int]]]] = weakref.WeakKeyDictionary()
"""Per store: user id -> (view epoch, the user's mailboxes by name then).  Whatever changes
which boxes a user has (role, customers, folders made, renamed, deleted) raises the epoch."""


def box_state(engine: Engine, box_id: int) -> tuple[int, int]:
    """(view epoch, the box's HIGHESTMODSEQ): what a session compares to know whether to look."""
    with Session(engine) as s:
        row = raw(s).execute("SELECT (SELECT epoch FROM view_epoch WHERE id = 1), "
                             "(SELECT highest_modseq FROM imap_boxes WHERE id = :box)", {"box": box_id}).fetchone()
        return int(row[0]), int(row[1] or 0)


class _BoxRow(NamedTuple):
    """A box's row read by plain SQL (what :func:`_info` and the \\Recent marks read of an
    :class:`~.models.ImapBox`)."""

    id: int
    name: str
    kind: str
    uidvalidity: int
    uid_next: int
    highest_modseq: int
    subscribed: bool
    recent_uid: int
    user_id: int


def _box_row(s: Session, box_id: int) -> _BoxRow | None:
    row = raw(s).execute("SELECT id, name, kind, uidvalidity, uid_next, highest_modseq, subscribed, recent_uid, "
                         "user_id FROM imap_boxes WHERE id = :box", {"box": box_id}).fetchone()
    return None if row is None else _BoxRow(*row[:6], bool(row[6]), *row[7:])


def _epoch(s: Session) -> int:
    return int(raw(s).execute("SELECT epoch FROM view_epoch WHERE id = 1").fetchone()[0])


def poll_if_moved(engine: Engine, user_id: int, box_id: int, epoch: int, since_modseq: int, *,
                  claim: bool = False) -> Update | None:
    """:func:`poll` if the view epoch or the box's HIGHESTMODSEQ moved from what a session
    knows (``epoch``, ``since_modseq``), else None: one worker-thread call for both looks."""
    now, modseq = box_state(engine, box_id)
    if now == epoch and modseq == since_modseq:
        return None
    return poll(engine, user_id, box_id, since_modseq, resolve=now != epoch, claim=claim)


def poll(engine: Engine, user_id: int, box_id: int, since_modseq: int, *, resolve: bool, claim: bool = False) -> Update:
    """What changed in the box after ``since_modseq``; ``resolve``: the views may have changed
    (the epoch moved), so bring the box in line with them first."""
    if not resolve:  # the common case (a flag changed, a draft added): plain reads, no objects
        with Session(engine) as s:
            _user(s, user_id)
            row = _box_row(s, box_id)
            if row is None or row.user_id != user_id:
                raise NotYours(str(box_id))
            seen = _epoch(s)
            rows = _entries(s, user_id, box_id, "(e.modseq > :since OR e.expunged_modseq > :since)",
                            since=since_modseq)
        changed = [_message(r) for r in rows if r[4] is None]
        gone = sorted({r[0] for r in rows if r[4] is not None and r[4] > since_modseq})
        recent = _claim_recent(engine, row, changed[-1].uid if changed else 0) if claim else None
        return Update(_info(row), seen, changed=changed, expunged=gone, recent_above=recent)

    def work(s: Session, writing: bool) -> Update:
        user = _user(s, user_id)
        box = s.get(ImapBox, box_id)
        if box is None or box.user_id != user_id:
            raise NotYours(str(box_id))
        seen = epoch(s)
        if resolve and _in_line(engine).get(box_id) != seen:
            boxes(s, user, readonly=not writing)  # a customer no longer theirs: its box is gone, shows empty
            refresh(s, user, box, readonly=not writing)
        if writing:  # what refresh added, for the plain SQL below
            s.flush()
        rows = _entries(s, user_id, box_id, "(e.modseq > :since OR e.expunged_modseq > :since)",
                        since=since_modseq)
        changed = [_message(r) for r in rows if r[4] is None]
        gone = sorted({r[0] for r in rows if r[4] is not None and r[4] > since_modseq})
        recent = _claim_recent(engine, box, changed[-1].uid if changed else 0) if claim else None
        if writing:
            _keep_recent_mark(engine, box)
            s.add(box)
        return Update(_info(box), seen, changed=changed, expunged=gone, recent_above=recent)

    update = _read_first(engine, work)
    if resolve:
        _in_line(engine)[box_id] = update.epoch
    return update


def mail_rows(engine: Engine, mail_ids: Sequence[int]) -> dict[int, Mail]:
    """The mails (blob, facts, dates, sizes) for FETCH and SEARCH."""
    out: dict[int, Mail] = {}
    with Session(engine) as s:
        for start in range(0, len(mail_ids), 900):
            for m in s.exec(select(Mail).where(col(Mail.id).in_(list(mail_ids[start:start + 900])))).all():
                assert m.id is not None
                out[m.id] = m
                s.expunge(m)
    return out


def status(engine: Engine, user_id: int, name: str) -> tuple[BoxInfo, int, int, int]:
    """(box, messages, unseen, recent) of one of the user's mailboxes, brought up to date."""
    opened = open_box(engine, user_id, name)
    unseen = sum(1 for m in opened.messages if "\\Seen" not in m.flags)
    recent = sum(1 for m in opened.messages if m.uid > opened.recent_above)
    return opened.box, len(opened.messages), unseen, recent


__all__ = ["SYSTEM_FLAGS", "BoxInfo", "Message", "NotYours", "Opened", "Snapshot", "Update", "box_state",
           "mail_rows", "mailboxes", "open_box", "poll", "poll_if_moved", "status"]
