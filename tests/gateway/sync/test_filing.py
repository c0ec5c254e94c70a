"""Filing: every imported message is filed for its customer's owner, its thread, its
operator (the gateway's notices), or the pool -- and never by a header a stranger can write."""

from __future__ import annotations

import pytest
from mailwarden.gateway.config import Store
from mailwarden.gateway.delivery.notices import build_bounce, build_notice
from mailwarden.gateway.headers import LOOP_HEADER, loop_token
from mailwarden.gateway.sync.filing import FilingPolicy
from mailwarden.gateway.sync.importer import Importer, Incoming
from mailwarden.store import open_store
from mailwarden.store.directory import add_customer, add_user, assign_customer
from mailwarden.store.blobs import name_of
from mailwarden.store.mails import ensure_folder, list_mails
from mailwarden.store.models import Message, MessageCustomer


@pytest.fixture
def store(tmp_path):
    handle = open_store(Store(url=f"sqlite:///{tmp_path / 'mw.db'}", data_dir=tmp_path, audit_key_file=tmp_path / "k"))
    with handle.session() as s:
        for login, role in (("zhang", "sales"), ("li", "sales"), ("wang", "senior"), ("boss", "admin")):
            add_user(session=s, login=login, name=login.title(), password="password1", role=role)
        add_customer(session=s, name="Buyer GmbH", domains=["buyer.test"], contacts=["max@gmail.com"], owner="zhang")
        add_customer(session=s, name="Other Ltd", domains=["other.test"], owner="li")
    yield handle
    handle.close()


def _folder(store, name="INBOX", role="inbox"):
    with store.session() as s:
        f = ensure_folder(session=s, name=name, role=role)
        f.uidvalidity = 1
        return f.id


def _mail(sender: str, subject: str, *, msgid: str, extra: str = "", to: str = "sales@company.test") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {msgid}\r\n{extra}"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n").encode()


def _import(store, policy, folder_id, *raws):
    start = 1 + sum(1 for _ in list_mails_all(store))
    return Importer(store, policy).store_batch(folder_id, 1, [Incoming(start + i, r) for i, r in enumerate(raws)])


def list_mails_all(store):
    with store.session() as s:
        return list_mails(session=s, limit=10_000)


def _owners(store):
    return {r.subject: (r.owner, r.filed_by) for r in list_mails_all(store)}


def _policy(store, **kw):
    return FilingPolicy(key=store.audit.key, company_domains=("company.test",), freemail=frozenset({"gmail.com"}), **kw)


def test_sender_contact_domain_and_pool(store):
    fid = _folder(store)
    _import(store, _policy(store), fid,
            _mail("Max <max@gmail.com>", "from a contact at a free-mail address", msgid="<1@t>"),
            _mail("eva@buyer.test", "from the customer's domain", msgid="<2@t>"),
            _mail("eva@mail.buyer.test", "from a subdomain", msgid="<3@t>"),
            _mail("stranger@gmail.com", "free-mail never names a customer by domain", msgid="<4@t>"),
            _mail("new@prospect.test", "a new inquiry", msgid="<5@t>"))
    assert _owners(store) == {
        "from a contact at a free-mail address": ("zhang", "contact"),
        "from the customer's domain": ("zhang", "domain"),
        "from a subdomain": ("zhang", "domain"),
        "free-mail never names a customer by domain": (None, "pool"),
        "a new inquiry": (None, "pool"),
    }


def test_a_reply_follows_the_thread_the_operator_began(store):
    """Sent through the gateway by li to nobody the directory knows; the answer comes from an
    address nobody knows either: it is li's."""
    with store.session() as s:
        msg = Message(direction="out", operator_id=3, recipients="x@unknown.test", subject="offer",
                      message_id="<offer-1@company.test>", size=1, status="delivered")
        s.add(msg)
        s.flush()
        buyer = Message(direction="out", operator_id=1, recipients="eva@buyer.test", subject="quote",
                        message_id="<quote-1@company.test>", size=1, status="delivered")
        s.add(buyer)
        s.flush()
        s.add(MessageCustomer(message_id=buyer.id, customer_id=1))
    fid = _folder(store)
    _import(store, _policy(store), fid,
            _mail("someone@unknown.test", "Re: offer", msgid="<r1@t>", extra="In-Reply-To: <offer-1@company.test>\r\n"),
            _mail("assistant@gmail.com", "Re: quote", msgid="<r2@t>",
                  extra="References: <zzz@x> <quote-1@company.test>\r\n"))
    assert _owners(store) == {"Re: offer": ("wang", "thread"), "Re: quote": ("zhang", "thread")}
    with store.session() as s:  # the customer is reassigned: its mail goes with it at once
        assign_customer(session=s, name_or_id="Buyer GmbH", owner="li")
    assert _owners(store)["Re: quote"] == ("li", "thread")


