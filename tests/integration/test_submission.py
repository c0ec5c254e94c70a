"""Outbound mail through the gateway, against the real Dovecot + Postfix upstream."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import os
import shutil
import smtplib
import subprocess

import pytest
from mailwarden.store.directory import set_enabled
from mailwarden.store.models import AuditEvent, Customer, Message
from sqlmodel import Session, select

from tests.integration.conftest import PASSWORDS, SHARED, message, token

pytestmark = pytest.mark.integration


def events(gw, action: str) -> list[AuditEvent]:
    with Session(gw.store.engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


async def send(gw, raw: bytes, rcpts=("max@buyer.test",), login="zhang"):
    def go():
        with gw.client(login) as c:
            return c.sendmail("zhang@whatever.example", list(rcpts), raw)

    return await asyncio.to_thread(go)


async def test_quote_reaches_customer_from_shared_mailbox_with_tagged_sent_copy(gateway):
    t = token()
    await send(gateway, message(f"Quote {t}"))
    got = await asyncio.to_thread(gateway.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
    m = email.message_from_bytes(got[0].raw, policy=email.policy.default)
    assert m["From"].addresses[0].addr_spec == SHARED
    assert m["From"].addresses[0].display_name == "Zhang San | Bright Lighting"
    # the tags are for the company, not for the customer (expose_headers is off)
    assert m["X-Mailwarden-Operator"] is None and m["X-Mailwarden-Loop"] is not None
    body = m.get_body(("plain",)).get_content()
    assert "Please find our quote below." in body and "\n-- \n" in body.replace("\r\n", "\n")
    assert body.index("Please find") < body.index("Zhang San")  # the company signature, under the new text
    sent = await asyncio.to_thread(gateway.upstream.wait_for, SHARED, 1, "Sent", containing=t.encode())
    with Session(gateway.store.engine) as s:
        acme = s.exec(select(Customer).where(Customer.name == "Acme Lighting GmbH")).one()
        msg = s.exec(select(Message).where(Message.subject == f"Quote {t}")).one()
        for _ in range(50):
            s.refresh(msg)
            if msg.status == "delivered":
                break
            await asyncio.sleep(0.1)
    assert {"\\Seen", "$mw_op_zhang", f"$mw_cust_{acme.id}"} <= set(sent[0].flags)
    copy = email.message_from_bytes(sent[0].raw, policy=email.policy.default)
    assert copy["X-Mailwarden-Operator"] == "zhang (Zhang San)"
    assert copy["X-Mailwarden-Customer"] == f"{acme.id} Acme Lighting GmbH"
    assert msg.status == "delivered" and msg.customer_id == acme.id and msg.operator_id is not None
    assert json.loads(msg.recipients) == ["max@buyer.test"]
    assert [e.actor for e in events(gateway, "auth.login")] == ["zhang"]
    assert any(json.loads(e.detail)["message"] == msg.id for e in events(gateway, "send.delivered"))
    assert gateway.store.audit.verify().ok


async def test_implicit_tls_port_works(gateway):
    t = token()

    def go():
        with smtplib.SMTP_SSL("localhost", gateway.smtps_port, context=gateway.tls(), timeout=30) as c:
            c.login("li", PASSWORDS["li"])
            c.sendmail("li@x.example", ["max@customer.test"], message(f"Implicit {t}", to="max@customer.test"))

    await asyncio.to_thread(go)
    got = await asyncio.to_thread(gateway.upstream.wait_for, "catchall@customer.test", 1, containing=t.encode())
    assert b"Li Si | Bright Lighting" in got[0].raw


async def test_unknown_recipient_becomes_operators_customer(gateway):
    t = token()
    await send(gateway, message(f"New {t}", to="buyer@example.com"), rcpts=("buyer@example.com",))
    with Session(gateway.store.engine) as s:
        c = s.exec(select(Customer).where(Customer.name == "example.com")).one()
        assert c.owner_id is not None
    assert [e.target for e in events(gateway, "customer.created")] == ["example.com"]


async def test_auth_not_offered_before_starttls_and_no_relay_without_auth(gateway):
    def go():
        with smtplib.SMTP("localhost", gateway.smtp_port, timeout=30) as c:
            c.ehlo()
            assert not c.has_extn("auth")
            assert c.has_extn("starttls")
            code, _ = c.docmd("AUTH", "PLAIN AHphYW5nAHphYW5nLXBhc3N3b3Jk")
            assert code in (530, 538)
            code, _ = c.docmd("MAIL", "FROM:<x@evil.example>")
            assert code == 530
            c.starttls(context=gateway.tls())
            c.ehlo()
            assert c.has_extn("auth")
            code, _ = c.docmd("MAIL", "FROM:<x@evil.example>")
            assert code == 530  # TLS alone is not enough: no relay without AUTH

    await asyncio.to_thread(go)


async def test_wrong_password_is_refused_audited_and_throttled(gateway):
    def attempt():
        with smtplib.SMTP("localhost", gateway.smtp_port, timeout=30) as c:
            c.starttls(context=gateway.tls())
            c.ehlo()
            code, _ = c.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0zhang\0wrong-password").decode())
            return code

    results = [await asyncio.to_thread(attempt) for _ in range(7)]
    codes = results
    assert codes[:5] == [535] * 5
    assert codes[-1] == 454  # locked out: even the right password is refused for a while
    failed = events(gateway, "auth.failed")
    assert len(failed) == 7 and all(e.actor == "zhang" for e in failed)
    with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
        await asyncio.to_thread(gateway.client, "zhang")
    assert exc.value.smtp_code == 454
    # another user from the same address is locked out too: throttling is per address as well
    assert "wrong-password" not in json.dumps([e.detail for e in failed])


async def test_disabled_user_session_is_closed_and_next_login_fails(gateway):
    client = await asyncio.to_thread(gateway.client, "zhang")
    try:
        with Session(gateway.store.engine) as s:
            set_enabled(session=s, login="zhang", enabled=False)
            s.commit()
        await asyncio.sleep(2.5)  # the watcher polls every second

        def try_send():
            client.sendmail("z@x.example", ["max@buyer.test"], message("after disable"))

        with pytest.raises((smtplib.SMTPServerDisconnected, smtplib.SMTPSenderRefused, smtplib.SMTPResponseException)):
            await asyncio.to_thread(try_send)
    finally:
        client.close()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        await asyncio.to_thread(gateway.client, "zhang")
    with Session(gateway.store.engine) as s:
        assert s.exec(select(Message).where(Message.subject == "after disable")).first() is None


async def test_one_wrong_password_tried_with_each_mechanism_counts_once(gateway):
    """smtplib's login() tries PLAIN, then LOGIN, with the same wrong password: one mistake."""
    before = len(events(gateway, "auth.failed"))
    with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
        await asyncio.to_thread(gateway.client, "li", "not-his-password")
    assert exc.value.smtp_code == 535
    assert len(events(gateway, "auth.failed")) == before + 1


