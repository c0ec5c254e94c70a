"""The store: audit chain tamper evidence, spool commits, customer resolution — on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from mailwarden.store.directory import (
    DirectoryError,
    add_customer,
    add_user,
    resolve_recipient,
)
from mailwarden.store.models import AuditEvent, SpoolItem
from mailwarden.store.spool import Envelope, accept
from sqlalchemy import text
from sqlmodel import Session, select


def chain(store, n=5):
    for i in range(n):
        store.audit.append(actor="admin", action="test.event", target=f"t{i}", n=i)


def test_clean_chain_verifies(store):
    chain(store)
    r = store.audit.verify()
    assert r.ok and r.checked == 5


def test_edited_event_is_named(store):
    chain(store)
    with Session(store.engine) as s:
        s.exec(text("UPDATE audit_events SET target = 'forged' WHERE seq = 3"))
        s.commit()
    r = store.audit.verify()
    assert not r.ok and r.bad_seq == 3 and "altered" in r.problem


def test_removed_event_is_named(store):
    chain(store)
    with Session(store.engine) as s:
        s.exec(text("DELETE FROM audit_events WHERE seq = 2"))
        s.commit()
    r = store.audit.verify()
    assert not r.ok and r.bad_seq == 2 and "missing" in r.problem


def test_removed_tail_is_detected(store):
    chain(store)
    with Session(store.engine) as s:
        s.exec(text("DELETE FROM audit_events WHERE seq >= 4"))
        s.commit()
    r = store.audit.verify()
    assert not r.ok and "removed from the end" in r.problem


def test_removed_tail_of_a_committed_batch_is_detected(store):
    """Events appended inside a session (as the gateway's group commit does, several per
    transaction, each under a SAVEPOINT) move the anchor when the transaction commits."""
    with Session(store.engine) as s:
        for i in range(4):
            with s.begin_nested():
                store.audit.append(actor="gw", action="send.accepted", session=s, n=i)
        s.commit()
    assert store.audit.verify().ok
    with Session(store.engine) as s:
        s.exec(text("DELETE FROM audit_events WHERE seq >= 3"))
        s.commit()
    r = store.audit.verify()
    assert not r.ok and "removed from the end" in r.problem


def test_anchor_caught_half_written_is_read_again_and_a_broken_one_is_reported(store):
    chain(store, 3)
    head = store.audit.head_file
    good = head.read_bytes()
    assert store.audit.verify().ok
    seq, mac, _check = good.split()
    head.write_bytes(b"3 " + mac[:20] + b"0" * 44 + b" " + _check + b"\n")  # another record's tail over this one
    r = store.audit.verify()
    assert not r.ok and "altered or replaced" in r.problem
    head.write_bytes(seq + b" " + mac + b"\n")  # as older versions wrote it: anyone could have
    r = store.audit.verify()
    assert not r.ok and "older version" in r.problem
    chain(store, 1)  # the next event rewrites it
    assert store.audit.verify().ok


def test_renumbered_chain_is_detected(store):
    """Deleting a row and renumbering the rest to hide the gap still breaks the links."""
    chain(store)
    with Session(store.engine) as s:
        s.exec(text("DELETE FROM audit_events WHERE seq = 2"))
        s.exec(text("UPDATE audit_events SET seq = seq - 1 WHERE seq > 2"))
        s.commit()
    r = store.audit.verify()
    assert not r.ok and r.bad_seq == 2


def test_chain_needs_the_key(store, tmp_path):
    chain(store, 2)
    (tmp_path / "audit.key").write_text("00" * 32 + "\n")
    from mailwarden.store.audit import AuditLog

    r = AuditLog(store.engine, tmp_path / "audit.key").verify()
    assert not r.ok and r.bad_seq == 1


def test_spool_accept_is_one_commit(store):
    env = Envelope(mail_from="sales@company.test", rcpts=("a@buyer.test",), operator="zhang", operator_id=None,
                   customer_ids=(), subject="s", message_id="<x@y>", keywords=("$mw_op_zhang",))
    msg_id = accept(session=Session(store.engine, expire_on_commit=False), audit=store.audit, spool_dir=store.spool_dir,
                 chunks=[b"Subject: s\r\n\r\n", memoryview(b"body")], env=env)
    with Session(store.engine) as s:
        row = s.exec(select(SpoolItem)).one()
        assert (store.spool_dir / row.blob).read_bytes() == b"Subject: s\r\n\r\nbody"
        assert json.loads(row.rcpts) == ["a@buyer.test"] and row.stage == "relay"
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "send.accepted")).one()
        assert json.loads(ev.detail)["message"] == msg_id
    assert store.audit.verify().ok


def test_due_items_in_plain_sql_read_like_the_orm(store):
    """due() reads rows written by plain SQL (record) and by the ORM alike: the times compare,
    come back aware, and excluded or future items stay out."""
    from datetime import timedelta

    from mailwarden.store.models import utcnow
    from mailwarden.store.spool import due

    env = Envelope(mail_from="sales@company.test", rcpts=("a@buyer.test",), operator="zhang", operator_id=None,
                   customer_ids=(), subject="s", message_id="<x@y>", keywords=())
    ids = [accept(session=Session(store.engine, expire_on_commit=False), audit=store.audit,
                  spool_dir=store.spool_dir, chunks=[b"Subject: s\r\n\r\nbody"], env=env) for _ in range(3)]
    with Session(store.engine) as s:
        rows = s.exec(select(SpoolItem).order_by(SpoolItem.id)).all()
        later = rows[2]
        later.next_attempt = utcnow() + timedelta(minutes=5)  # written by the ORM
        s.add(later)
        s.commit()
        first_id = rows[0].id
    with Session(store.engine) as s:
        got = due(session=s, now=utcnow(), limit=10)
        assert [i.message_id for i in got] == ids[:2]
        assert got[0].created_at.tzinfo is not None and got[0].created_at <= utcnow()
        assert [i.message_id for i in due(session=s, now=utcnow(), limit=10, exclude={first_id})] == ids[1:2]
        assert [i.message_id for i in due(session=s, now=utcnow() + timedelta(minutes=10), limit=10)] == ids


def test_failed_spool_commit_leaves_no_file(store):
    env = Envelope(mail_from="x", rcpts=("a@b.test",), operator="o" * 500, operator_id=None, customer_ids=(999999,),
                   subject="s", message_id=None, keywords=())
    with pytest.raises(Exception):
        accept(session=Session(store.engine), audit=store.audit, spool_dir=store.spool_dir, chunks=[b"x"], env=env)
    assert [p for p in store.spool_dir.iterdir()] == []


def test_recipient_resolution(store):
    with Session(store.engine) as s:
        add_user(session=s, login="zhang", name="Zhang", password="password1")
        acme = add_customer(session=s, name="Acme", domains=["acme.de"], owner="zhang")
        private = add_customer(session=s, name="Hans", contacts=["hans.buyer@gmail.com"])
        s.commit()
        assert resolve_recipient(session=s, address="Max@ACME.de").id == acme.id
        assert resolve_recipient(session=s, address="max@mail.acme.de").id == acme.id
        assert resolve_recipient(session=s, address="hans.buyer@gmail.com").id == private.id
        # a free-mail domain never resolves by domain
        assert resolve_recipient(session=s, address="other@gmail.com", freemail=("gmail.com",)) is None


def test_customer_name_with_line_break_is_refused(store):
    with Session(store.engine) as s, pytest.raises(DirectoryError, match="one line"):
        add_customer(session=s, name="Evil\r\nBcc: x@y.z")


def test_migrations_match_the_models(store):
    """A model changed without a migration would break every existing installation's upgrade.
    On SQLite the mailbox column added to existing tables has no REFERENCES clause (SQLite
    cannot add one with a default while foreign keys are on); PostgreSQL has them all."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    if store.engine.dialect.name == "sqlite":
        diff = [d for d in diff if not (d[0] == "add_fk" and d[1].parent.name in ("customers", "messages", "spool")
                                        and [c.name for c in d[1].columns] == ["mailbox_id"])]
    assert diff == []


def test_a_command_session_waits_for_the_gateways_commit_instead_of_failing(store):
    """An admin command reads, the running gateway commits, the command writes: on SQLite a read
    transaction cannot then become a writer ("database is locked" at once), so command sessions
    take the write lock first and the gateway's commit waits for them instead."""
    import threading
    import time

    from mailwarden.store.models import User

    errors: list[BaseException] = []

    def gateway_commits() -> None:
        try:
            store.audit.append(actor="gateway", action="test.concurrent")  # its own transaction
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with store.session() as s:
        s.exec(select(User)).all()  # the command reads first …
        t = threading.Thread(target=gateway_commits)  # (another connection of the pool)
        t.start()
        time.sleep(0.3)  # … the gateway commits meanwhile (or waits for the lock) …
        store.audit.append(actor="admin", action="test.command", session=s)  # … then the command writes
    t.join(30)
    assert not errors
    assert store.audit.verify().ok and store.audit.verify().checked == 2
