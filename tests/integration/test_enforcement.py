"""Compliance rules in the SMTP path: block, quarantine, warn, redact, audit mode — against the real upstream."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json

import pytest
from mailwarden.cli.app import app
from mailwarden.store.models import AuditEvent, Message, SpoolItem
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from tests.integration.conftest import SHARED, message, running_gateway, send_one, token

pytestmark = pytest.mark.integration



def actions(gw) -> list[str]:
    with Session(gw.store.engine) as s:
        return [e.action for e in s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()]


def cli(gw, *args: str):
    cfg_path = gw.cfg.path
    cfg_path.write_text(_toml(gw))  # the CLI reads the same store as the running gateway
    return CliRunner().invoke(app, ["--config", str(cfg_path), *args])


def _toml(gw) -> str:
    up = gw.cfg.upstream
    return (f'[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
            f'[upstream]\nimap = "{up.imap}"\nsmtp = "{up.smtp}"\nusername = "{up.username}"\n'
            f'password_file = "upstream.password"\nca_file = "{up.ca_file}"\n[store]\ndata_dir = "data"\n')


async def test_private_wechat_is_blocked_with_a_readable_reason_and_nothing_spooled(gateway):
    code, reply = await asyncio.to_thread(send_one, gateway, message("Quote", body="Add me on WeChat: zhang_private88\r\n"))
    assert code == 550
    text = reply.decode()
    assert text.startswith("5.7.1") and "PRIVATE_WECHAT" in text and "zhang_private88" in text
    with Session(gateway.store.engine) as s:
        assert s.exec(select(SpoolItem)).all() == [] and s.exec(select(Message)).all() == []
    assert list(gateway.store.spool_dir.iterdir()) == []
    blocked = [a for a in actions(gateway) if a == "send.blocked"]
    assert blocked == ["send.blocked"]


async def test_company_phone_and_handle_never_trigger(gateway):
    t = token()
    body = ("Best regards,\r\nZhang San\r\nTel: +86 574 8888 0000\r\nWeChat: BrightLightingCN\r\n")
    code, reply = await asyncio.to_thread(send_one, gateway, message(f"Official {t}", body=body))
    assert code == 250 and b"Queued" in reply
    await asyncio.to_thread(gateway.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())


async def test_customers_own_phone_in_quoted_history_never_triggers(gateway):
    t = token()
    body = ("Dear Max, the price is fine.\r\n\r\nOn Mon, 3 Nov 2025 at 10:00, Max <max@buyer.test> wrote:\r\n"
            "> Please call me on my mobile +49 151 2345 6789 or WhatsApp.\r\n> Max\r\n")
    code, reply = await asyncio.to_thread(send_one, gateway, message(f"Re: price {t}", body=body))
    assert code == 250 and b"Queued" in reply, reply


async def test_quarantined_mail_is_delivered_exactly_once_on_release(gateway):
    t = token()
    body = "我们成立了新公司，以后私下合作吧。\r\n"
    code, reply = await asyncio.to_thread(send_one, gateway, message(f"Held {t}", body=body))
    assert code == 250 and b"Held for review" in reply
    msg_id = int(reply.split(b"Held for review as ")[1].split(b":")[0])
    notice = await asyncio.to_thread(gateway.upstream.wait_for, SHARED, 1, containing=b"X-Mailwarden-Notice: quarantine")
    assert "$mw_op_zhang" in notice[-1].flags
    await asyncio.sleep(1)
    assert not [m for m in await asyncio.to_thread(gateway.upstream.fetch_all, "catchall@buyer.test") if t.encode() in m.raw]
    listed = await asyncio.to_thread(cli, gateway, "quarantine", "list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["id"] for r in rows] == [msg_id] and rows[0]["findings"][0]["rule"] == "DIVERT_BUSINESS"
    r = await asyncio.to_thread(cli, gateway, "quarantine", "release", str(msg_id), "--note", "checked")
    assert r.exit_code == 0, r.output
    gateway.gw.relay.wake()
    got = await asyncio.to_thread(gateway.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
    await asyncio.sleep(1.5)
    got = [m for m in await asyncio.to_thread(gateway.upstream.fetch_all, "catchall@buyer.test") if t.encode() in m.raw]
    assert len(got) == 1
    r = await asyncio.to_thread(cli, gateway, "quarantine", "release", str(msg_id))
    assert r.exit_code == 2 and "no held message" in r.output
    assert "quarantine.release" in actions(gateway)


async def test_rejected_mail_is_never_sent_and_the_sender_is_told(gateway):
    t = token()
    code, reply = await asyncio.to_thread(send_one, gateway, message(f"Reject {t}", body="我们成立了新公司。\r\n"))
    msg_id = int(reply.split(b"Held for review as ")[1].split(b":")[0])
    r = await asyncio.to_thread(cli, gateway, "quarantine", "reject", str(msg_id), "--reason", f"no side deals {t}")
    assert r.exit_code == 0, r.output
    gateway.gw.relay.wake()
    [notice] = await asyncio.to_thread(gateway.upstream.wait_for, SHARED, 1, timeout=20,
                                       containing=f"X-Mailwarden-Notice: rejected; ref={msg_id}; for=".encode())
    text_ = email.message_from_bytes(notice.raw, policy=email.policy.default).get_content()
    assert f"will not be sent.\nReason: no side deals {t}" in text_ and "max@buyer.test" in text_
    with Session(gateway.store.engine) as s:
        assert s.get(Message, msg_id).status == "rejected"
    assert not [m for m in await asyncio.to_thread(gateway.upstream.fetch_all, "catchall@buyer.test") if t.encode() in m.raw]


async def test_supervisor_sees_only_their_team(gateway):
    from mailwarden.store.directory import add_user

    with Session(gateway.store.engine) as s:
        add_user(session=s, login="wang", name="Wang", password="wang-password", role="supervisor", team="eu")
        s.commit()
    await asyncio.to_thread(send_one, gateway, message("side deal", body="私下合作\r\n"))
    r = await asyncio.to_thread(cli, gateway, "quarantine", "list", "--by", "wang", "--json")
    assert r.exit_code == 0 and r.stdout == ""
    r = await asyncio.to_thread(cli, gateway, "quarantine", "list", "--by", "zhang")
    assert r.exit_code == 2 and "not an enabled supervisor" in r.output


async def test_warn_delivers_and_tells_the_sender(gateway):
    t = token()
    code, reply = await asyncio.to_thread(send_one, gateway, message(f"Warn {t}", body="My number is 13912345678.\r\n"))
    assert code == 250 and b"Queued" in reply
    await asyncio.to_thread(gateway.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
    await asyncio.to_thread(gateway.upstream.wait_for, SHARED, 1, containing=b"X-Mailwarden-Notice: warn")
    assert "rules.warn" in actions(gateway)


async def test_redact_replaces_the_match_and_keeps_the_original(upstream, tmp_path):
    pack = tmp_path / "site.toml"
    pack.write_text('[[rule]]\nid = "PRIVATE_PHONE"\naction = "redact"\n'
                    '[[rule]]\nid = "PRIVATE_PHONE_HINTED"\naction = "redact"\n')
    async with running_gateway(upstream, tmp_path, rules={"packs": [str(pack)]}) as gw:
        t = token()
        code, _ = await asyncio.to_thread(send_one, gw, message(f"Redact {t}", body="Call 13912345678 any time.\r\n"))
        assert code == 250
        got = await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
        m = email.message_from_bytes(got[0].raw, policy=email.policy.default)
        assert "13912345678" not in m.get_body().get_content()
        originals = list((gw.store.data_dir / "originals").iterdir())
        assert len(originals) == 1 and b"13912345678" in originals[0].read_bytes()
        assert "rules.redact" in actions(gw)


async def test_audit_mode_records_but_does_not_enforce(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, rules={"mode": "audit"}) as gw:
        t = token()
        code, reply = await asyncio.to_thread(send_one, gw, message(f"Audit {t}", body="WeChat: zhang_private88\r\n"))
        assert code == 250 and b"Queued" in reply
        await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
        with Session(gw.store.engine) as s:
            ev = s.exec(select(AuditEvent).where(col(AuditEvent.action).startswith("rules."))).one()
        detail = json.loads(ev.detail)
        assert detail["decided"] == "block" and detail["mode"] == "audit"


async def test_quarantine_timeout_rejects(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, rules={"quarantine_timeout": "1s"}) as gw:
        code, reply = await asyncio.to_thread(send_one, gw, message("slow review", body="私下合作\r\n"))
        msg_id = int(reply.split(b"Held for review as ")[1].split(b":")[0])
        for _ in range(100):
            with Session(gw.store.engine) as s:
                if s.get(Message, msg_id).status == "rejected":
                    break
            gw.gw.relay._next_expiry_check = 0
            gw.gw.relay.wake()
            await asyncio.sleep(0.1)
        with Session(gw.store.engine) as s:
            assert s.get(Message, msg_id).status == "rejected"