async def test_disabled_user_cannot_log_in_even_a_moment_later(gateway):
    """The login is cached (no argon2 for the next one), yet right after the disable, before
    the watcher's next round, the next login fails (with the answer a wrong password gets: no
    hint that the password was right; the audit event says "disabled")."""
    (await asyncio.to_thread(gateway.client, "li")).close()  # a good login, now cached
    logins = len([e for e in events(gateway, "auth.login") if e.actor == "li"])
    with Session(gateway.store.engine) as s:
        set_enabled(session=s, login="li", enabled=False)
        s.commit()
    try:
        with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
            (await asyncio.to_thread(gateway.client, "li")).close()
        assert exc.value.smtp_code == 535 and b"Login or password wrong" in exc.value.smtp_error
        assert json.loads(events(gateway, "auth.failed")[-1].detail)["reason"] == "disabled"
    finally:
        with Session(gateway.store.engine) as s:
            set_enabled(session=s, login="li", enabled=True)
            s.commit()
    assert len([e for e in events(gateway, "auth.login") if e.actor == "li"]) == logins


async def test_re_enabled_user_gets_in_on_the_same_connection(gateway):
    """A refusal is remembered for the one retry a client makes at once with the next
    mechanism, not for the connection: once the account is enabled again, it gets in."""
    with Session(gateway.store.engine) as s:
        set_enabled(session=s, login="li", enabled=False)
        s.commit()
    c = await asyncio.to_thread(gateway.client, None)
    try:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            await asyncio.to_thread(c.login, "li", PASSWORDS["li"])  # PLAIN, then LOGIN
        with Session(gateway.store.engine) as s:
            set_enabled(session=s, login="li", enabled=True)
            s.commit()
        code, _ = await asyncio.to_thread(c.login, "li", PASSWORDS["li"])
        assert code == 235
    finally:
        await asyncio.to_thread(c.close)


