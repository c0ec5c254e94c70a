"""An over-long line in an AUTH LOGIN exchange, before login, gets a clean 500 and the connection
closes: no 451, no traceback, and nothing after it is read as commands.  A password that is not
UTF-8 is a wrong password, not an error."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest

from tests.integration.conftest import running_gateway
from tests.reliability.aclient import AsyncSmtp

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


async def _replies(c: AsyncSmtp, n: int) -> list[str]:
    return [await asyncio.wait_for(c.reply(), 10) for _ in range(n)]


async def test_overlong_auth_line_is_refused_cleanly(upstream, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mailwarden")
    async with running_gateway(upstream, tmp_path) as gw:
        for size in (1004, 70_000, 3_000_000):
            c = await AsyncSmtp.connect(gw.smtp_port)
            try:
                await c.starttls(gw.tls())
                assert (await c.command(b"AUTH LOGIN")).startswith("334")
                try:
                    c.writer.write(b"QUFB" * (size // 4) + b"\r\nMAIL FROM:<a@b.example>\r\nNOOP\r\n")
                    await c.writer.drain()
                except ConnectionError:
                    pass  # closed while we were still sending: that is the point
                try:
                    replies = await _replies(c, 2)
                except ConnectionError:  # megabytes still unread when it closed: the kernel resets
                    assert size > 1_000_000
                    continue
                assert replies == ["500 5.5.2 Line too long; closing the connection", ""], size
            finally:
                c.close()
        # An answer of ordinary length that decodes to bytes that are not UTF-8: a wrong password.
        c = await AsyncSmtp.connect(gw.smtp_port)
        try:
            await c.starttls(gw.tls())
            assert (await c.command(b"AUTH LOGIN")).startswith("334")
            assert (await c.command(base64.b64encode(b"zhang"))).startswith("334")
            assert (await c.command(b"NOOP")).startswith("535")  # "NOOP" is base64 of \x34\xe3\x8f
            assert (await c.command(b"NOOP")).startswith("250")
        finally:
            c.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
