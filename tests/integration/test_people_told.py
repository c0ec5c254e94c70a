"""People are told: refusals in the sender's language (``user edit --lang``, default ``[rules]
language``), a message too big refused in it and audited, a released message notifies its sender."""

from __future__ import annotations

import asyncio
import time
import email
import email.policy
import json
import re
import smtplib

import pytest
from mailwarden.store.directory import edit_user
from mailwarden.store.models import AuditEvent
from sqlmodel import Session, col, select

from tests.integration.conftest import SHARED, message, running_gateway, send_one, token
from tests.integration.test_enforcement import cli

pytestmark = pytest.mark.integration
CJK = re.compile(r"[\u4e00-\u9fff]")


def set_lang(gw, login: str, lang: str) -> None:  # type: ignore[no-untyped-def]
    with Session(gw.store.engine) as s:
        edit_user(session=s, login=login, lang=lang)
        s.commit()


async def test_refusals_are_in_the_senders_language(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, rules={"language": "zh"}) as gw:
        set_lang(gw, "zhang", "en")  # li has none: the config's Chinese
        wechat = message("Quote", body="Add me on WeChat: zhang_private88\r\n")
        code, reply = await asyncio.to_thread(send_one, gw, wechat, login="zhang")
        text = reply.decode()
        assert code == 550 and "Blocked by rule PRIVATE_WECHAT" in text and "zhang_private88" in text
        assert not CJK.search(text), text  # no Chinese inside the English reply
        code, reply = await asyncio.to_thread(send_one, gw, wechat, login="li")
        text = reply.decode()
        assert code == 550 and "规则 PRIVATE_WECHAT" in text and "zhang_private88" in text
        assert "Blocked" not in text and "rule" not in text

        held = message("Held", body="我们成立了新公司，以后私下合作吧。\r\n")
        code, reply = await asyncio.to_thread(send_one, gw, held, login="zhang")
        assert code == 250 and reply.startswith(b"2.0.0 Held for review as ") and not CJK.search(reply.decode())
        code, reply = await asyncio.to_thread(send_one, gw, held, login="li")
        assert code == 250 and "需主管审核" in reply.decode() and "review" not in reply.decode()


async def test_too_big_is_refused_in_the_senders_language_and_audited(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, max_message_size=20_000) as gw:
        set_lang(gw, "li", "zh")
        big = message("big", body=("y" * 76 + "\r\n") * 400)

        def go(login: str) -> tuple[int, bytes]:
            with gw.client(login) as c:
                c.mail("z@x.example")
                c.rcpt("max@buyer.test")
                try:
                    return c.data(big)
                except smtplib.SMTPDataError as exc:
                    return exc.smtp_code, exc.smtp_error

        code, reply = await asyncio.to_thread(go, "li")
        assert code == 552 and "大小上限" in reply.decode() and "larger" not in reply.decode()
        code, reply = await asyncio.to_thread(go, "zhang")
        assert code == 552 and b"larger than the" in reply and not CJK.search(reply.decode())
        with Session(gw.store.engine) as s:
            refused = s.exec(select(AuditEvent).where(AuditEvent.action == "send.refused")
                             .order_by(col(AuditEvent.seq))).all()
        assert [e.actor for e in refused] == ["li", "zhang"]
        detail = json.loads(refused[0].detail)
        assert detail["size_limit"] == 20_000 and detail["rcpts"] == ["max@buyer.test"]
        assert detail["reason"].startswith("552 5.3.4 ")


async def test_a_released_message_notifies_its_sender(gateway):
    t = token()
    code, reply = await asyncio.to_thread(send_one, gateway, message(f"Held {t}", body="我们成立了新公司。\r\n"))
    msg_id = int(reply.split(b"Held for review as ")[1].split(b":")[0])
    r = await asyncio.to_thread(cli, gateway, "quarantine", "release", str(msg_id), "--reason", f"a real order {t}")
    assert r.exit_code == 0 and "zhang will be told" in r.output, r.output
    gateway.gw.relay.wake()
    header = f"X-Mailwarden-Notice: released; ref={msg_id}; for=zhang".encode()

    def ours() -> tuple[object, str]:
        # Other tests' gateways share the upstream mailbox and number their held mail from 1
        # too: the notice is the one whose text carries this release's reason.
        deadline = time.monotonic() + 20
        while True:
            for m in gateway.upstream.wait_for(SHARED, 1, timeout=20, containing=header):
                text = email.message_from_bytes(m.raw, policy=email.policy.default).get_content()
                if f"a real order {t}" in text:
                    return m, text
            if time.monotonic() > deadline:
                raise TimeoutError(f"no released notice with the reason of {t}")
            time.sleep(0.2)

    notice, text = await asyncio.to_thread(ours)
    assert "$mw_op_zhang" in notice.flags  # type: ignore[attr-defined]
    assert "to max@buyer.test was released by" in text and f"Note: a real order {t}" in text
    await asyncio.to_thread(gateway.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
