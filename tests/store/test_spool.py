"""The spool's transitions, one by one, on SQLite and PostgreSQL: what each does to the item's
row, its message's row and the audit chain; the shunt; an operator's retry and bounce."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from mailwarden.store.directory import DirectoryError
from mailwarden.store.models import AuditEvent, Message, SpoolItem, utcnow
from mailwarden.store.quarantine import reject
from mailwarden.store.spool import (
    DueItem,
    Envelope,
    accept,
    bounce_later,
    bounced,
    delivered,
    due,
    failed,
    retry_later,
    sent_copies_filed,
    shunt,
)
from mailwarden.store.spool import queue, states
from mailwarden.store.spool.files import is_retry_twin
from sqlmodel import Session, select

FAR = datetime(2999, 1, 1, tzinfo=timezone.utc)


def accepted(store, *, stage: str = "relay", rcpts=("a@buyer.test", "b@buyer.test")) -> int:  # type: ignore[no-untyped-def]
    env = Envelope(mail_from="sales@company.test", rcpts=tuple(rcpts), operator="zhang", operator_id=None,
                   customer_ids=(), subject="Quote", message_id="<q@x>", keywords=("$mw_op_zhang",))
    return accept(session=Session(store.engine, expire_on_commit=False), audit=store.audit, spool_dir=store.spool_dir,
                  chunks=[b"Subject: Quote\r\n\r\nbody\r\n"], env=env, stage=stage)


def item_of(store, message_id: int, stage: str = "relay") -> DueItem:  # type: ignore[no-untyped-def]
    with Session(store.engine) as s:
        [it] = [i for i in due(session=s, now=FAR, limit=100, stages=(stage,)) if i.message_id == message_id]
    return it


def apply(store, transition, **kw):  # type: ignore[no-untyped-def]
    """Run a transition as the writer does: in a session, then commit."""
    with Session(store.engine) as s:
        result = transition(session=s, **kw)
        s.commit()
    return result


def rows(store, message_id: int) -> list[SpoolItem]:  # type: ignore[no-untyped-def]
    with Session(store.engine) as s:
        return list(s.exec(select(SpoolItem).where(SpoolItem.message_id == message_id).order_by(SpoolItem.id)).all())


def message(store, message_id: int) -> Message:  # type: ignore[no-untyped-def]
    with Session(store.engine) as s:
        m = s.get(Message, message_id)
        assert m is not None
        return m


def actions(store) -> list[str]:  # type: ignore[no-untyped-def]
    with Session(store.engine) as s:
        return [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()]


def test_accept_queues_a_message_to_relay_or_holds_it(store):
    sent, held = accepted(store), accepted(store, stage=states.HELD)
    assert [r.stage for r in rows(store, sent)] == ["relay"] and message(store, sent).status == "queued"
    assert [r.stage for r in rows(store, held)] == ["held"] and message(store, held).status == "quarantined"
    assert actions(store) == ["send.accepted", "send.accepted"]


def test_delivered_moves_on_to_the_sent_copy(store):
    m = accepted(store)
    it = item_of(store, m)
    linked = apply(store, delivered, audit=store.audit, item=it, rcpts=["a@buyer.test", "b@buyer.test"], retry={},
                   retry_initial=30, spool_dir=store.spool_dir)
    [r] = rows(store, m)
    assert not linked and r.stage == "append" and message(store, m).status == "delivered"
    assert actions(store)[-1] == "send.delivered"


def test_delivered_to_some_splits_the_others_off_to_retry_with_a_file_of_their_own(store):
    m = accepted(store)
    it = item_of(store, m)
    linked = apply(store, delivered, audit=store.audit, item=it, rcpts=["a@buyer.test"],
                   retry={"b@buyer.test": "452 4.2.2 mailbox full"}, retry_initial=30, spool_dir=store.spool_dir)
    first, twin = rows(store, m)
    assert linked and first.stage == "append" and json.loads(first.rcpts) == ["a@buyer.test"]
    assert twin.stage == "relay" and json.loads(twin.rcpts) == ["b@buyer.test"] and twin.attempts == 1
    assert twin.last_error == "452 4.2.2 mailbox full" and is_retry_twin(twin.blob)
    assert (store.spool_dir / twin.blob).read_bytes() == (store.spool_dir / first.blob).read_bytes()
    assert twin.next_attempt.replace(tzinfo=timezone.utc) > utcnow()
    retry = item_of(store, m)  # not due yet, but due() was asked for everything before FAR
    apply(store, delivered, audit=store.audit, item=retry, rcpts=["b@buyer.test"], retry={}, retry_initial=30,
          spool_dir=store.spool_dir)
    assert rows(store, m)[1].stage == "done"  # the Sent copy is the first delivery's


def test_retry_later_counts_backs_off_and_keeps_the_error_unless_told(store):
    m = accepted(store)
    apply(store, retry_later, item=item_of(store, m), error="421 4.7.0 later", retry_initial=30)
    [r] = rows(store, m)
    assert r.attempts == 1 and r.last_error == "421 4.7.0 later" and r.stage == "relay"
    assert r.next_attempt.replace(tzinfo=timezone.utc) > utcnow()
    with Session(store.engine) as s:
        assert not [i for i in due(session=s, now=utcnow(), limit=10) if i.message_id == m]
    apply(store, retry_later, item=item_of(store, m), error=None, retry_initial=30, rcpts=["b@buyer.test"])
    [r] = rows(store, m)
    assert r.attempts == 2 and r.last_error == "421 4.7.0 later" and json.loads(r.rcpts) == ["b@buyer.test"]


def test_sent_copy_filed_is_done(store):
    m = accepted(store)
    apply(store, delivered, audit=store.audit, item=item_of(store, m), rcpts=["a@buyer.test"], retry={},
          retry_initial=30, spool_dir=store.spool_dir)
    apply(store, sent_copies_filed, items=[item_of(store, m, "append")])
    assert [r.stage for r in rows(store, m)] == ["done"]


def test_bounced_whole_or_partly(store):
    whole, part = accepted(store), accepted(store)
    apply(store, bounced, audit=store.audit, item=item_of(store, whole), rcpts=["a@buyer.test"], reason="550 no")
    apply(store, bounced, audit=store.audit, item=item_of(store, part), rcpts=["a@buyer.test"], reason="550 no",
          partial=True)
    assert rows(store, whole)[0].stage == "bounced" and message(store, whole).status == "bounced"
    assert message(store, whole).status_detail == "550 no"
    assert rows(store, part)[0].stage == "relay" and message(store, part).status == "queued"
    assert actions(store)[-2:] == ["send.bounced", "send.bounced"]


def test_a_bounce_that_cannot_be_reported_yet_waits_in_bounce_with_its_reason(store):
    m = accepted(store)
    apply(store, bounce_later, item=item_of(store, m), reason="550 5.1.1 unknown", retry_initial=30)
    [r] = rows(store, m)
    assert (r.stage, r.attempts, r.last_error) == ("bounce", 1, "550 5.1.1 unknown")
    assert item_of(store, m, "bounce").stage == "bounce"  # offered to the deliverer (when due)


def test_unexpected_errors_are_retried_then_shunted_and_no_longer_offered(store):
    m = accepted(store)
    for n in (1, 2):
        assert not apply(store, failed, audit=store.audit, item=item_of(store, m), error="KeyError: 'x'",
                         retry_initial=30)
        assert rows(store, m)[0].last_error == f"internal error ({n}/3): KeyError: 'x'"
    assert apply(store, failed, audit=store.audit, item=item_of(store, m), error="KeyError: 'x'", retry_initial=30)
    [r] = rows(store, m)
    assert r.stage == "shunt:relay" and r.attempts == 3 and r.last_error == "internal error (3/3): KeyError: 'x'"
    with Session(store.engine) as s:
        assert not due(session=s, now=FAR, limit=10)
        [ev] = s.exec(select(AuditEvent).where(AuditEvent.action == "send.shunted")).all()
        assert json.loads(ev.detail)["stage"] == "relay" and ev.actor == "zhang"
    assert store.audit.verify().ok


def test_a_shunt_leaves_an_item_an_operator_moved_meanwhile(store):
    m = accepted(store)
    it = item_of(store, m)
    with Session(store.engine) as s:
        queue.give_up(session=s, audit=store.audit, message_id=m, actor="cli:root", reason="")
    apply(store, shunt, audit=store.audit, item=it, error="boom")
    assert rows(store, m)[0].stage == "bounce"


def test_an_operators_retry_unshunts_due_now_and_starts_the_count_again(store):
    m = accepted(store)
    for _ in range(3):
        apply(store, failed, audit=store.audit, item=item_of(store, m), error="boom", retry_initial=30)
    with Session(store.engine) as s:
        [q] = queue.list_queue(session=s, states=[states.SHUNT])
        assert (q.message_id, q.state, q.stage) == (m, "shunt", "shunt:relay")
        moved = queue.retry(session=s, audit=store.audit, message_id=m, actor="cli:root")
    assert [q.id for q in moved] == [rows(store, m)[0].id]
    with Session(store.engine) as s:
        assert [i.message_id for i in due(session=s, now=utcnow(), limit=10)] == [m]
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "queue.retry")).one()
        assert ev.actor == "cli:root" and json.loads(ev.detail)["operator"] == "zhang"
    assert not apply(store, failed, audit=store.audit, item=item_of(store, m), error="boom", retry_initial=30)
    assert rows(store, m)[0].last_error == "internal error (1/3): boom"


def test_an_operators_bounce_marks_what_is_unsent_and_names_what_cannot_be(store):
    m, sent = accepted(store), accepted(store)
    with Session(store.engine) as s:
        moved = queue.give_up(session=s, audit=store.audit, message_id=m, actor="cli:root", reason="wrong price")
    [r] = rows(store, m)
    assert [q.id for q in moved] == [r.id] and r.stage == "bounce"
    assert r.last_error == "not sent: given up by cli:root: wrong price"
    apply(store, delivered, audit=store.audit, item=item_of(store, sent), rcpts=["a@buyer.test"], retry={},
          retry_initial=30, spool_dir=store.spool_dir)
    with Session(store.engine) as s:
        with pytest.raises(DirectoryError, match="delivered already; only its Sent copy waits"):
            queue.give_up(session=s, audit=store.audit, message_id=sent, actor="cli:root", reason="")
        with pytest.raises(DirectoryError, match="no message 999"):
            queue.retry(session=s, audit=store.audit, message_id=999, actor="cli:root")
        with pytest.raises(DirectoryError, match="unknown state 'stuck'"):
            queue.list_queue(session=s, states=["stuck"])
    assert actions(store).count("queue.bounce") == 1


def test_a_rejected_held_message_queues_a_notice_for_its_sender(store):
    m = accepted(store, stage=states.HELD)
    with Session(store.engine) as s:
        reject(session=s, audit=store.audit, spool_dir=store.spool_dir, message_id=m, actor="boss", reason="no",
               notice=b"Subject: Not sent\r\n\r\nno\r\n")
    held, notice = rows(store, m)
    assert held.stage == "rejected" and notice.stage == "notice" and notice.keywords == "$mw_op_zhang $mw_notice"
    assert (store.spool_dir / notice.blob).read_bytes() == b"Subject: Not sent\r\n\r\nno\r\n"


def test_a_bounce_that_keeps_failing_keeps_its_reason_through_the_shunt_and_the_retry(store):
    m = accepted(store)
    with Session(store.engine) as s:
        queue.give_up(session=s, audit=store.audit, message_id=m, actor="cli:root", reason="wrong price")
    for _ in range(3):
        apply(store, failed, audit=store.audit, item=item_of(store, m, "bounce"), error="OSError: gone",
              retry_initial=30)
    [r] = rows(store, m)
    assert r.stage == "shunt:bounce"
    assert r.last_error == "internal error (3/3): OSError: gone\nnot sent: given up by cli:root: wrong price"
    with Session(store.engine) as s:
        queue.retry(session=s, audit=store.audit, message_id=m, actor="cli:root")
    [r] = rows(store, m)
    assert (r.stage, r.last_error) == ("bounce", "not sent: given up by cli:root: wrong price")


def test_file_sent_files_under_the_month_making_its_folder_once_and_accepts_gone_already(tmp_path):
    from mailwarden.store.spool.files import archive_dir, file_sent

    spool = tmp_path / "spool"
    spool.mkdir()
    for name in ("20261207-a.eml", "20261208-b.eml"):
        (spool / name).write_bytes(name.encode())
        file_sent(spool, name)  # the first makes messages/2026/12, the second finds it
    month = archive_dir(spool) / "2026" / "12"
    assert sorted(p.name for p in month.iterdir()) == ["20261207-a.eml", "20261208-b.eml"]
    assert (month / "20261208-b.eml").read_bytes() == b"20261208-b.eml"
    assert not list(spool.iterdir())
    file_sent(spool, "20261207-a.eml")  # filed already (a record made twice): nothing to do
    file_sent(spool, "20270101-c.eml")  # never there, in a month without a folder
    assert not (archive_dir(spool) / "2027").exists()


def test_a_digest_is_taken_of_what_was_written(tmp_path):
    """The digest is of the bytes in the file, so an intact file always passes its check."""
    from mailwarden.store.spool import damage as check
    from mailwarden.store.spool import write_blobs

    blobs = write_blobs(tmp_path, [b"Subject: a\r\n", memoryview(b"\r\nbody\r\n")])
    assert blobs.digest is not None and check(tmp_path / blobs.message, blobs.digest) is None
    (tmp_path / blobs.message).write_bytes(b"Subject: b\r\n\r\nbody\r\n")
    assert "altered" in (check(tmp_path / blobs.message, blobs.digest) or "")
    assert check(tmp_path / blobs.message, None) is None  # a row from before digests: nothing to compare
