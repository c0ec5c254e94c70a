"""What an IMAP session reads from and changes in the store: a user's mailboxes, the messages of
one with the user's flags, and what the user does to them.

Every function runs in a worker thread (the session awaits it) in one short transaction.  What
a mailbox holds is decided by :mod:`.views`; this module only asks it.  A user's flags are
theirs alone (:class:`~.models.ImapFlags`); a change of them raises the MODSEQ of the message in
each of the user's mailboxes that shows it.  Deleting never removes a mail: it places it out of
the user's view (``hidden``), where admins see it in Retention, with an audit event.
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
from .rawsql import raw
from .mails import Filing, NewMail, insert_mail
from .models import ImapBox, ImapEntry, ImapFlags, ImapPlacement, Mail, MailText, utcnow
from .views import NeedsWrite, Person, Viewer, boxes, bump_epoch, epoch, refresh

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


def store_flags(engine: Engine, user_id: int, box_id: int, mail_ids: Sequence[int], mode: str,
                flags: Sequence[str], unchanged_since: int | None = None,
                modseqs: dict[int, int] | None = None) -> tuple[dict[int, Message], list[int]]:
    """Set (``mode`` ""), add ("+") or remove ("-") flags on mails of a box.  Returns the
    messages of the box after the change (by mail id) and the mail ids refused because they
    changed after ``unchanged_since`` (CONDSTORE).  Each mail changed gets one new MODSEQ in
    every one of the user's boxes that shows it."""
    want = frozenset(flags)
    with _writing(engine, durable=False) as s:  # flags: what Dovecot does not fsync either
        _user(s, user_id)
        current = _flags(s, user_id, mail_ids)
        refused: list[int] = []
        changed: dict[int, frozenset[str]] = {}
        for mail_id in mail_ids:
            if unchanged_since is not None and modseqs is not None and modseqs.get(mail_id, 0) > unchanged_since:
                refused.append(mail_id)
                continue
            old = current.get(mail_id, NO_FLAGS)
            new = want if mode == "" else old | want if mode == "+" else old - want
            if new != old:
                changed[mail_id] = new
        if changed:
            _set_flags(s, user_id, {mail_id: " ".join(sorted(new)) for mail_id, new in changed.items()})
            # Every box of the user's that shows the mail gets a new MODSEQ: their other
            # sessions see it at their next command, an idling one through the watch's look at
            # the MODSEQs.  Whose mail is whose did not change, so no view epoch: that would
            # make every session of every user resolve its view again.
            _bump(s, user_id, list(changed))
        after: dict[int, Message] = {}
        ids = list(mail_ids)
        for start in range(0, len(ids), CHUNK):
            among, params = _in("m", ids[start:start + CHUNK])
            for row in _entries(s, user_id, box_id, f"e.expunged_modseq IS NULL AND e.mail_id IN {among}", **params):
                after[row[1]] = _message(row)
        return after, refused


def _set_flags(s: Session, user_id: int, flags: dict[int, str]) -> None:
    """The user's flags of these mails (mail id -> the flags as stored), one upsert each."""
    raw(s).executemany("INSERT INTO imap_flags (user_id, mail_id, flags) VALUES (:user, :mail, :flags) "
                       "ON CONFLICT (user_id, mail_id) DO UPDATE SET flags = excluded.flags",
                       [{"user": user_id, "mail": m, "flags": f} for m, f in flags.items()])


def _bump(s: Session, user_id: int, mail_ids: list[int]) -> None:
    """A new MODSEQ for these mails in each of the user's boxes that shows them."""
    _touch(s, user_id, mail_ids, "modseq")


def _touch(s: Session, user_id: int, mail_ids: list[int], column: str) -> None:
    """Set ``column`` (``modseq``: flags changed; ``expunged_modseq``: the mail left) of these
    mails' entries in each of the user's boxes that shows them (but Retention, which shows
    what was deleted) to a new MODSEQ of that box.  Plain SQL: a box object the session holds
    is stale after it and must be refreshed before use."""
    assert column in ("modseq", "expunged_modseq")
    r = raw(s)
    by_box: dict[int, list[int]] = {}
    for start in range(0, len(mail_ids), CHUNK):
        among, params = _in("m", mail_ids[start:start + CHUNK])
        for entry_id, box_id in r.execute(
                "SELECT e.id, e.box_id FROM imap_entries e JOIN imap_boxes b ON b.id = e.box_id "
                f"WHERE b.user_id = :user AND b.kind <> 'retention' AND e.mail_id IN {among} "
                "AND e.expunged_modseq IS NULL", {"user": user_id, **params}).fetchall():
            by_box.setdefault(box_id, []).append(entry_id)
    for box_id, entry_ids in sorted(by_box.items()):
        modseq = r.execute("UPDATE imap_boxes SET highest_modseq = highest_modseq + 1 WHERE id = :box "
                           "RETURNING highest_modseq", {"box": box_id}).fetchone()[0]
        for start in range(0, len(entry_ids), CHUNK):
            among, params = _in("e", entry_ids[start:start + CHUNK])
            r.execute(f"UPDATE imap_entries SET {column} = :modseq WHERE id IN {among}", {"modseq": modseq, **params})


