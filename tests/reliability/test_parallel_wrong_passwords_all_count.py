"""Failed-login throttling cannot be raced: attempts made at once, on many connections, from one
address or from many, through one gateway or two sharing a PostgreSQL store, each count; only
``max_failures`` passwords are ever checked, and the right one is then refused too."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from contextlib import AsyncExitStack

import pytest
from mailwarden.gateway.server import Gateway
from mailwarden.store import open_store
from mailwarden.store.models import AuditEvent
from sqlmodel import Session, select

from tests.integration.conftest import PASSWORDS, gateway_config, running_gateway, seed
from tests.reliability.aclient import login_attempt

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

MAX = 6  # [auth] max_failures in the test gateways' config
ATTEMPTS = 100
# The attempts are made at once: the bound on connections not logged in per address must not
# turn them away before they are counted (that bound is tested on its own).
ROOMY = {"max_connections_per_address": 2 * ATTEMPTS}


def verdicts(replies: list[str]) -> Counter[str]:
    return Counter(r[:3] for r in replies)


def checked_failures(store, login: str) -> int:  # type: ignore[no-untyped-def]
    with Session(store.engine) as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.action == "auth.failed", AuditEvent.actor == login)).all()
    return sum(1 for e in rows if not json.loads(e.detail)["locked"])


async def test_parallel_wrong_passwords_from_one_address_all_count(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, listen=ROOMY) as gw:
        tls = gw.tls()
        replies = await asyncio.gather(*(login_attempt(gw.smtp_port, tls, "zhang", f"guess-{i}")
                                         for i in range(ATTEMPTS)))
        assert verdicts(replies) == {"535": MAX, "454": ATTEMPTS - MAX}, replies
        assert checked_failures(gw.store, "zhang") == MAX
        assert (await login_attempt(gw.smtp_port, tls, "zhang", PASSWORDS["zhang"])).startswith("454")
        # The reply says it once, with the wait (it used to say "Too many failed logins" twice).
        locked = next(r for r in replies if r.startswith("454"))
        assert locked.lower().count("too many failed logins") == 1 and "try again in" in locked
        # Someone else behind the same address (one office, one NAT address) still logs in.
        assert (await login_attempt(gw.smtp_port, tls, "li", PASSWORDS["li"])).startswith("235")


async def test_parallel_wrong_passwords_from_many_addresses_all_count(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, listen=ROOMY) as gw:
        bound = gw.cfg.auth.max_failures_login
        assert bound < ATTEMPTS
        replies = await asyncio.gather(*(login_attempt(gw.smtp_port, gw.tls(), "li", f"guess-{i}",
                                                       source=f"127.0.{1 + i // 200}.{2 + i % 200}")
                                         for i in range(ATTEMPTS)))
        assert verdicts(replies) == {"535": bound, "454": ATTEMPTS - bound}, replies
        assert checked_failures(gw.store, "li") == bound
        right = await login_attempt(gw.smtp_port, gw.tls(), "li", PASSWORDS["li"], source="127.0.9.9")
        assert right.startswith("454") and "login" in right


@pytest.mark.postgres
async def test_parallel_wrong_passwords_through_two_gateways_on_one_store_all_count(upstream, tmp_path,
                                                                                    pg_database):
    async with AsyncExitStack() as stack:
        gateways = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            cfg = gateway_config(tmp_path / name, upstream, listen=ROOMY)
            cfg = dataclasses.replace(cfg, store=dataclasses.replace(cfg.store, url=pg_database))
            store = open_store(cfg.store)
            stack.callback(store.close)
            if name == "a":
                seed(store)
            gw = Gateway(cfg, store)
            await gw.start()
            stack.push_async_callback(gw.stop)
            gateways.append((gw, cfg))
        tls = [__import__("ssl").create_default_context(cafile=str(cfg.listen.tls_cert)) for _, cfg in gateways]
        replies = await asyncio.gather(*(login_attempt(gateways[i % 2][0].bound["smtp"].port, tls[i % 2], "zhang",
                                                       f"guess-{i}") for i in range(ATTEMPTS)))
        assert verdicts(replies) == {"535": MAX, "454": ATTEMPTS - MAX}, replies
        for (gw, _), ctx in zip(gateways, tls):
            assert (await login_attempt(gw.bound["smtp"].port, ctx, "zhang", PASSWORDS["zhang"])).startswith("454")
