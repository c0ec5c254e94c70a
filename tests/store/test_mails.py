"""The store's copy of the company mailbox: blobs, mails, locations, listing and manual filing
(on SQLite and on PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from mailwarden.store.blobs import PIECE, BlobMissing, name_of
from mailwarden.store.directory import DirectoryError, add_customer, add_user, assign_customer, claim_customer
from mailwarden.store.mails import (Filing, NewMail, add_location, add_mail, assign_mail, ensure_folder, known_blobs,
                                    last_activity, list_mails, locations, thread_of)
from mailwarden.store.models import Contact, Mailbox
from sqlmodel import select


def _new(blob: str, **kw) -> NewMail:
    return NewMail(blob=blob, size=10, internal_date=kw.pop("when", datetime.now(timezone.utc)), **kw)


def test_blobs_are_named_by_their_bytes_and_read_back_whole_or_in_part(store):
    data = bytes(range(256)) * (PIECE // 256 * 2 + 3)  # more than two pieces in the database
    name = store.blobs.put(data)
    assert name == name_of(data) and store.blobs.put(data) == name
    store.blobs.sync()
    assert store.blobs.exists(name) and store.blobs.read(name) == data
    assert store.blobs.read_range(name, PIECE - 5, PIECE + 7) == data[PIECE - 5:PIECE + 7]
    assert store.blobs.read_range(name, len(data) - 3, len(data) + 100) == data[-3:]
    assert store.blobs.put(b"") == name_of(b"") and store.blobs.read(name_of(b"")) == b""
    with pytest.raises(BlobMissing):
        store.blobs.read("0" * 64)
    with pytest.raises(ValueError):
        store.blobs.read("../../etc/passwd")


def test_every_row_belongs_to_the_default_mailbox(store):
    with store.session() as s:
        assert [(m.id, m.name) for m in s.exec(select(Mailbox)).all()] == [(1, "default")]
        s.add(Mailbox(name="de-sales", address="de-sales@company.test"))  # the next one does not collide
        s.flush()
        c = add_customer(session=s, name="Buyer")
        assert c.mailbox_id == 1


def test_a_mail_is_stored_once_however_often_it_is_found(store):
    with store.session() as s:
        inbox = ensure_folder(session=s, name="INBOX", role="inbox")
        inbox.uidvalidity = 5
        allmail = ensure_folder(session=s, name="[Gmail]/All Mail", role="all")
        allmail.uidvalidity = 9
        m = add_mail(session=s, new=_new("a" * 64, message_id="<x@y>"), filing=Filing("pool"))
        assert m.thread_id == m.id
        assert add_location(session=s, mail_id=m.id, folder_id=inbox.id, uidvalidity=5, uid=1, flags=["\\Seen"])
        assert not add_location(session=s, mail_id=m.id, folder_id=inbox.id, uidvalidity=5, uid=1)
        assert add_location(session=s, mail_id=m.id, folder_id=allmail.id, uidvalidity=9, uid=77)
        s.flush()
        assert known_blobs(session=s, names=["a" * 64, "f" * 64]) == {"a" * 64: m.id}
        assert list(locations(session=s, folder=inbox)) == [1]


def test_listing_follows_the_customer_to_its_new_owner(store):
    with store.session() as s:
        for login in ("zhang", "li"):
            add_user(session=s, login=login, name=login, password="password1")
        c = add_customer(session=s, name="Buyer", owner="zhang")
        old = datetime.now(timezone.utc) - timedelta(days=40)
        add_mail(session=s, new=_new("a" * 64, subject="quote", when=old), filing=Filing("contact", customer_id=c.id))
        add_mail(session=s, new=_new("b" * 64, subject="inquiry"), filing=Filing("pool"))
        li = add_user(session=s, login="wang", name="wang", password="password1")
        add_mail(session=s, new=_new("c" * 64, subject="held"), filing=Filing("notice", user_id=li.id))
    with store.session() as s:
        assert [r.subject for r in list_mails(session=s, owner="zhang")] == ["quote"]
        assert [r.subject for r in list_mails(session=s, pool=True)] == ["inquiry"]
        assert [r.subject for r in list_mails(session=s, owner="wang")] == ["held"]
        assert {r.subject for r in list_mails(session=s, since=old + timedelta(days=1))} == {"held", "inquiry"}
        assign_customer(session=s, name_or_id="Buyer", owner="li")
    with store.session() as s:
        assert list_mails(session=s, owner="zhang") == []
        assert [r.subject for r in list_mails(session=s, owner="li")] == ["quote"]
        assert abs(last_activity(session=s)[c.id] - old) < timedelta(seconds=1)


def test_a_mail_filed_by_hand_brings_its_sender_along(store):
    with store.session() as s:
        add_user(session=s, login="zhang", name="zhang", password="password1")
        add_customer(session=s, name="Buyer", owner="zhang")
        m = add_mail(session=s, new=_new("d" * 64, from_addr="max@gmail.com"), filing=Filing("pool"))
        with pytest.raises(DirectoryError, match="no mail 999"):
            assign_mail(session=s, mail_id=999, customer="Buyer")
        mail, before, target = assign_mail(session=s, mail_id=m.id, customer="Buyer")
        assert (before, target.name, mail.filed_by) == (None, "Buyer", "manual")
        s.flush()
        assert s.exec(select(Contact.customer_id).where(Contact.email == "max@gmail.com")).one() == target.id
        assert [r.subject for r in list_mails(session=s, owner="zhang")] == [""]


def test_a_reply_finds_its_thread(store):
    with store.session() as s:
        u = add_user(session=s, login="zhang", name="zhang", password="password1")
        first = add_mail(session=s, new=_new("e" * 64, message_id="<1@x>"), filing=Filing("round-robin", user_id=u.id))
        assert thread_of(session=s, ids=["<unknown@x>"]) is None
        hit = thread_of(session=s, ids=["<0@x>", "<1@x>"])
        assert (hit.user_id, hit.thread_id, hit.customer_id) == (u.id, first.id, None)


def test_claiming_takes_pool_customers_up_to_the_roles_limit(store):
    with store.session() as s:
        add_user(session=s, login="zhang", name="zhang", password="password1")
        add_user(session=s, login="li", name="li", password="password1")
        for name in ("A", "B", "C"):
            add_customer(session=s, name=name)
        add_customer(session=s, name="Owned", owner="li")
        claim_customer(session=s, name_or_id="A", login="zhang", limits={"sales": 2})
        claim_customer(session=s, name_or_id="B", login="zhang", limits={"sales": 2})
        s.flush()
        with pytest.raises(DirectoryError, match="holds 2 customers"):
            claim_customer(session=s, name_or_id="C", login="zhang", limits={"sales": 2})
        with pytest.raises(DirectoryError, match="li owns it"):
            claim_customer(session=s, name_or_id="Owned", login="zhang", limits={})