async def test_an_internal_error_is_a_451_that_names_nothing(gateway, monkeypatch):
    async def broken(login, password, ip):  # type: ignore[no-untyped-def]
        raise RuntimeError("cannot reach db.internal.example:5432")

    monkeypatch.setattr(gateway.gw.auth, "check", broken)
    c = await asyncio.to_thread(gateway.client, None)
    try:
        await asyncio.to_thread(c.ehlo)
        code, text = await asyncio.to_thread(c.docmd, "AUTH", "PLAIN " + base64.b64encode(b"\0zhang\0x").decode())
    finally:
        await asyncio.to_thread(c.close)
    assert code == 451 and b"db.internal" not in text


async def test_permanent_refusal_bounces_to_operator(gateway):
    t = token()
    await send(gateway, message(f"Bounce {t}", to="nobody@unroutable.example"), rcpts=("nobody@unroutable.example",))
    got = await asyncio.to_thread(gateway.upstream.wait_for, SHARED, 1, containing=f"Bounce {t}".encode())
    bounce = email.message_from_bytes(got[0].raw, policy=email.policy.default)
    assert bounce.get_content_type() == "multipart/report"
    assert "$mw_op_zhang" in got[0].flags
    text = bounce.get_body(("plain",)).get_content()
    assert "nobody@unroutable.example" in text and "550" in text
    with Session(gateway.store.engine) as s:
        msg = s.exec(select(Message).where(Message.subject == f"Bounce {t}")).one()
        assert msg.status == "bounced"
    assert events(gateway, "send.bounced")


@pytest.mark.skipif(shutil.which("swaks") is None and os.environ.get("CI") != "true", reason="swaks not installed")
async def test_swaks_as_a_real_client(gateway):
    """swaks, a real SMTP client: STARTTLS, AUTH LOGIN, and the readable refusal of a private WeChat ID."""
    t = token()

    def swaks(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["swaks", "--server", f"localhost:{gateway.smtp_port}", "--tls", "--auth", "LOGIN",
             "--auth-user", "zhang", "--auth-password", PASSWORDS["zhang"], "--from", "zhang@company.test",
             "--to", "max@buyer.test", *extra],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    ok = await asyncio.to_thread(swaks, "--header", f"Subject: swaks {t}", "--body", "Our price list is attached.")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "<~  250 2.0.0 Queued as" in ok.stdout
    await asyncio.to_thread(gateway.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
    refused = await asyncio.to_thread(swaks, "--header", "Subject: contact", "--body", "WeChat: zhang_private88")
    assert refused.returncode != 0
    assert "550 5.7.1" in refused.stdout and "zhang_private88" in refused.stdout


async def test_expose_headers_sends_the_tags_to_the_customer_too(upstream, tmp_path):
    from tests.integration.conftest import running_gateway

    async with running_gateway(upstream, tmp_path, expose_headers=True) as gw:
        t = token()
        await send(gw, message(f"Exposed {t}"))
        got = await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
        m = email.message_from_bytes(got[0].raw, policy=email.policy.default)
        assert m["X-Mailwarden-Operator"] == "zhang (Zhang San)"
