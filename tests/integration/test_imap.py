"""Salespeople read through the gateway's IMAP: a real Dovecot + Postfix upstream, the gateway
syncing it, and python's imaplib as the mail client.  Each sees only their own customers'
mail, masked where their role says, with flags of their own, and new mail while idling."""

from __future__ import annotations

import asyncio
import imaplib
import re
import socket
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from mailwarden.store.directory import add_customer, add_user, assign_customer
from mailwarden.store.models import AuditEvent
from sqlmodel import Session, select

from .conftest import PASSWORDS, SHARED, running_gateway
from .test_sync import inbound, own_upstream, wait_for_mail  # noqa: F401 (a fixture: a mailbox of this module's own)

pytestmark = pytest.mark.integration

SYNC = {"idle": True, "poll_interval": "5s", "diff_interval": "2s"}
LISTEN = {"imap": "127.0.0.1:0", "imaps": "127.0.0.1:0"}


def imaps(gw, login: str | None = "zhang", password: str | None = None) -> imaplib.IMAP4_SSL:
    c = imaplib.IMAP4_SSL("localhost", gw.gw.bound["imaps"].port, ssl_context=gw.tls(), timeout=30)
    if login:
        c.login(login, password or PASSWORDS[login])
    return c


def boxes_of(c: imaplib.IMAP4) -> dict[str, str]:
    typ, data = c.list()
    assert typ == "OK", data
    out = {}
    for line in data:
        m = re.match(rb'\((.*?)\) "/" (.*)', line)
        assert m, line
        out[m.group(2).strip(b'"').decode()] = m.group(1).decode()
    return out


def subjects(c: imaplib.IMAP4, box: str = "INBOX") -> list[str]:
    typ, _ = c.select(f'"{box}"')
    assert typ == "OK"
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    return [part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)]


@pytest.fixture
async def world(own_upstream, tmp_path):
    """The gateway, syncing; zhang owns Acme (buyer.test), li owns Max (max@gmail.com); a
    supervisor and an admin."""
    async with running_gateway(own_upstream, tmp_path, sync=SYNC, listen=LISTEN, imap={"bulk_bodies": 3}) as gw:
        with Session(gw.store.engine) as s:
            add_customer(session=s, name="Max Buyer", contacts=["max@gmail.com"], owner="li")
            add_user(session=s, login="boss", name="Boss", password="boss-password", role="admin")
            s.commit()
        await asyncio.sleep(0.5)
        yield gw


async def deliver(upstream, sender: str, subject: str, body: str = "Hello\r\n") -> None:
    await asyncio.to_thread(upstream.inject, inbound(sender, subject, body=body), [SHARED], sender.split("<")[-1].strip(">"))


async def test_each_salesperson_reads_only_their_customers_mail(world, own_upstream):
    tag = uuid.uuid4().hex[:6]
    await deliver(own_upstream, "eva@buyer.test", f"for zhang {tag}")
    await deliver(own_upstream, "Max <max@gmail.com>", f"for li {tag}")
    await wait_for_mail(world.store, f"for zhang {tag}")
    await wait_for_mail(world.store, f"for li {tag}")

    def read() -> tuple[list[str], list[str], dict[str, str], dict[str, str]]:
        with imaps(world) as z, imaps(world, "li") as li:
            return subjects(z), subjects(li), boxes_of(z), boxes_of(li)

    zhang_inbox, li_inbox, zhang_boxes, li_boxes = await asyncio.to_thread(read)
    assert f"for zhang {tag}" in zhang_inbox and f"for li {tag}" not in zhang_inbox
    assert f"for li {tag}" in li_inbox and f"for zhang {tag}" not in li_inbox
    assert "Customers/Acme Lighting GmbH" in zhang_boxes and "Customers/Max Buyer" not in zhang_boxes
    assert "\\Sent" in zhang_boxes["Sent"] and "\\Trash" in zhang_boxes["Trash"] and "\\Drafts" in zhang_boxes["Drafts"]
    assert "Pool" not in zhang_boxes and "Retention" not in zhang_boxes


async def test_login_needs_tls_and_the_right_password(world):
    def plain() -> tuple[bytes, str]:
        c = imaplib.IMAP4("localhost", world.gw.bound["imap"].port, timeout=30)
        try:
            caps = c.capabilities
            try:
                c.login("zhang", PASSWORDS["zhang"])
                refused = ""
            except imaplib.IMAP4.error as exc:
                refused = str(exc)
            return b" ".join(x.encode() if isinstance(x, str) else x for x in caps), refused
        finally:
            c.shutdown()

    caps, refused = await asyncio.to_thread(plain)
    assert b"LOGINDISABLED" in caps and b"STARTTLS" in caps
    assert "STARTTLS" in refused or "TLS" in refused

    def starttls() -> str:
        c = imaplib.IMAP4("localhost", world.gw.bound["imap"].port, timeout=30)
        c.starttls(ssl_context=world.tls())
        typ, _ = c.login("zhang", PASSWORDS["zhang"])
        c.logout()
        return typ

    assert await asyncio.to_thread(starttls) == "OK"

    def wrong() -> str:
        with imaps(world, None) as c:
            try:
                c.login("zhang", "not-the-password")
            except imaplib.IMAP4.error as exc:
                return str(exc)
        return ""

    assert "AUTHENTICATIONFAILED" in await asyncio.to_thread(wrong)


