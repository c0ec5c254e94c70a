"""Bad input gets a clear answer or a safe delivery, and the gateway keeps serving everyone else."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib

import pytest
from mailwarden.store.models import Customer
from mailwarden.store.quarantine import list_held
from sqlmodel import Session

from tests.integration.conftest import SHARED, message, send_one, token

pytestmark = pytest.mark.integration



async def still_serving(gw) -> None:
    t = token()
    code, _ = await asyncio.to_thread(send_one, gw, message(f"still here {t}"))
    assert code == 250
    await asyncio.to_thread(gw.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())


async def test_message_without_headers_is_delivered_safely(gateway):
    t = token()
    code, reply = await asyncio.to_thread(send_one, gateway, f"no headers at all {t}\r\nsecond line\r\n".encode())
    assert code == 250, reply
    got = await asyncio.to_thread(gateway.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
    m = email.message_from_bytes(got[0].raw, policy=email.policy.default)
    assert m["From"].addresses[0].addr_spec == SHARED and m["Message-ID"]
    await still_serving(gateway)


async def test_eight_bit_garbage_is_held_for_a_human(gateway):
    """Text in no known charset cannot be checked: it is quarantined, never passed unchecked or lost."""
    t = token()
    junk = b"Subject: \xff\xfe\x80\x81 " + t.encode() + b"\r\nX-Bin: \x01\x02\x7f\r\n\r\n" + (bytes(range(128, 256)) + b"\r\n") * 20
    code, reply = await asyncio.to_thread(send_one, gateway, junk)
    assert code == 250 and b"Held for review" in reply, reply
    with Session(gateway.store.engine) as s:
        held = list_held(session=s)
    assert len(held) == 1 and held[0].findings[0]["rule"] == "ATTACHMENT_UNDECODABLE"
    await still_serving(gateway)


async def test_two_megabyte_line_is_refused_clearly(gateway):
    payload = message("long line", body="x" * (2 * 1024 * 1024) + "\r\n")
    code, reply = await asyncio.to_thread(send_one, gateway, payload)
    assert code == 552 and b"longer than 1000 characters" in reply
    await still_serving(gateway)


async def test_over_size_limit_is_refused_clearly(gateway):
    limit = gateway.cfg.outbound.max_message_size
    payload = message("too big", body=("y" * 76 + "\r\n") * (limit // 78 + 10))

    def go():
        with gateway.client("zhang") as c:
            return c.sendmail("z@x.example", ["max@buyer.test"], payload)

    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused)) as exc:
        await asyncio.to_thread(go)
    assert exc.value.smtp_code == 552
    await still_serving(gateway)


async def test_line_breaks_in_names_cannot_inject_headers(gateway):
    """A customer name with CR/LF (say, from an old import) must not become a header in the Sent copy."""
    with Session(gateway.store.engine) as s:
        c = s.get(Customer, 1)
        assert c is not None
        c.name = "Acme\r\nBcc: spy@evil.example"
        s.add(c)
        s.commit()
    t = token()
    code, _ = await asyncio.to_thread(send_one, gateway, message(f"inject {t}"))
    assert code == 250
    sent = await asyncio.to_thread(gateway.upstream.wait_for, SHARED, 1, "Sent", containing=t.encode())
    m = email.message_from_bytes(sent[0].raw, policy=email.policy.default)
    assert m["Bcc"] is None
    assert "spy@evil.example" in m["X-Mailwarden-Customer"]  # kept as text inside the one header
    # and the envelope never grew a recipient
    got = await asyncio.to_thread(gateway.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
    assert len(got) == 1


async def test_bad_recipient_syntax_and_too_many_recipients(gateway):
    def go():
        with gateway.client("zhang") as c:
            c.mail("z@x.example")
            bad = c.docmd("RCPT", "TO:<no-at-sign>")
            c.send("RCPT TO:<销售@公司.中国>\r\n".encode())  # smtplib's docmd speaks ASCII only
            utf8 = c.getreply()
            codes = [c.rcpt(f"r{i}@buyer.test")[0] for i in range(101)]
            return bad, utf8, codes

    bad, utf8, codes = await asyncio.to_thread(go)
    assert bad[0] in (501, 553)
    assert utf8[0] in (553, 501), utf8  # refused at once, never queued to fail in the relay
    assert codes[:100] == [250] * 100 and codes[100] == 452