def test_notices_are_for_their_operator_only_and_cannot_be_forged(store):
    fid = _folder(store)
    key = store.audit.key
    notice = build_notice(key=key, shared="sales@company.test", operator="li", subject="held for review",
                          text="Your message quotes +86 138 0013 8000", kind="quarantine")
    bounce = build_bounce(key=key, shared="sales@company.test", operator="zhang", rcpts=["a@b.test"], reason="550",
                          original=_mail("sales@company.test", "orig", msgid="<o@t>"))
    forged = notice.replace(b"Subject: held for review", b"Subject: forged", 1).replace(
        b"Message-ID: <", b"Message-ID: <forged", 1)
    _import(store, _policy(store), fid, notice, bounce, forged)
    owners = _owners(store)
    assert owners["held for review"] == ("li", "notice")
    assert owners["forged"] == (None, "pool")
    assert [v for k, v in owners.items() if k.startswith("Undelivered")] == [("zhang", "notice")]


def test_the_sent_copy_is_filed_for_its_operator_and_customer(store):
    with store.session() as s:
        m = Message(direction="out", operator_id=2, recipients="eva@other.test", subject="price",
                    message_id="<p1@company.test>", size=1, status="delivered")
        s.add(m)
        s.flush()
        s.add(MessageCustomer(message_id=m.id, customer_id=2))
    fid = _folder(store, "Sent", "sent")
    token = loop_token(store.audit.key, "<p1@company.test>")
    sent = _mail("sales@company.test", "price", msgid="<p1@company.test>", to="eva@other.test",
                 extra=f"{LOOP_HEADER.decode()}: gw; token={token}\r\n")
    by_webmail = _mail("sales@company.test", "sent from webmail", msgid="<w1@t>", to="eva@buyer.test")
    _import(store, _policy(store), fid, sent, by_webmail)
    rows = {r.subject: r for r in list_mails_all(store)}
    assert (rows["price"].owner, rows["price"].filed_by, rows["price"].direction) == ("li", "sent", "out")
    # sent by somebody with the old password, not through the gateway: filed by its recipient
    assert (rows["sent from webmail"].owner, rows["sent from webmail"].filed_by) == ("zhang", "domain")


def test_round_robin_takes_turns_among_the_on_duty(store):
    fid = _folder(store)
    policy = _policy(store, unknown="round-robin", on_duty=("li", "zhang"))
    _import(store, policy, fid, *(_mail(f"n{i}@new{i}.test", f"inquiry {i}", msgid=f"<q{i}@t>") for i in range(4)))
    owners = [o for _s, (o, how) in sorted(_owners(store).items())]
    assert owners == ["li", "zhang", "li", "zhang"]


def test_a_large_message_is_not_copied_on_import(store):
    """50 MB with a small text part: the import writes the bytes it was given and reads the text
    part only, so what it allocates is a small part of the message (the bytes themselves are
    the one copy in memory)."""
    import base64
    import tracemalloc

    fid = _folder(store)
    attachment = base64.encodebytes(b"\x00\x01" * (18 * 1024 * 1024)).replace(b"\n", b"\r\n")
    raw = (b"From: eva@buyer.test\r\nSubject: big\r\nMessage-ID: <big@t>\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
           b"Catalogue attached.\r\n--b\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"\r\n--b--\r\n")
    assert len(raw) > 45 * 1024 * 1024
    tracemalloc.start()
    try:
        Importer(store, _policy(store)).store_batch(fid, 1, [Incoming(1, raw)])
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"import of {len(raw) / 1e6:.0f} MB allocated at most {peak / 1e6:.1f} MB")
    assert peak < len(raw) * 0.25
    assert store.blobs.read(name_of(raw)) == raw


def test_inbound_mail_with_private_contacts_is_stored_with_its_masked_rendition(store):
    from mailwarden.gateway.imap.bodystructure import MessageFacts
    from mailwarden.gateway.sync.masker import Masker
    from mailwarden.gateway.sync.masking import masked_rendition
    from mailwarden.gateway.sync.service import describe_for_imap
    from mailwarden.rules.context import CompanyProfile, RulesSettings
    from mailwarden.store.models import Mail
    from sqlmodel import select

    masker = Masker.build(CompanyProfile("Bright Lighting", ("company.test",), ("+86 574 8888 0000",), ()),
                          RulesSettings())
    importer = Importer(store, _policy(store), describe=describe_for_imap(),
                        mask=lambda raw: masked_rendition(raw, masker=masker))
    fid = _folder(store)
    private = _mail("Max <max@gmail.com>", "call me", msgid="<p@t>").replace(
        b"Hello\r\n", b"My mobile: +86 138 0013 8000, WeChat: maxweber88\r\n")
    plain = _mail("eva@buyer.test", "plain", msgid="<q@t>")
    importer.store_batch(fid, 1, [Incoming(1, private), Incoming(2, plain)])
    with store.session() as s:
        rows = {m.subject: m for m in s.exec(select(Mail)).all()}
    masked = store.blobs.read(rows["call me"].masked_blob)
    assert b"0013 8000" not in masked and b"maxweber88" not in masked and b"138" in masked
    assert store.blobs.read(rows["call me"].blob) == private  # the store keeps the original
    assert MessageFacts.from_json(rows["call me"].masked_facts).size == len(masked)
    assert rows["plain"].masked_blob is None and rows["plain"].facts
