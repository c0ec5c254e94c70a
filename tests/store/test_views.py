"""Views: each user's mailboxes hold exactly the mail their role and ownership allow; UIDs only
grow; mail that leaves a view is expunged from it and, when it comes back, gets a new UID."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mailwarden.store.directory import add_customer, add_user, assign_customer
from mailwarden.store.mails import Filing, NewMail, add_mail
from mailwarden.store.models import ImapPlacement, Mail, User
from mailwarden.store.views import boxes, bump_epoch, entries, epoch, refresh
from sqlmodel import select

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _mail(s, n: int, filing: Filing, direction: str = "in"):
    return add_mail(session=s, new=NewMail(blob=f"{n:064x}", size=10, internal_date=T0 + timedelta(minutes=n),
                                           subject=f"m{n}", direction=direction), filing=filing)


def _setup(s):
    add_user(session=s, login="zhang", name="Zhang", password="password1", team="east")
    add_user(session=s, login="li", name="Li", password="password1", team="east")
    add_user(session=s, login="wang", name="Wang", password="password1", role="senior")
    add_user(session=s, login="boss", name="Boss", password="password1", role="supervisor", team="east")
    add_user(session=s, login="root", name="Root", password="password1", role="admin")
    a = add_customer(session=s, name="Acme", owner="zhang")
    b = add_customer(session=s, name="Beta/Sub", owner="li")
    c = add_customer(session=s, name="Pooled")
    u = {x.login: x for x in s.exec(select(User)).all()}
    _mail(s, 1, Filing("contact", customer_id=a.id))
    _mail(s, 2, Filing("contact", customer_id=b.id))
    _mail(s, 3, Filing("pool"))
    _mail(s, 4, Filing("sent", customer_id=a.id, user_id=u["zhang"].id), direction="out")
    _mail(s, 5, Filing("notice", user_id=u["li"].id), direction="notice")
    _mail(s, 6, Filing("domain", customer_id=c.id))
    return u


def _view(s, user):
    out = {}
    for box in boxes(s, user):
        refresh(s, user, box)
        s.flush()
        got = [s.get(Mail, m).subject for _u, m, _q in entries(s, box)]
        if got:
            out[box.name] = got
    return out


def test_each_role_sees_its_own(store):
    with store.session() as s:
        u = _setup(s)
        assert _view(s, u["zhang"]) == {"INBOX": ["m1"], "Sent": ["m4"], "Customers/Acme": ["m1", "m4"]}
        assert _view(s, u["li"]) == {"INBOX": ["m2", "m5"], "Customers/Beta-Sub": ["m2"]}
        assert _view(s, u["wang"]) == {"Pool": ["m3", "m6"]}
        assert _view(s, u["boss"]) == {"Pool": ["m3", "m6"], "Customers/Acme": ["m1", "m4"],
                                       "Customers/Beta-Sub": ["m2"]}
        root = _view(s, u["root"])
        assert root["Customers/Pooled"] == ["m6"] and "Retention" not in root  # nothing deleted yet


def test_reassignment_expunges_and_a_return_gets_new_uids(store):
    with store.session() as s:
        u = _setup(s)
        inbox = next(b for b in boxes(s, u["zhang"]) if b.name == "INBOX")
        refresh(s, u["zhang"], inbox)
        s.flush()
        [(uid1, _m, _q)] = entries(s, inbox)
        validity = inbox.uidvalidity
        assert 0 < validity < 2**31
        assign_customer(session=s, name_or_id="Acme", owner="li")
        s.flush()
        change = refresh(s, u["zhang"], inbox)
        assert change.removed == [uid1] and change.added == []
        assert [b.name for b in boxes(s, u["zhang"]) if b.name.startswith("Customers/")] == []
        assign_customer(session=s, name_or_id="Acme", owner="zhang")
        s.flush()
        change = refresh(s, u["zhang"], inbox)
        assert [uid for uid, _ in change.added] == [uid1 + 1]  # a new, higher UID: the client sees it again
        assert inbox.uidvalidity == validity
        again = next(b for b in boxes(s, u["zhang"]) if b.name == "Customers/Acme")
        assert again.uidvalidity and not again.gone


def test_deleted_mail_leaves_every_box_of_that_user_only_and_is_in_retention(store):
    with store.session() as s:
        u = _setup(s)
        _view(s, u["zhang"])
        s.add(ImapPlacement(user_id=u["zhang"].id, mail_id=1, place="hidden"))
        s.flush()
        assert _view(s, u["zhang"]) == {"Sent": ["m4"], "Customers/Acme": ["m4"]}
        assert "m1" in _view(s, u["boss"])["Customers/Acme"]
        assert _view(s, u["root"])["Retention"] == ["m1"]


def test_the_epoch_counts_changes(store):
    with store.session() as s:
        before = epoch(s)
        bump_epoch(s)
        bump_epoch(s)
        s.flush()
        assert epoch(s) == before + 2


def test_what_changes_whose_mail_is_whose_moves_the_epoch(store):
    from mailwarden.store.directory import claim_customer
    from mailwarden.store.mails import assign_mail

    with store.session() as s:
        _setup(s)
        seen = epoch(s)
        for change in (lambda: assign_customer(session=s, name_or_id="Acme", owner="li"),
                       lambda: claim_customer(session=s, name_or_id="Pooled", login="wang", limits={}),
                       lambda: assign_mail(session=s, mail_id=3, customer="Acme")):
            change()
            s.flush()
            assert epoch(s) > seen
            seen = epoch(s)


def test_reassigning_everyone_and_editing_a_team_moves_the_views(store):
    """customer reassign and user edit go through the functions the views read: the next refresh
    shows the new owner's mail and takes it from the old one."""
    from mailwarden.store.directory import edit_user, reassign_customers

    with store.session() as s:
        u = _setup(s)
        assert _view(s, u["zhang"])["INBOX"] == ["m1"]
        reassign_customers(session=s, from_login="zhang", to_login="li")
        assert _view(s, u["zhang"]) == {"Sent": ["m4"]}
        assert _view(s, u["li"])["Customers/Acme"] == ["m1", "m4"] and _view(s, u["li"])["INBOX"] == ["m1", "m2", "m5"]
        assert "Customers/Beta-Sub" in _view(s, u["boss"])
        edit_user(session=s, login="li", team="west")  # li's customers leave the east supervisor's view
        assert "Customers/Beta-Sub" not in _view(s, u["boss"]) and "Customers/Acme" not in _view(s, u["boss"])
