"""What a user does to their mail over IMAP: flags, moves and copies, deletes, drafts appended.

Each function is one short writing transaction in a worker thread.  A change raises the MODSEQ
of each of the user's boxes it touches, in that transaction (:func:`_touch`, :func:`_add_entries`):
the user's other sessions see it at their next command, an idling one through the watch's look
at the MODSEQs.  Only what changes whose mail is whose moves the view epoch (a MOVE, whose
source box is found by resolving): the epoch makes every session of every user resolve its view
again.  A user's flags are theirs alone (:class:`~.models.ImapFlags`).  Deleting never removes a
mail: it places it out of the user's view (``hidden``), where admins see it in Retention, with
an audit event.  The few statements every command makes are plain SQL (:mod:`.rawsql`): through
the ORM each cost more than the rest of a flag change.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from .imapstate import (CHUNK, NO_FLAGS, BoxInfo, Message, NotYours, _box, _box_row, _entries, _flags, _in, _info,
                        _message, _user, _writing)
from .mails import Filing, NewMail, insert_mail
from .models import ImapEntry, ImapFlags, ImapPlacement, Mail, MailText, utcnow
from .rawsql import raw
from .views import bump_epoch, refresh


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
        row = _box_row(s, box_id)
        assert row is not None
        return _info(row), uids[mail_id]


__all__ = ["CannotPlace", "append", "delete", "place", "store_flags"]
