"""A message stuck behind a wrong upstream password: kept in the spool, shown by
`mailwarden queue list` with the refused login as its last error, delivered once after the
password is fixed and an admin runs `queue retry`."""

from __future__ import annotations

import asyncio
import json

import pytest
from mailwarden.cli.app import app
from mailwarden.gateway.config import config_from_dict
from mailwarden.gateway.server import SECTIONS, Gateway
from mailwarden.store import open_store
from mailwarden.store.models import SpoolItem
from sqlmodel import Session, select
from typer.testing import CliRunner

from tests.integration.conftest import RunningGateway, gateway_config, message, seed, send_one, token

pytestmark = pytest.mark.integration


async def test_a_message_stuck_behind_a_wrong_upstream_password_is_listed_then_retried_once(upstream, tmp_path,
                                                                                             monkeypatch):
    right = gateway_config(tmp_path, upstream, retry_initial="1h")  # only `queue retry` makes it due again
    (tmp_path / "upstream.password").write_text("not-the-password\n")
    wrong = config_from_dict(right.raw, right.path, SECTIONS)
    (tmp_path / "cli.toml").write_text('[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
                                       '[store]\ndata_dir = "data"\n')
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(tmp_path / "cli.toml"))

    def queue(*args: str) -> list[dict]:
        r = CliRunner().invoke(app, ["queue", *args])
        assert r.exit_code == 0, r.output
        return [json.loads(line) for line in r.stdout.splitlines()] if "--json" in args else []

    assert wrong.store is not None
    store = open_store(wrong.store)
    seed(store)
    t = token()
    gw = Gateway(wrong, store)
    await gw.start()
    try:
        code, _ = await asyncio.to_thread(send_one, RunningGateway(gw, wrong, store, upstream), message(f"stuck {t}"))
        assert code == 250
        for _ in range(300):
            with Session(store.engine) as s:
                item = s.exec(select(SpoolItem)).one()
            if item.attempts:
                break
            await asyncio.sleep(0.1)
    finally:
        await asyncio.wait_for(gw.stop(), 60)
    [row] = await asyncio.to_thread(queue, "list", "--json")
    assert row["state"] == "relay" and row["attempts"] == 1 and row["operator"] == "zhang"
    assert "535" in row["last_error"] and "authentication failed" in row["last_error"]  # the refused login

    (tmp_path / "upstream.password").write_text(upstream.password_for("sales@company.test") + "\n")
    fixed = config_from_dict(right.raw, right.path, SECTIONS)
    gw = Gateway(fixed, store)
    await gw.start()
    try:
        await asyncio.sleep(1.0)  # not due: nothing goes out until the retry
        assert not [m for m in await asyncio.to_thread(upstream.fetch_all, "catchall@buyer.test")
                    if t.encode() in m.raw]
        await asyncio.to_thread(queue, "retry", str(row["message"]))
        got = await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, timeout=60, containing=t.encode())
        await asyncio.sleep(1.5)  # would a second copy follow?
        again = await asyncio.to_thread(upstream.fetch_all, "catchall@buyer.test")
        assert len(got) == 1 and len([m for m in again if t.encode() in m.raw]) == 1
    finally:
        await asyncio.wait_for(gw.stop(), 60)
        store.close()
    assert await asyncio.to_thread(queue, "list", "--json") == []
