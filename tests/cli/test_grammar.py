"""One CLI grammar: every listing has --json whose lines parse and round-trip, names rather than
ids for people and customers, -h is help only, and audit log's filters."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import typer
from mailwarden.cli.app import app
from mailwarden.gateway.config import load_config
from mailwarden.store import open_store
from mailwarden.store.mails import Filing, NewMail, add_mail
from mailwarden.store.spool import Envelope, accept, states
from sqlmodel import Session

LISTINGS = {("user", "list"), ("customer", "list"), ("mail", "list"), ("queue", "list"), ("queue", "show"),
            ("quarantine", "list"), ("rules", "list"), ("sync", "status"), ("audit", "log")}


def commands() -> dict[tuple[str, ...], object]:
    """Every command of the app by its words (typer's own click, whatever its version)."""
    root = typer.main.get_command(app)
    found: dict[tuple[str, ...], object] = {}

    def walk(cmd, path: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        else:
            found[path] = cmd
    walk(root, ())
    return found


def options(cmd) -> set[str]:  # type: ignore[no-untyped-def]
    return {o for p in cmd.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}


def test_every_listing_has_json_and_h_is_only_help():
    cmds = commands()
    listing = {path for path in cmds if path[-1] in ("list", "log", "status")}
    assert listing <= LISTINGS, f"a new listing: add it to LISTINGS and to the round trip below: {listing - LISTINGS}"
    for path in LISTINGS:
        assert "--json" in options(cmds[path]), f"{' '.join(path)} has no --json"
    for path, cmd in cmds.items():
        assert "-h" not in options(cmd), f"{' '.join(path)} uses -h for something other than help"
        # an acting or subject login is --user (or positional); --by and --actor are only old aliases
        for p in cmd.params:
            opts = getattr(p, "opts", [])
            if "--by" in opts or "--actor" in opts:
                assert opts[0] == "--user", f"{' '.join(path)}: {opts}"


@pytest.fixture
def filled(cli, tmp_path):  # type: ignore[no-untyped-def]
    """A store with someone in every listing: users, customers, mail, a queued and a held message."""
    for login, role in (("zhang", "sales"), ("wang", "supervisor")):
        r = cli("user", "add", login, "--name", login.title(), "--role", role, "--team", "export", "--password-stdin",
                input="password1\n")
        assert r.exit_code == 0, r.output
    assert cli("customer", "add", "Acme", "--domain", "acme.de", "--owner", "zhang").exit_code == 0
    cfg = load_config(tmp_path / "mailwarden.toml", {"store"})
    st = open_store(cfg.store)
    try:
        with st.session() as s:
            add_mail(session=s, new=NewMail(blob="a" * 64, size=10, internal_date=datetime.now(timezone.utc),
                                            subject="quote", from_addr="max@acme.de"),
                     filing=Filing("domain", customer_id=1))
        ids = []
        for stage in (states.RELAY, states.HELD):
            env = Envelope(mail_from="sales@company.test", rcpts=("max@acme.de",), operator="zhang", operator_id=None,
                           customer_ids=(1,), subject=f"Quote {stage}", message_id="<q@x>", keywords=())
            ids.append(accept(session=Session(st.engine, expire_on_commit=False), audit=st.audit,
                              spool_dir=st.spool_dir, chunks=[b"Subject: Quote\r\n\r\nbody\r\n"], env=env, stage=stage))
    finally:
        st.close()
    cli.ids = ids
    return cli


def test_each_listings_json_parses_and_round_trips(filled):
    cli = filled
    queued, held = cli.ids
    runs = {("user", "list"): [], ("customer", "list"): [], ("mail", "list"): [], ("queue", "list"): [],
            ("queue", "show"): [str(queued)], ("quarantine", "list"): [], ("rules", "list"): [],
            ("sync", "status"): [], ("audit", "log"): []}
    assert set(runs) == LISTINGS
    seen: dict[tuple[str, str], list[dict]] = {}
    for path, extra in runs.items():
        r = cli(*path, *extra, "--json")
        assert r.exit_code == 0, (path, r.output)
        lines = r.stdout.splitlines()
        rows = [json.loads(line) for line in lines]
        assert all(isinstance(row, dict) for row in rows)
        # what is printed is the canonical form: parsed and written again, it is the same line
        assert [json.dumps(row, ensure_ascii=False) for row in rows] == lines, path
        seen[path] = rows
    assert [u["login"] for u in seen["user", "list"]] == ["wang", "zhang"]
    assert [(c["name"], c["owner"]) for c in seen["customer", "list"]] == [("Acme", "zhang")]
    assert [(m["customer"], m["owner"]) for m in seen["mail", "list"]] == [("Acme", "zhang")]
    assert [q["message"] for q in seen["queue", "list"]] == [queued]
    assert seen["queue", "show"][0]["operator"] == "zhang"
    assert [h["id"] for h in seen["quarantine", "list"]] == [held]
    assert any(r["id"] == "PRIVATE_WECHAT" for r in seen["rules", "list"])
    assert {e["action"] for e in seen["audit", "log"]} >= {"user.add", "customer.add", "send.accepted"}
    # sync status is empty before a sync: its JSON is checked in test_inbound_cli


def test_customer_listing_is_names_not_ids(filled):
    r = filled("customer", "list")
    assert "Acme" in r.stdout and "id" not in r.stdout.split("\n")[1]
    r = filled("customer", "add", "Globex")
    assert r.stdout.strip() == "added customer Globex, owner: pool"


def test_audit_log_filters(filled):
    cli = filled
    assert cli("customer", "assign", "acme", "--to", "wang", "--reason", "holiday").exit_code == 0

    def actions(*args: str) -> list[str]:
        r = cli("audit", "log", "--json", *args)
        assert r.exit_code == 0, r.output
        return [json.loads(line)["action"] for line in r.stdout.splitlines()]

    everything = actions()
    assert actions("--action", "customer") == ["customer.add", "customer.assign"]
    # by or about zhang: their user.add, the sends they made
    assert actions("--user", "zhang") == ["user.add", "send.accepted", "send.accepted"]
    assert actions("--actor", "zhang") == actions("--user", "zhang")
    # about Acme: added, assigned, and the sends to its domain (named in any case)
    assert actions("--customer", "ACME") == ["customer.add", "send.accepted", "send.accepted", "customer.assign"]
    assert actions("--customer", "acme", "--action", "send", "--limit", "1") == ["send.accepted"]
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d")
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert actions("--since", tomorrow) == []
    assert actions("--until", today) == everything  # a bare date includes that day
    assert actions("--since", "1h") == everything
    assert actions("--until", "1h") == []
    r = cli("audit", "log", "--since", "last week")
    assert r.exit_code == 2 and "--since 'last week'" in r.output
    r = cli("audit", "log", "--customer", "Nobody")
    assert r.exit_code == 2 and "no customer 'Nobody'" in r.output
