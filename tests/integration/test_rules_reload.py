"""Rule changes reach a running gateway: a word imported with ``rules import-words`` blocks the
next message within seconds, without a restart, and the audit names the admin."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from mailwarden.cli.common import actor
from mailwarden.store.models import AuditEvent
from sqlmodel import Session, col, select

from tests.integration.conftest import message, send_one, token
from tests.integration.test_enforcement import cli

pytestmark = pytest.mark.integration


async def test_imported_word_blocks_the_next_message_without_a_restart(gateway, tmp_path):
    term = f"zorblax {token()}"
    code, _reply = await asyncio.to_thread(send_one, gateway, message("before", body=f"About {term}.\r\n"))
    assert code == 250

    words = tmp_path / "banned.txt"
    words.write_text(f"# action: block\n{term}\n", encoding="utf-8")
    result = await asyncio.to_thread(cli, gateway, "rules", "import-words", str(words))
    assert result.exit_code == 0, result.output
    imported = time.monotonic()

    while True:  # the gateway started before the import: it must see it by itself
        code, reply = await asyncio.to_thread(send_one, gateway, message("after", body=f"About {term}.\r\n"))
        if code == 550 or time.monotonic() - imported > 5:
            break
        await asyncio.sleep(0.2)
    assert code == 550, reply
    assert b"WORDLIST_BANNED" in reply and term.encode() in reply
    assert time.monotonic() - imported <= 5

    with Session(gateway.store.engine) as s:
        events = s.exec(select(AuditEvent).where(col(AuditEvent.action).startswith("rules."))
                        .order_by(col(AuditEvent.seq))).all()
    by_action = {e.action: e for e in events}
    imported_ev = by_action["rules.import_words"]
    assert imported_ev.actor == actor() and imported_ev.target == "banned"
    assert json.loads(imported_ev.detail)["added"] == 1
    reloaded = json.loads(by_action["rules.reloaded"].detail)
    assert reloaded["files"] == [str(gateway.store.data_dir / "rules" / "banned.txt")]
    status, _type, body = await gateway.gw._healthz()
    rules = json.loads(body)["rules"]
    assert status == 200 and (rules["version"], rules["problem"]) == (reloaded["version"], None)

    listing = await asyncio.to_thread(cli, gateway, "rules", "list")
    assert listing.exit_code == 0, listing.output
    assert f"running version {reloaded['version']} (" in listing.output
    assert f"word list banned: +1 -0 ~0 terms (rule WORDLIST_BANNED) by {actor()}" in listing.output
