"""The admin CLI: exit codes and messages a person can act on."""

from __future__ import annotations

import json

from mailwarden.cli.app import app
from typer.testing import CliRunner


def test_user_lifecycle(cli):
    r = cli("user", "add", "zhang", "--name", "Zhang San", "--password-stdin", input="correct-horse\n")
    assert r.exit_code == 0, r.output
    r = cli("user", "add", "zhang", "--name", "Again", "--password-stdin", input="correct-horse\n")
    assert r.exit_code == 2 and "exists already" in r.output
    assert cli("user", "disable", "zhang").exit_code == 0
    rows = [json.loads(line) for line in cli("user", "list", "--json").stdout.splitlines()]
    assert rows == [{"login": "zhang", "name": "Zhang San", "role": "sales", "team": None, "lang": None, "enabled": False}]
    assert cli("user", "enable", "zhang").exit_code == 0
    assert cli("user", "passwd", "zhang", "--password-stdin", input="another-pass\n").exit_code == 0
    r = cli("user", "disable", "nobody")
    assert r.exit_code == 2 and "no user 'nobody'" in r.output


def test_bad_role_and_short_password(cli):
    r = cli("user", "add", "li", "--name", "Li", "--role", "boss", "--password-stdin", input="long-enough\n")
    assert r.exit_code == 2 and "role 'boss'" in r.output
    r = cli("user", "add", "li", "--name", "Li", "--password-stdin", input="short\n")
    assert r.exit_code == 2 and "at least 8" in r.output


def test_customer_import_all_or_nothing(cli, tmp_path):
    cli("user", "add", "zhang", "--name", "Zhang", "--password-stdin", input="correct-horse\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,domains,contacts,owner\nAcme,acme.de,,zhang\nBeta,beta.com,,nobody\nGamma,not a domain,,\n")
    r = cli("customer", "import", str(bad))
    assert r.exit_code == 2
    assert "bad.csv: line 3: no user 'nobody'" in r.output and "bad.csv: line 4:" in r.output
    assert "nothing was imported" in r.output
    assert cli("customer", "list", "--json").stdout == ""
    good = tmp_path / "good.csv"
    good.write_text("name,domains,contacts,owner\nAcme,acme.de;acme.com,buyer@acme.de,zhang\n北京贸易,bj-trade.cn,,\n",
                    encoding="utf-8")
    r = cli("customer", "import", str(good))
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in cli("customer", "list", "--json").stdout.splitlines()]
    assert {r["name"]: r["owner"] for r in rows} == {"Acme": "zhang", "北京贸易": None}


def test_customer_import_gbk_csv(cli, tmp_path):
    f = tmp_path / "excel.csv"
    f.write_bytes("name,domains\n上海灯具,sh-lamps.cn\n".encode("gbk"))
    assert cli("customer", "import", str(f)).exit_code == 0
    assert "上海灯具" in cli("customer", "list").stdout


def test_customer_import_bad_header(cli, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("company,domain\nA,a.com\n")
    r = cli("customer", "import", str(f))
    assert r.exit_code == 2 and "line 1" in r.output and "'name'" in r.output


def test_assign_and_audit_verify(cli):
    cli("user", "add", "zhang", "--name", "Zhang", "--password-stdin", input="correct-horse\n")
    assert cli("customer", "add", "Acme", "--domain", "acme.de", "--owner", "zhang").exit_code == 0
    r = cli("customer", "assign", "Acme", "--to", "pool")
    assert r.exit_code == 0 and "zhang → pool" in r.stdout
    r = cli("customer", "add", "Mail", "--domain", "gmail.com")
    assert r.exit_code == 2 and "free-mail" in r.output
    r = cli("audit", "verify")
    assert r.exit_code == 0 and "intact: 3 events" in r.stdout
    events = [json.loads(line)["action"] for line in cli("audit", "log", "--json").stdout.splitlines()]
    assert events == ["user.add", "customer.add", "customer.assign"]


def test_missing_config_is_explained(tmp_path, monkeypatch):
    monkeypatch.delenv("MAILWARDEN_CONFIG", raising=False)
    r = CliRunner().invoke(app, ["user", "list"])
    assert r.exit_code == 2 and "MAILWARDEN_CONFIG" in r.output


def test_config_error_names_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[store]\nurl = "mysql://x"\n')
    r = CliRunner().invoke(app, ["--config", str(cfg), "user", "list"])
    assert r.exit_code == 2 and "[store] url" in r.output


def test_audit_log_details_read_as_key_value_pairs():
    from mailwarden.cli.audit_cmd import _detail

    assert _detail('{"role": "sales", "team": null, "domains": ["a.de"], "n": 2}') == 'role=sales  domains=["a.de"]  n=2'
    assert _detail("{}") == "" and _detail("not json") == "not json"


def test_audit_log_reads_at_80_columns(cli, monkeypatch):
    """Each key=value pair and each target address stays whole in an 80-column terminal."""
    from mailwarden.cli.common import out

    monkeypatch.setattr(out, "width", 80)
    cli("user", "add", "zhang", "--name", "Zhang San", "--team", "export-europe", "--password-stdin", input="pw-12345678\n")
    cli("customer", "add", "Acme Lighting GmbH", "--domain", "acme-lighting.de", "--contact", "max.mueller@acme-lighting.de",
        "--owner", "zhang")
    r = cli("audit", "log")
    assert r.exit_code == 0 and max(len(line) for line in r.stdout.splitlines()) <= 80
    for whole in ("user.add", "customer.add", "team=export-europe", 'domains=["acme-lighting.de"]', "Acme Lighting GmbH"):
        assert whole in r.stdout, (whole, r.stdout)