def _add_entries(s: Session, box_id: int, mail_ids: Sequence[int]) -> tuple[int, dict[int, int]]:
    """Give these mails the box's next UIDs (oldest first), those it does not show already:
    what :func:`~.views.refresh` would do for them, without comparing the whole box.  Returns
    (the box's UIDVALIDITY, mail id -> new UID)."""
    r = raw(s)
    present: set[int] = set()
    order: list[int] = []
    for start in range(0, len(mail_ids), CHUNK):
        among, params = _in("m", list(mail_ids[start:start + CHUNK]))
        present.update(m for (m,) in r.execute(f"SELECT mail_id FROM imap_entries WHERE box_id = :box AND "
                                               f"expunged_modseq IS NULL AND mail_id IN {among}",
                                               {"box": box_id, **params}).fetchall())
        order += [m for (m,) in r.execute(f"SELECT id FROM mails WHERE id IN {among}", params).fetchall()]
    new = [m for m in order if m not in present]
    if not new:
        return 0, {}
    dates = {}
    for start in range(0, len(new), CHUNK):
        among, params = _in("m", new[start:start + CHUNK])
        dates.update(r.execute(f"SELECT id, internal_date FROM mails WHERE id IN {among}", params).fetchall())
    new.sort(key=lambda m: (str(dates.get(m) or ""), m))
    modseq, uid_next, uidvalidity = r.execute(
        "UPDATE imap_boxes SET highest_modseq = highest_modseq + 1, uid_next = uid_next + :n WHERE id = :box "
        "RETURNING highest_modseq, uid_next, uidvalidity", {"box": box_id, "n": len(new)}).fetchone()
    first = uid_next - len(new)
    uids = {m: first + i for i, m in enumerate(new)}
    r.executemany("INSERT INTO imap_entries (box_id, uid, mail_id, modseq) VALUES (:box, :uid, :mail, :modseq)",
                  [{"box": box_id, "uid": u, "mail": m, "modseq": modseq} for m, u in uids.items()])
    return int(uidvalidity), uids


def _copy_of(s: Session, user_id: int, mail_id: int) -> int:
    """A copy of a mail of its own (the same bytes, its own row, flags and search text) for a
    folder of the user's: in no customer's box, nobody else's view."""
    mail = s.get(Mail, mail_id)
    assert mail is not None
    fields = mail.model_dump(exclude={"id", "customer_id", "user_id", "direction", "filed_by", "out_message_id"})
    copy = Mail(**fields, user_id=user_id, direction="copy", filed_by="copy")
    s.add(copy)
    s.flush()
    assert copy.id is not None
    text = s.get(MailText, mail_id)
    s.add(MailText(mail_id=copy.id, body=text.body if text else ""))
    flags = s.get(ImapFlags, (user_id, mail_id))
    if flags is not None:
        s.add(ImapFlags(user_id=user_id, mail_id=copy.id, flags=flags.flags))
    return copy.id


def place(engine: Engine, user_id: int, mail_ids: Sequence[int], target: str, *, copy: bool = False) -> dict[int, int]:
    """Put mails where the user moved them: ``target`` the canonical name of one of their boxes.

    Trash and their own folders hold what is placed there; moving to INBOX takes a mail back to
    where its filing shows it (out of Trash).  Other boxes are filled by filing, not by hand:
    :class:`CannotPlace`.  ``copy`` into Drafts or a folder of their own leaves the mail where it
    is and places a copy.  Returns mail id -> the UID it (or its copy) has in ``target``."""
    with _writing(engine) as s:
        user = _user(s, user_id)
        dest = _box(s, user, target)
        if dest.kind not in ("trash", "personal", "drafts", "inbox"):
            raise CannotPlace(target)
        copies: dict[int, int] = {}
        if copy and dest.kind in ("personal", "drafts"):
            copies = {mail_id: _copy_of(s, user_id, mail_id) for mail_id in mail_ids}
        for mail_id in (copies[m] if copies else m for m in mail_ids):
            row = s.get(ImapPlacement, (user_id, mail_id))
            if dest.kind == "inbox":
                if row is not None:
                    s.delete(row)
                continue
            place_name = "trash" if dest.kind == "trash" else "box"
            if row is None:
                row = ImapPlacement(user_id=user_id, mail_id=mail_id, place=place_name, box_id=dest.id)
            else:
                row.place, row.box_id = place_name, dest.id
            s.add(row)
        s.flush()
        if not copy:
            # MOVE into the box the mail is in already: it arrives anew, with a new UID (RFC 6851
            # 3.3 lets the server treat it as a copy and an expunge, as Dovecot does).
            s.refresh(dest, with_for_update=True)
            for entry in s.exec(select(ImapEntry).where(ImapEntry.box_id == dest.id, col(ImapEntry.mail_id).in_(
                    list(mail_ids)), col(ImapEntry.expunged_modseq).is_(None))).all():
                entry.expunged_modseq = dest.highest_modseq + 1
                s.add(entry)
        bump_epoch(s)
        refresh(s, user, dest)
        placed = list(copies.values()) if copies else list(mail_ids)
        uids = dict(s.exec(select(ImapEntry.mail_id, ImapEntry.uid).where(
            ImapEntry.box_id == dest.id, col(ImapEntry.mail_id).in_(placed),
            col(ImapEntry.expunged_modseq).is_(None))).all())
        if dest.kind == "inbox" and set(uids) != set(mail_ids):
            raise CannotPlace(target)  # not mail of theirs that INBOX shows: rolled back
        if copies:
            return {m: uids[c] for m, c in copies.items() if c in uids}
        return uids


