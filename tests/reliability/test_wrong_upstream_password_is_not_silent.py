"""A wrong upstream password cannot fail silently: serve tries the shared account's logins at
start, logs each failure as an error saying what to fix, keeps accepting mail into the spool
and keeps trying."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.integration.conftest import message, running_gateway, send_one, token

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


async def test_wrong_upstream_password_is_not_silent(upstream, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="mailwarden")
    real = upstream.password_for
    monkeypatch.setattr(upstream, "password_for", lambda address: "not-the-company-password")
    try:
        async with running_gateway(upstream, tmp_path) as gw:
            for _ in range(200):
                errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
                if len(errors) >= 2:
                    break
                await asyncio.sleep(0.05)
            said = " ".join(" ".join(errors).split())
            assert "FAIL upstream smtp" in said and "refused the shared account's login" in said, errors
            assert "FAIL upstream imap" in said and "retrying in" in said
            assert "not-the-company-password" not in caplog.text
            assert (await asyncio.to_thread(send_one, gw, message(token())))[0] == 250  # safe in the spool
            assert any(t.get_name() == "upstream-check" and not t.done() for t in gw.gw._tasks)  # still trying
    finally:
        monkeypatch.setattr(upstream, "password_for", real)