async def test_private_contacts_are_masked_for_sales_and_shown_to_admins(world, own_upstream):
    tag = uuid.uuid4().hex[:6]
    body = "Call me on my mobile 13812345678 or WeChat wxid_maxbuyer88, thanks.\r\n"
    await deliver(own_upstream, "eva@buyer.test", f"contacts {tag}", body)
    await wait_for_mail(world.store, f"contacts {tag}")

    def bodies() -> tuple[bytes, int, bytes]:
        with imaps(world) as z, imaps(world, "boss", "boss-password") as boss:
            z.select("INBOX")
            typ, found = z.uid("SEARCH", "SUBJECT", f'"contacts {tag}"')
            uid = found[0].split()[-1]
            typ, data = z.uid("FETCH", uid, "(BODY.PEEK[])")
            masked = data[0][1]
            typ, data = z.uid("FETCH", uid, "(RFC822.SIZE)")
            size = int(re.search(rb"RFC822.SIZE (\d+)", data[0]).group(1))
            boss.select('"Customers/Acme Lighting GmbH"')
            typ, found = boss.uid("SEARCH", "SUBJECT", f'"contacts {tag}"')
            typ, data = boss.uid("FETCH", found[0].split()[-1], "(BODY.PEEK[])")
            return masked, size, data[0][1]

    masked, size, original = await asyncio.to_thread(bodies)
    assert b"13812345678" not in masked and b"138****5678" in masked
    assert size == len(masked)  # the masked rendition has its own, consistent size
    assert b"13812345678" in original


async def test_flags_are_per_user_and_delete_hides_for_that_user_only(world, own_upstream):
    tag = uuid.uuid4().hex[:6]
    await deliver(own_upstream, "eva@buyer.test", f"flags {tag}")
    await wait_for_mail(world.store, f"flags {tag}")

    def run() -> tuple[bytes, bytes, list[str], list[str], list[str]]:
        with imaps(world) as z, imaps(world, "boss", "boss-password") as boss:
            z.select("INBOX")
            uid = z.uid("SEARCH", "SUBJECT", f'"flags {tag}"')[1][0].split()[-1]
            z.uid("FETCH", uid, "(BODY[TEXT])")  # sets \Seen for zhang
            zflags = z.uid("FETCH", uid, "(FLAGS)")[1][0]
            boss.select('"Customers/Acme Lighting GmbH"')
            buid = boss.uid("SEARCH", "SUBJECT", f'"flags {tag}"')[1][0].split()[-1]
            bflags = boss.uid("FETCH", buid, "(FLAGS)")[1][0]
            # zhang deletes it: gone from zhang's INBOX, kept, and in the admin's Retention
            z.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
            z.expunge()
            after = subjects(z)
            customers = subjects(z, "Customers/Acme Lighting GmbH")
            retention = subjects(boss, "Retention")
            return zflags, bflags, after, customers, retention

    zflags, bflags, after, customers, retention = await asyncio.to_thread(run)
    assert b"\\Seen" in zflags and b"\\Seen" not in bflags
    assert f"flags {tag}" not in after and f"flags {tag}" not in customers
    assert f"flags {tag}" in retention


async def test_new_mail_reaches_an_idling_client_and_reassignment_moves_it(world, own_upstream):
    tag = uuid.uuid4().hex[:6]

    def idle_until_exists(c: imaplib.IMAP4_SSL, timeout: float) -> float:
        started = time.monotonic()
        c.send(b"i1 IDLE\r\n")
        assert c.readline().startswith(b"+")
        c.sock.settimeout(timeout)
        try:
            while True:
                line = c.readline()
                if b"EXISTS" in line:
                    return time.monotonic() - started
        finally:
            c.send(b"DONE\r\n")
            while not c.readline().startswith(b"i1 "):
                pass

    li = await asyncio.to_thread(imaps, world, "li")
    try:
        await asyncio.to_thread(li.select, "INBOX")
        waiter = asyncio.create_task(asyncio.to_thread(idle_until_exists, li, 20))
        await asyncio.sleep(0.5)
        sent = time.monotonic()
        await deliver(own_upstream, "Max <max@gmail.com>", f"idle {tag}")
        await waiter
        latency = time.monotonic() - sent
        print(f"new mail at the upstream -> EXISTS to the owner's IDLE: {latency:.2f} s")
        assert latency < 5.0

        # Acme goes to li: its mail appears in li's INBOX with new, higher UIDs
        before = await asyncio.to_thread(lambda: int(li.select("INBOX")[1][0]))
        with Session(world.store.engine) as s:
            assign_customer(session=s, name_or_id="Acme Lighting GmbH", owner="li")
            s.commit()
        await deliver(own_upstream, "eva@buyer.test", f"after move {tag}")
        await wait_for_mail(world.store, f"after move {tag}")
        got = await asyncio.to_thread(subjects, li)
        assert f"after move {tag}" in got and len(got) > before
    finally:
        await asyncio.to_thread(li.logout)


