"""`rules check --json` and the SMTP path decide alike: the same messages, the same config and
store, the same action — whoever the recipient is (known customer, another salesperson's,
unknown) and whatever the content."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from mailwarden.cli.app import app
from mailwarden.store.directory import add_customer
from mailwarden.store.models import SpoolItem
from sqlmodel import Session, select
from typer.testing import CliRunner

from tests.integration.conftest import message, send_one, token

pytestmark = pytest.mark.integration

CASES = [
    # (subject, body, recipient)
    ("clean quote", "Dear Max,\r\nthe price is USD 12 per piece, FOB Ningbo.\r\n", "max@buyer.test"),
    ("private wechat", "Add me on WeChat: zhang_private88\r\n", "max@buyer.test"),
    ("private mobile", "My number is 13912345678.\r\n", "max@buyer.test"),
    ("diverting", "我们成立了新公司，以后私下合作吧。\r\n", "max@buyer.test"),
    ("other's customer", "Dear Anna,\r\nplease find our catalogue attached.\r\n", "anna@customer.test"),
    ("unknown recipient", "Dear Sir,\r\nwe make LED panels.\r\n", "someone@example.com"),
    ("company contacts", "Best regards,\r\nZhang San\r\nTel: +86 574 8888 0000\r\nWeChat: BrightLightingCN\r\n",
     "max@buyer.test"),
    ("quoted customer phone", "Fine.\r\n\r\nOn Mon, 3 Nov 2025 at 10:00, Max <max@buyer.test> wrote:\r\n"
     "> Please call me on my mobile +49 151 2345 6789 or WhatsApp.\r\n", "max@buyer.test"),
]


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


def write_config(raw: dict, path: Path) -> None:
    """The gateway's own config dict as the TOML file the CLI reads."""
    lines = []
    for section, table in raw.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def smtp_action(gw, code: int, reply: bytes) -> str:
    if code == 550:
        return "block"
    assert code == 250, reply
    msg_id = int(reply.split(b" as ")[1].split(b":")[0])
    with Session(gw.store.engine) as s:
        item = s.exec(select(SpoolItem).where(SpoolItem.message_id == msg_id)).first()
    assert item is not None
    return json.loads(item.decision)["decided"] if item.decision else "allow"


async def test_rules_check_and_smtp_reach_the_same_action(gateway, tmp_path):
    with Session(gateway.store.engine) as s:
        add_customer(session=s, name="Customer of Li", domains=["customer.test"], owner="li")
        s.commit()
    cfg_path = gateway.cfg.path
    write_config(gateway.cfg.raw, cfg_path)
    seen = set()
    for subject, body, rcpt in CASES:
        raw = message(f"{subject} {token()}", body=body, to=rcpt)
        mail = tmp_path / f"case-{len(seen)}.eml"
        mail.write_bytes(raw)
        code, reply = await asyncio.to_thread(send_one, gateway, raw, rcpt)
        via_smtp = smtp_action(gateway, code, reply)
        result = await asyncio.to_thread(CliRunner().invoke, app, [
            "--config", str(cfg_path), "rules", "check", "--json", "--from", "zhang", "--to", rcpt, str(mail)])
        assert result.exit_code == 0, result.output
        via_cli = json.loads(result.stdout.splitlines()[0])["action"]
        assert via_cli == via_smtp, (subject, via_cli, via_smtp, result.output)
        seen.add(via_smtp)
    # the cases cover the ways a message can go, so agreement means something
    assert {"allow", "block", "warn", "quarantine", "flag"} <= seen, seen
