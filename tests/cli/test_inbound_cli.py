"""The inbound side of the CLI: mail list/assign, customer claim, sync status, and the
[sync]/[filing] keys, each error naming what to fix."""

from __future__ import annotations

import json

import pytest
from mailwarden.cli.app import app
from mailwarden.gateway.config import ConfigError, config_from_dict
from typer.testing import CliRunner

BASE = '[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n[store]\ndata_dir = "data"\n'


@pytest.fixture
def cli(tmp_path, monkeypatch):
    cfg = tmp_path / "mailwarden.toml"
    cfg.write_text(BASE + "[filing]\nclaim_limits = { sales = 1 }\n")
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(cfg))
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(app, list(args), input=input)


def test_claiming_from_the_pool_with_a_limit(cli):
    assert cli("user", "add", "zhang", "--name", "Zhang", "--password-stdin", input="correct-horse\n").exit_code == 0
    for name in ("Alpha", "Beta"):
        assert cli("customer", "add", name).exit_code == 0
    r = cli("customer", "claim", "Alpha", "--user", "zhang")
    assert r.exit_code == 0 and "Alpha: pool → zhang" in r.output
    r = cli("customer", "claim", "Beta", "--user", "zhang")
    assert r.exit_code == 2 and "holds 1 customers" in r.output and "claim_limits" in r.output
    r = cli("customer", "claim", "Alpha", "--user", "zhang")
    assert r.exit_code == 2 and "not in the pool" in r.output
    events = [json.loads(line)["action"] for line in cli("audit", "log", "--json").stdout.splitlines()]
    assert "customer.claim" in events


def test_mail_commands_on_an_empty_store(cli):
    r = cli("mail", "list", "--json")
    assert r.exit_code == 0 and r.stdout == ""
    r = cli("mail", "assign", "7", "--customer", "Nobody")
    assert r.exit_code == 2 and "no mail 7" in r.output
    r = cli("mail", "list", "--since", "yesterday")
    assert r.exit_code == 2 and "--since 'yesterday'" in r.output
    r = cli("sync", "status")
    assert r.exit_code == 0 and "nothing synced yet" in r.output
    assert cli("sync", "status", "--json").stdout == ""


@pytest.mark.parametrize("table, key, text", [
    ({"sync": {"workers": 0}}, "workers", "between 1 and 8"),
    ({"sync": {"poll_interval": "1s"}}, "poll_interval", "at least 5s"),
    ({"sync": {"idle": True, "workers": 2}, "upstream_connections": 3}, "workers", "raise imap_connections to 4"),
    ({"sync": {"colour": 1}}, "colour", "unknown key"),
    ({"filing": {"unknown": "random"}}, "unknown", "round-robin"),
    ({"filing": {"claim_limits": {"boss": 3}}}, "claim_limits", "keys are roles"),
    ({"filing": {"return_after_days": 10, "remind_days_before": 10}}, "remind_days_before", "before the return"),
])
def test_sync_and_filing_keys_are_checked(tmp_path, table, key, text):
    (tmp_path / "pw").write_text("x\n")
    raw = {"company": {"name": "C", "domains": ["company.test"]},
           "upstream": {"imap": "localhost:993", "smtp": "localhost:465", "username": "sales@company.test",
                        "password_file": "pw", "imap_connections": table.get("upstream_connections", 3)},
           **{k: v for k, v in table.items() if k != "upstream_connections"}}
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw, tmp_path / "mailwarden.toml", {"upstream", "sync", "filing"})
    assert key in str(e.value) and text in str(e.value) and "mailwarden.toml" in str(e.value)