async def test_nothing_outside_the_view_is_reachable(world, own_upstream):
    tag = uuid.uuid4().hex[:6]
    await deliver(own_upstream, "Max <max@gmail.com>", f"secret of li {tag}")
    await wait_for_mail(world.store, f"secret of li {tag}")

    def refused(call, *args) -> str:  # type: ignore[no-untyped-def]
        try:
            return call(*args)[0]
        except imaplib.IMAP4.error as exc:  # BAD: not even a name
            return "BAD" if "BAD" in str(exc) else str(exc)

    def attacks() -> dict[str, object]:
        out: dict[str, object] = {}
        with imaps(world) as z:
            for name in ("Customers/Max Buyer", "customers/max buyer", "Customers/Max Buyer/", "Retention", "Pool",
                         "INBOX/../Customers/Max Buyer", "Customers/Max%20Buyer", "&AEMAdQBzAHQAbwBtAGUAcgBz-/Max Buyer"):
                out[f"select {name}"] = refused(z.select, f'"{name}"')
                out[f"status {name}"] = refused(z.status, f'"{name}"', "(MESSAGES)")
            out["list *"] = [n for n in boxes_of(z) if "Max" in n or n in ("Pool", "Retention")]
            typ, data = z.list('""', '"Customers/*"')
            out["list pattern"] = b" ".join(d for d in data if d)
            z.select("INBOX")
            out["uid fetch all"] = [p[1] for p in z.uid("FETCH", "1:4294967295", "(BODY.PEEK[])")[1] if isinstance(p, tuple)]
            out["search"] = z.uid("SEARCH", "SUBJECT", f'"secret of li {tag}"')[1]
            out["append pool"] = z.append("Pool", None, None, b"Subject: x\r\n\r\nx\r\n")[0]
        return out

    found = await asyncio.to_thread(attacks)
    for key, value in found.items():
        if key.startswith(("select", "status", "append")):
            assert value in ("NO", "BAD"), (key, value)
    assert found["list *"] == []
    assert b"Max" not in found["list pattern"]
    assert not any(f"secret of li {tag}".encode() in body for body in found["uid fetch all"])
    assert found["search"] == [b""]


async def test_drafts_take_appends_and_sent_is_filed_by_the_gateway(world):
    def run() -> tuple[str, str, list[str], str]:
        with imaps(world) as z:
            typ, data = z.append("Drafts", "(\\Draft)", None, b"Subject: draft one\r\nTo: eva@buyer.test\r\n\r\nHi\r\n")
            sent = z.append("Sent", None, None, b"Subject: copy\r\n\r\nx\r\n")[0]
            drafts = subjects(z, "Drafts")
            refused = z.append('"Customers/Acme Lighting GmbH"', None, None, b"Subject: x\r\n\r\nx\r\n")[0]
            return typ, data[0].decode(), drafts, sent + refused

    typ, text, drafts, others = await asyncio.to_thread(run)
    assert typ == "OK" and "APPENDUID" in text
    assert drafts == ["draft one"]
    assert others == "OKNO"


async def test_a_bulk_download_is_an_audit_event(world, own_upstream):
    tag = uuid.uuid4().hex[:6]
    for i in range(4):
        await deliver(own_upstream, "eva@buyer.test", f"bulk {i} {tag}")
    await wait_for_mail(world.store, f"bulk 3 {tag}")

    def fetch_all() -> None:
        with imaps(world) as z:
            z.select("INBOX", readonly=True)
            z.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")  # a listing: not counted
            assert not events()
            z.fetch("1:*", "(BODY.PEEK[])")

    def events() -> list[str]:
        with Session(world.store.engine) as s:
            return list(s.exec(select(AuditEvent.actor).where(AuditEvent.action == "imap.bulk_download")).all())

    await asyncio.to_thread(fetch_all)
    found = events()
    assert found == ["zhang"]


async def test_a_client_opening_many_connections_at_once_is_not_locked_out(world):
    # Thunderbird opens several connections at once, each logging in; counted as attempts of
    # their own before any is checked, they took the login past [auth] max_failures (6 here).
    def login() -> str:
        with imaps(world, None) as c:
            return c.login("zhang", PASSWORDS["zhang"])[0]

    # Threads of their own: the gateway's store calls use the loop's default executor.
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(12) as clients:
        results = await asyncio.gather(*(loop.run_in_executor(clients, login) for _ in range(12)))
    assert results == ["OK"] * 12