def _place(s: Session, user_id: int, mail_ids: Sequence[int], place: str, box_id: int | None) -> None:
    """Where the user put these mails (:class:`~.models.ImapPlacement`), one upsert each."""
    now = utcnow()
    raw(s).executemany(
        "INSERT INTO imap_placements (user_id, mail_id, place, box_id, placed_at) "
        "VALUES (:user, :mail, :place, :box, :now) ON CONFLICT (user_id, mail_id) "
        "DO UPDATE SET place = excluded.place, box_id = excluded.box_id",
        [{"user": user_id, "mail": m, "place": place, "box": box_id, "now": now} for m in mail_ids])


class CannotPlace(ValueError):
    """Mail cannot be put in this mailbox by hand."""


def delete(engine: Engine, user_id: int, box_id: int, mail_ids: Sequence[int], *, audit: object,
           login: str, peer: str | None) -> None:
    """EXPUNGE: the mails leave every box of the user (kept, in Retention for admins), audited."""
    with _writing(engine) as s:
        _user(s, user_id)
        r = raw(s)
        row = r.execute("SELECT name FROM imap_boxes WHERE id = :box AND user_id = :user",
                        {"box": box_id, "user": user_id}).fetchone()
        if row is None:
            raise NotYours(str(box_id))
        ids = list(mail_ids)
        _place(s, user_id, ids, "hidden", None)
        # Out of every box of the user's (views.wanted shows no hidden mail but in Retention),
        # and into every admin's Retention: each of those boxes a new MODSEQ, no view epoch
        # (which would make every session of every user resolve its view again).
        _touch(s, user_id, ids, "expunged_modseq")
        for (retention,) in r.execute("SELECT id FROM imap_boxes WHERE kind = 'retention' AND NOT gone").fetchall():
            _add_entries(s, retention, ids)
        if audit is not None and ids:
            audit.append(actor=login, action="imap.delete", target=row[0], peer=peer, session=s,  # type: ignore[attr-defined]
                         mails=ids)


def append(engine: Engine, user_id: int, target: str, new: NewMail, flags: Sequence[str], blobs: object,
           data: bytes) -> tuple[BoxInfo, int]:
    """APPEND to Drafts or a folder of the user's own: the mail is stored (each APPEND a mail of
    its own, even of the same bytes) and placed there.  Returns the box and the new UID."""
    # The bytes first, outside the write lock (a blob no mail names is harmless; a mail without
    # its blob is not).
    blobs.put(data, new.blob)  # type: ignore[attr-defined]
    blobs.sync()  # type: ignore[attr-defined]
    with _writing(engine) as s:
        user = _user(s, user_id)
        # Drafts and the user's own folders are there whatever the user's role and customers:
        # found by name, the view resolved only when it is not there yet.
        found = raw(s).execute("SELECT id, kind FROM imap_boxes WHERE user_id = :user AND name = :name AND NOT gone",
                               {"user": user_id, "name": target}).fetchone()
        if found is None:
            dest = _box(s, user, target)
            assert dest.id is not None
            found = (dest.id, dest.kind)
        box_id, kind = found
        if kind not in ("drafts", "personal"):
            raise CannotPlace(target)
        mail_id = insert_mail(session=s, new=new, filing=Filing("draft", user_id=user_id))
        s.flush()
        _place(s, user_id, [mail_id], "box", box_id)
        _set_flags(s, user_id, {mail_id: " ".join(sorted(set(flags)))})  # a new mail: in no box yet
        # A draft shows in the box it is placed in alone (views.wanted): it takes the box's next
        # UID there, and no view epoch moves for every other session to resolve against.
        _, uids = _add_entries(s, box_id, [mail_id])
        return _box_info(s, box_id), uids[mail_id]


def _box_info(s: Session, box_id: int) -> BoxInfo:
    row = raw(s).execute("SELECT id, name, kind, uidvalidity, uid_next, highest_modseq, subscribed "
                         "FROM imap_boxes WHERE id = :box", {"box": box_id}).fetchone()
    return BoxInfo(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]))


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


__all__ = ["SYSTEM_FLAGS", "BoxInfo", "CannotPlace", "Message", "NotYours", "Opened", "Snapshot", "Update", "append",
           "box_state", "delete", "poll_if_moved", "mail_rows", "mailboxes", "open_box", "place", "poll", "status", "store_flags"]
