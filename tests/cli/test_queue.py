"""mailwarden queue list|show|retry|bounce: what an admin sees and does, exit codes and errors."""

from __future__ import annotations

import json

import pytest
from mailwarden.cli.app import app
from mailwarden.gateway.config import Store
from mailwarden.store import open_store
from mailwarden.store.directory import add_user
from mailwarden.store.models import AuditEvent
from mailwarden.store.spool import Envelope, accept, due, failed
from mailwarden.store.models import utcnow
from sqlalchemy import text
from sqlmodel import Session, select
from typer.testing import CliRunner


@pytest.fixture
def cli(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    cfg = tmp_path / "mailwarden.toml"
    cfg.write_text('[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n[store]\ndata_dir = "data"\n')
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(cfg))
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args))

    return run


@pytest.fixture
def store(tmp_path, cli):  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    handle = open_store(Store(url=f"sqlite:///{data / 'mailwarden.db'}", data_dir=data,
                              audit_key_file=data / "audit.key"))
    yield handle
    handle.close()


def queued(store, rcpt: str = "max@buyer.test", error: str | None = None) -> int:  # type: ignore[no-untyped-def]
    env = Envelope(mail_from="sales@company.test", rcpts=(rcpt,), operator="zhang", operator_id=None,
                   customer_ids=(), subject="Quote 17", message_id=None, keywords=())
    m = accept(session=Session(store.engine, expire_on_commit=False), audit=store.audit, spool_dir=store.spool_dir,
               chunks=[b"Subject: Quote 17\r\n\r\nx\r\n"], env=env)
    if error:
        with Session(store.engine) as s:
            s.execute(text("UPDATE spool SET attempts = 2, last_error = :e WHERE message_id = :m"), {"e": error, "m": m})
            s.commit()
    return m


def listed(cli, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    r = cli("queue", "list", "--json", *args)
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_list_shows_each_waiting_message_with_its_attempts_and_last_error(cli, store):
    m = queued(store, error="upstream refused the shared account's login: 535 5.7.8 authentication failed")
    table = cli("queue", "list")
    assert table.exit_code == 0
    cells = table.stdout.split()  # the longer cells fold on a narrow terminal: the short ones are whole
    assert {str(m), "zhang", "relay", "2", "535"} <= set(cells)
    [row] = listed(cli)
    assert (row["message"], row["state"], row["attempts"], row["rcpts"]) == (m, "relay", 2, ["max@buyer.test"])
    assert row["next_attempt"] and "535 5.7.8" in row["last_error"]
    assert listed(cli, "--state", "shunt") == [] and listed(cli, "--state", "relay") == [row]


def test_a_shunted_message_is_listed_and_a_retry_makes_it_due_again(cli, store):
    m, other = queued(store), queued(store)
    for _ in range(3):
        with Session(store.engine) as s:
            [it] = [i for i in due(session=s, now=utcnow(), limit=10) if i.message_id == m]
            failed(session=s, audit=store.audit, item=it, error="ValueError: bad", retry_initial=0)
            s.commit()
    [row] = listed(cli, "--state", "shunt")
    assert row["message"] == m and row["last_error"] == "internal error (3/3): ValueError: bad"
    r = cli("queue", "retry", str(m))
    assert r.exit_code == 0 and "shunt → due now" in r.stdout
    assert {x["message"]: x["state"] for x in listed(cli)} == {m: "relay", other: "relay"}
    with Session(store.engine) as s:
        [ev] = s.exec(select(AuditEvent).where(AuditEvent.action == "queue.retry")).all()
        assert ev.actor.startswith("cli") and json.loads(ev.detail)["message"] == m


def test_show_prints_the_whole_record(cli, store):
    m = queued(store, error="421 4.3.2 service not available")
    r = cli("queue", "show", str(m))
    assert r.exit_code == 0, r.output
    assert f"message {m}" in r.stdout and "Quote 17" in r.stdout and "421 4.3.2" in r.stdout
    assert "attempts      2" in r.stdout and "file " in r.stdout
    [row] = [json.loads(line) for line in cli("queue", "show", str(m), "--json").stdout.splitlines()]
    assert row["subject"] == "Quote 17" and row["state"] == "relay"


def test_bounce_marks_it_for_the_gateway_and_names_who_did_it(cli, store):
    with Session(store.engine) as s:
        add_user(session=s, login="boss", name="Boss", password="boss-password", role="admin")
        s.commit()
    m = queued(store)
    r = cli("queue", "bounce", str(m), "--reason", "customer closed", "--by", "boss")
    assert r.exit_code == 0, r.output
    assert "will not be sent" in r.stdout and "zhang gets a bounce report" in r.stdout
    [row] = listed(cli)
    assert row["state"] == "bounce" and row["last_error"] == "not sent: given up by boss: customer closed"
    with Session(store.engine) as s:
        [ev] = s.exec(select(AuditEvent).where(AuditEvent.action == "queue.bounce")).all()
        assert ev.actor == "boss" and json.loads(ev.detail)["reason"] == "customer closed"


def test_errors_name_what_to_fix(cli, store):
    r = cli("queue", "show", "42")
    assert r.exit_code == 2 and "no message 42 (see `mailwarden queue list`)" in r.output
    r = cli("queue", "list", "--state", "stuck")
    assert r.exit_code == 2 and "unknown state 'stuck'" in r.output and "shunt" in r.output
    r = cli("queue", "retry", "1", "--by", "nobody")
    assert r.exit_code == 2 and "'nobody' is not an enabled supervisor or admin" in r.output
    m = queued(store)
    with Session(store.engine) as s:
        s.execute(text("UPDATE spool SET stage = 'done' WHERE message_id = :m"), {"m": m})
        s.commit()
    r = cli("queue", "bounce", str(m))
    assert r.exit_code == 2 and f"message {m} is not waiting in the queue: it is queued" in r.output
