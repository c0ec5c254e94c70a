"""People change, from the command line: user edit, customer reassign / list --owner / import
--update, names in any case, the demo's supervisor releasing its team's held mail."""

from __future__ import annotations

import json

import pytest
from mailwarden.cli.app import app
from mailwarden.cli.demo_cmd import DEMO_TEAM, DEMO_USERS
from mailwarden.gateway.config import load_config
from mailwarden.store import open_store
from mailwarden.store.spool import Envelope, accept, states
from sqlmodel import Session
from typer.testing import CliRunner


@pytest.fixture
def cli(plain_cli, tmp_path):  # type: ignore[no-untyped-def]
    """The plain CLI with three salespeople."""
    plain_cli.tmp = tmp_path
    for login in ("zhang", "li", "wang"):
        r = plain_cli("user", "add", login, "--name", login.title(), "--password-stdin", input="password1\n")
        assert r.exit_code == 0, r.output
    return plain_cli


def customers(cli, *args: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    r = cli("customer", "list", "--json", *args)
    assert r.exit_code == 0, r.output
    return {row["name"]: row for row in map(json.loads, r.stdout.splitlines())}


def audit(cli, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    r = cli("audit", "log", "--json", *args)
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_user_edit_changes_and_audits_each_field(cli):
    r = cli("user", "edit", "wang", "--name", "Wang Wu", "--team", "export", "--role", "supervisor", "--lang", "zh")
    assert r.exit_code == 0, r.output
    assert "team (none) → export" in r.stdout and "role sales → supervisor" in r.stdout
    [row] = [u for u in map(json.loads, cli("user", "list", "--json").stdout.splitlines()) if u["login"] == "wang"]
    assert row == {"login": "wang", "name": "Wang Wu", "role": "supervisor", "team": "export", "lang": "zh",
                   "enabled": True}
    [ev] = audit(cli, "--action", "user.edit")
    assert ev["target"] == "wang" and ev["detail"]["role"] == {"before": "sales", "after": "supervisor"}
    assert cli("user", "edit", "wang", "--name", "Wang Wu").stdout.strip() == "wang: nothing changed"
    r = cli("user", "edit", "wang", "--lang", "fr")
    assert r.exit_code == 2 and "language 'fr'" in r.output
    r = cli("user", "edit", "wang")
    assert r.exit_code == 2 and "nothing to change" in r.output
    r = cli("user", "edit", "nobody", "--name", "X")
    assert r.exit_code == 2 and "no user 'nobody'" in r.output


def test_reassign_moves_all_and_list_owner_shows_them(cli):
    for name, owner in (("Acme", "zhang"), ("Globex", "zhang"), ("Initech", "li")):
        assert cli("customer", "add", name, "--owner", owner).exit_code == 0
    assert cli("user", "disable", "zhang").exit_code == 0
    r = cli("customer", "reassign", "--from", "zhang", "--to", "li", "--reason", "zhang left")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "2 customers zhang → li: Acme, Globex"
    assert set(customers(cli, "--owner", "li")) == {"Acme", "Globex", "Initech"}
    assert customers(cli, "--owner", "zhang") == {}
    moves = audit(cli, "--action", "customer.assign")
    assert [(e["target"], e["detail"]["before"], e["detail"]["after"], e["detail"]["reason"]) for e in moves] == [
        ("Acme", "zhang", "li", "zhang left"), ("Globex", "zhang", "li", "zhang left")]
    # to a disabled user: refused, nothing moves
    r = cli("customer", "reassign", "--from", "li", "--to", "zhang")
    assert r.exit_code == 2 and "disabled" in r.output
    r = cli("customer", "assign", "Acme", "--to", "zhang")
    assert r.exit_code == 2 and "disabled" in r.output
    assert set(customers(cli, "--owner", "li")) == {"Acme", "Globex", "Initech"}
    assert cli("customer", "reassign", "--from", "li", "--to", "pool").exit_code == 0
    assert set(customers(cli, "--owner", "pool")) == {"Acme", "Globex", "Initech"}


def test_customer_names_match_in_any_case(cli):
    assert cli("customer", "add", "Acme Lighting GmbH", "--owner", "zhang").exit_code == 0
    r = cli("customer", "add", "ACME LIGHTING GMBH")
    assert r.exit_code == 2 and "exists already as 'Acme Lighting GmbH'" in r.output
    r = cli("customer", "assign", "acme lighting gmbh", "--to", "li")
    assert r.exit_code == 0 and r.stdout.strip() == "Acme Lighting GmbH: zhang → li"


def write_csv(cli, text: str, name: str = "customers.csv"):  # type: ignore[no-untyped-def]
    path = cli.tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_update_is_all_or_nothing_with_a_diff(cli):
    assert cli("customer", "add", "Acme", "--domain", "acme.de", "--contact", "max@acme.de", "--owner", "zhang").exit_code == 0
    first = write_csv(cli, "name,domains,contacts,owner\nacme,acme.de;acme.com,,li\nGlobex,globex.com,,\n")
    r = cli("customer", "import", str(first))
    assert r.exit_code == 2 and "line 2: customer 'Acme' exists already (--update changes it)" in r.output
    assert set(customers(cli)) == {"Acme"}
    r = cli("customer", "import", str(first), "--update", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "~ Acme: owner zhang → li; + domain acme.com; - contact max@acme.de" in r.stdout
    assert "+ Globex (owner pool; domains globex.com)" in r.stdout
    assert "dry run: 1 added, 1 changed, 0 unchanged; nothing was changed" in r.stdout
    assert customers(cli)["Acme"]["owner"] == "zhang"
    # one bad row: nothing at all
    bad = write_csv(cli, "name,domains,owner\nAcme,acme.de,li\nInitech,not a domain,\n", "bad.csv")
    r = cli("customer", "import", str(bad), "--update")
    assert r.exit_code == 2 and "line 3:" in r.output and "nothing was imported" in r.output
    assert customers(cli)["Acme"]["owner"] == "zhang" and set(customers(cli)) == {"Acme"}
    # the same name twice in the file, in another case
    twice = write_csv(cli, "name\nGlobex\nGLOBEX\n", "twice.csv")
    r = cli("customer", "import", str(twice))
    assert r.exit_code == 2 and "line 3: customer 'GLOBEX' is on line 2 already" in r.output
    r = cli("customer", "import", str(first), "--update")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().endswith("1 added, 1 changed, 0 unchanged")
    got = customers(cli)
    assert got["Acme"]["owner"] == "li" and got["Acme"]["domains"] == ["acme.com", "acme.de"]
    assert got["Acme"]["contacts"] == [] and got["Globex"]["owner"] is None
    assert [e["detail"]["after"] for e in audit(cli, "--action", "customer.assign")] == ["li"]
    # again: nothing changes
    r = cli("customer", "import", str(first), "--update")
    assert r.stdout.strip().endswith("0 added, 0 changed, 2 unchanged")


def test_the_demos_supervisor_releases_its_teams_held_mail(tmp_path, monkeypatch):
    """The demo's users as the demo makes them: the supervisor reviews the salespeople's held mail."""
    cfg_path = tmp_path / "mailwarden.toml"
    cfg_path.write_text('[company]\nname = "B"\ndomains = ["company.test"]\n[store]\ndata_dir = "data"\n')
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(cfg_path))
    runner = CliRunner()
    for login, name, role in DEMO_USERS:
        r = runner.invoke(app, ["user", "add", login, "--name", name, "--role", role, "--team", DEMO_TEAM,
                                "--password-stdin"], input="password1\n")
        assert r.exit_code == 0, r.output
    [supervisor] = [login for login, _n, role in DEMO_USERS if role == "supervisor"]
    cfg = load_config(cfg_path, {"store"})
    st = open_store(cfg.store)
    try:
        env = Envelope(mail_from="sales@company.test", rcpts=("max@buyer.test",), operator="zhang", operator_id=None,
                       customer_ids=(), subject="Quote", message_id="<q@x>", keywords=())
        held = accept(session=Session(st.engine, expire_on_commit=False), audit=st.audit, spool_dir=st.spool_dir,
                      chunks=[b"Subject: Quote\r\n\r\nbody\r\n"], env=env, stage=states.HELD)
    finally:
        st.close()
    listed = runner.invoke(app, ["quarantine", "list", "--user", supervisor, "--json"])
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [held]
    r = runner.invoke(app, ["quarantine", "release", str(held), "--user", supervisor, "--reason", "fine"])
    assert r.exit_code == 0, r.output
