"""Connections are bounded: a thousand idle connections, from one address and from many, cannot
use up the gateway's descriptors nor keep a salesperson out, and do not flood the log; a
connection that keeps the line busy with NOOPs but never logs in is closed."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.integration.conftest import message, running_gateway, send_one, token
from tests.reliability.aclient import AsyncSmtp

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

IDLE = 1000
TOTAL = 300       # [listen] max_connections for the test (the derived bound is tested in gateway/)
PER_ADDRESS = 20  # [listen] max_connections_per_address
CROWD = "127.0.5.5"  # one address with many idle connections


async def _idle(port: int, source: str) -> tuple[AsyncSmtp, str]:
    c = await AsyncSmtp.connect(port, source)
    return c, await asyncio.wait_for(c.reply(), 30)


async def test_idle_connections_do_not_starve_senders(upstream, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mailwarden")
    async with running_gateway(upstream, tmp_path, listen={"max_connections": TOTAL,
                                                            "max_connections_per_address": PER_ADDRESS}) as gw:
        early = await asyncio.to_thread(gw.client, "zhang")  # logged in before the flood
        idle: list[AsyncSmtp] = []
        try:
            sources = [CROWD if i % 2 else f"127.0.6.{1 + i % 250}" for i in range(IDLE)]
            for start in range(0, IDLE, 100):
                batch = await asyncio.gather(*(_idle(gw.smtp_port, s) for s in sources[start:start + 100]))
                idle += [c for c, _ in batch]
            limits = gw.gw.handler.limits
            assert len(limits) <= TOTAL
            assert sum(1 for c in gw.gw.handler.connections if c.peer == CROWD) <= PER_ADDRESS

            # The session that was logged in before is never the one that gives way …
            subject = token()
            await asyncio.to_thread(early.sendmail, "z@x.example", ["max@buyer.test"], message(subject))
            # … and a new one gets in, from elsewhere or from the crowded address itself.
            assert (await asyncio.to_thread(send_one, gw, message(subject + "-new")))[0] == 250
            crowd = await AsyncSmtp.connect(gw.smtp_port, CROWD)
            await crowd.starttls(gw.tls())
            assert (await crowd.auth_plain("li", "li-password-1")).startswith("235")
            crowd.close()
            await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 2, containing=subject.encode())
        finally:
            early.close()
            for c in idle:
                c.close()
        lines = [r for r in caplog.records if r.name.startswith("mailwarden.gateway.submission")]
        assert len(lines) < 150, f"{len(lines)} log lines for {IDLE} idle connections"


async def test_noops_before_login_do_not_hold_a_connection(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, listen={"login_timeout": "2s"}) as gw:
        c = await AsyncSmtp.connect(gw.smtp_port)
        try:
            assert (await c.reply()).startswith("220")
            started = time.monotonic()
            last = ""
            while time.monotonic() - started < 20:
                last = await c.command(b"NOOP")
                if not last.startswith("250"):
                    break
                await asyncio.sleep(0.2)
            assert last.startswith("421") and "login" in last.lower()
            assert await c.reply() == ""  # and the connection is closed
        finally:
            c.close()
