"""Four eyes: a supervisor whose own message was held cannot release it; another supervisor of
the team or an admin can, and an admin releasing their own is audited as such."""

from __future__ import annotations

import asyncio
import json

import pytest
from mailwarden.store.directory import add_user
from mailwarden.store.models import AuditEvent
from sqlmodel import Session, select

from tests.integration.conftest import message, running_gateway, token
from tests.integration.test_enforcement import cli

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

HELD_BODY = "我们成立了新公司，以后私下合作吧。\r\n"


def held(gw, login: str, password: str) -> int:  # type: ignore[no-untyped-def]
    with gw.client(login, password) as c:
        c.mail("x@x.example")
        c.rcpt("max@buyer.test")
        code, reply = c.data(message(f"Held {token()}", body=HELD_BODY))
    assert code == 250 and b"Held for review" in reply
    return int(reply.split(b"Held for review as ")[1].split(b":")[0])


async def test_own_held_mail_needs_four_eyes(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path) as gw:
        with Session(gw.store.engine) as s:
            add_user(session=s, login="wang", name="Wang Wu", password="wang-password", role="supervisor", team="export")
            add_user(session=s, login="zhao", name="Zhao Liu", password="zhao-password", role="supervisor", team="export")
            add_user(session=s, login="boss", name="The Boss", password="boss-password", role="admin")
            s.commit()
        own = await asyncio.to_thread(held, gw, "wang", "wang-password")
        r = await asyncio.to_thread(cli, gw, "quarantine", "release", str(own), "--by", "wang")
        assert r.exit_code == 2 and "is your own" in r.output, r.output
        r = await asyncio.to_thread(cli, gw, "quarantine", "release", str(own), "--by", "zhao")
        assert r.exit_code == 0, r.output

        boss = await asyncio.to_thread(held, gw, "boss", "boss-password")
        r = await asyncio.to_thread(cli, gw, "quarantine", "release", str(boss), "--by", "boss")
        assert r.exit_code == 0, r.output
        with Session(gw.store.engine) as s:
            releases = s.exec(select(AuditEvent).where(AuditEvent.action == "quarantine.release")).all()
        detail = {e.actor: json.loads(e.detail) for e in releases}
        assert set(detail) == {"zhao", "boss"}
        assert detail["boss"]["own_message"] is True and "own_message" not in detail["zhao"]
