"""The folders a user makes themselves over IMAP: CREATE, RENAME, DELETE, and subscriptions.

What a session reads inside a mailbox is :mod:`.imapstate`, what it changes there
:mod:`.imapchanges`; the boxes a user's role and customers give them are :mod:`.views`."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from .imapchanges import CannotPlace
from .imapstate import BoxInfo, NotYours, _box, _info, _user, _writing
from .models import ImapBox, ImapPlacement
from .views import bump_epoch, refresh


def subscribe(engine: Engine, user_id: int, name: str, on: bool) -> None:
    with _writing(engine) as s:
        user = _user(s, user_id)
        try:
            box = _box(s, user, name)
        except NotYours:
            # UNSUBSCRIBE of a folder of theirs that was deleted (it stays subscribed until then)
            box = s.exec(select(ImapBox).where(ImapBox.user_id == user_id, ImapBox.name == name,
                                               ImapBox.kind == "personal", col(ImapBox.gone).is_(True))).first()
            if box is None or on:
                raise
        box.subscribed = on
        s.add(box)


def lost_subscriptions(engine: Engine, user_id: int) -> list[str]:
    """Folders of the user's own they deleted but did not unsubscribe: RFC 3501 6.3.6 keeps the
    subscription, LIST (SUBSCRIBED) shows it \\NonExistent."""
    with Session(engine) as s:
        return [n for n in s.exec(select(ImapBox.name).where(
            ImapBox.user_id == user_id, ImapBox.kind == "personal", col(ImapBox.gone).is_(True),
            col(ImapBox.subscribed).is_(True))).all() if "\x01" not in n]


def create(engine: Engine, user_id: int, name: str) -> BoxInfo:
    """A folder of the user's own (what they put there is placed there)."""
    from .views import _new_uidvalidity  # one rule for new UIDVALIDITYs

    with _writing(engine) as s:
        user = _user(s, user_id)
        have = {b.name: b for b in s.exec(select(ImapBox).where(ImapBox.user_id == user_id)).all()}
        old = have.get(name)
        if old is not None and not (old.kind == "personal" and old.gone):
            raise FileExistsError(name)
        if old is not None:  # made again: a new UIDVALIDITY, UIDs start over
            # UIDs go on from where they were (the old ones stay recorded), under a new UIDVALIDITY
            old.gone, old.uidvalidity = False, _new_uidvalidity(s, user_id)  # a subscription stays
            s.add(old)
            s.flush()
            bump_epoch(s)  # the user's boxes changed (sessions know them by epoch)
            return _info(old)
        # CREATE does not subscribe (RFC 3501 6.3.3): clients that want it say SUBSCRIBE
        box = ImapBox(user_id=user_id, name=name, kind="personal", uidvalidity=_new_uidvalidity(s, user_id),
                      subscribed=False)
        s.add(box)
        s.flush()
        bump_epoch(s)  # the user's boxes changed (sessions know them by epoch)
        del user
        return _info(box)


def rename(engine: Engine, user_id: int, old: str, new: str) -> None:
    """RENAME a folder of the user's own, and the folders under it; the UIDs go with them."""
    with _writing(engine) as s:
        user = _user(s, user_id)
        box = _box(s, user, old)
        if box.kind != "personal":
            raise CannotPlace(old)
        have = {b.name: b for b in s.exec(select(ImapBox).where(ImapBox.user_id == user_id)).all()}
        if new in have and not (have[new].kind == "personal" and have[new].gone):
            raise FileExistsError(new)
        if new in have:  # a deleted folder of that name: its UIDs are not reused, its row is
            gone = have.pop(new)
            gone.name = f"{new}\x01gone{gone.id}"  # no client can spell it (a control character)
            s.add(gone)
            s.flush()
        for name, b in have.items():
            if b.kind == "personal" and (name == old or name.startswith(old + "/")):
                b.name = new + name[len(old):]
                s.add(b)
        bump_epoch(s)  # the user's boxes changed (sessions know them by epoch)


def remove(engine: Engine, user_id: int, name: str) -> None:
    """DELETE a folder of the user's own; what was placed there goes back to where filing shows it."""
    with _writing(engine) as s:
        user = _user(s, user_id)
        box = _box(s, user, name)
        if box.kind != "personal":
            raise CannotPlace(name)
        for row in s.exec(select(ImapPlacement).where(ImapPlacement.user_id == user_id,
                                                      ImapPlacement.box_id == box.id)).all():
            s.delete(row)
        box.gone = True
        s.add(box)
        s.flush()
        bump_epoch(s)
        refresh(s, user, box)


__all__ = ["create", "lost_subscriptions", "remove", "rename", "subscribe"]
