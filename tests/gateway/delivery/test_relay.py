"""The relay's lifecycle decisions, against a recording stand-in for the upstream SMTP that
answers as told: retry, bounce after ``[outbound] retry_max_age`` (once), shunt after
unexpected errors, an operator's bounce, the quarantine timeout."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json

import pytest
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.gateway.delivery.relay import Relay
from mailwarden.gateway.upstream.smtp import SendResult
from mailwarden.gateway.upstream.source import PermanentFailure, TemporaryFailure
from mailwarden.store.models import AuditEvent, Message
from mailwarden.store.spool.queue import give_up
from sqlalchemy import text
from sqlmodel import Session, select

from .conftest import FakeIMAP, delivery_config, row, spooled


class Sink:
    """Records each send; answers with the next of ``answers`` (an exception to raise, or
    None for 250), the last one again when they run out."""

    def __init__(self, *answers: BaseException | None) -> None:
        self.answers = list(answers) or [None]
        self.sent: list[list[str]] = []

    async def send(self, mail_from, rcpts, data):  # type: ignore[no-untyped-def]
        self.sent.append(list(rcpts))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer is not None:
            raise answer
        return SendResult(refused={})

    async def close(self) -> None:
        pass


def make_relay(tmp_path, store, sink: Sink, **kw) -> Relay:  # type: ignore[no-untyped-def]
    cfg = delivery_config(tmp_path, outbound={"retry_initial": "0.05s", "retry_max_age": "1h", "relay_connections": 1})
    relay = Relay(store=store, upstream=cfg.upstream, outbound=cfg.outbound, writer=BatchWriter(store.engine), **kw)  # type: ignore[arg-type]
    relay.smtp = [sink]  # type: ignore[list-item]
    relay.imap = relay.copies.imap = FakeIMAP()  # type: ignore[assignment]
    return relay


async def run_until(relay: Relay, done, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Run the relay until ``done()`` holds (then a little longer: would anything follow?)."""
    relay.writer.start()
    await relay.start()
    try:
        for _ in range(int(timeout / 0.05)):
            await asyncio.sleep(0.05)
            if done():
                break
        else:
            raise AssertionError("the relay did not get there in time")
        await asyncio.sleep(0.3)
    finally:
        await relay.stop(grace=5)
        await relay.writer.stop()


def events(store, action: str) -> list[dict]:  # type: ignore[no-untyped-def]
    with Session(store.engine) as s:
        return [json.loads(e.detail) for e in s.exec(select(AuditEvent).where(AuditEvent.action == action)).all()]


def bounces(relay: Relay) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m, policy=email.policy.default)  # type: ignore[misc]
            for folder, m, kw in relay.imap.appended if "$mw_bounce" in kw and folder == "INBOX"]  # type: ignore[attr-defined]


async def test_a_temporary_failure_of_a_young_message_is_retried_with_its_error(tmp_path, store):
    sink = Sink(TemporaryFailure("421 4.7.0 try again later"), None)
    relay = make_relay(tmp_path, store, sink)
    item = spooled(store)
    await run_until(relay, lambda: row(store, item.id)["stage"] == "done")
    assert len(sink.sent) == 2 and not bounces(relay)
    assert row(store, item.id)["attempts"] == 1 and "421 4.7.0" in row(store, item.id)["last_error"]


async def test_a_message_older_than_the_retry_age_that_fails_temporarily_is_bounced_once(tmp_path, store):
    sink = Sink(TemporaryFailure("421 4.7.0 try again later"))
    relay = make_relay(tmp_path, store, sink)
    item = spooled(store, age=2 * 3600, body=b"Subject: Quote 17\r\nTo: max@buyer.test\r\n\r\nthe prices\r\n")
    await run_until(relay, lambda: row(store, item.id)["stage"] == "bounced")
    assert len(sink.sent) == 1, "tried once, then given up"
    [report] = bounces(relay)
    assert "Quote 17" in report["Subject"] and report["X-Mailwarden-Operator"] == "zhang"
    assert "421 4.7.0" in row(store, item.id)["last_error"]
    assert [e["message"] for e in events(store, "send.bounced")] == [item.message_id]
    with Session(store.engine) as s:
        assert s.get(Message, item.message_id).status == "bounced"  # type: ignore[union-attr]


async def test_an_unexpected_error_is_retried_then_shunted_and_never_offered_again(tmp_path, store):
    sink = Sink(RuntimeError("a bug in the gateway"))
    relay = make_relay(tmp_path, store, sink)
    item = spooled(store)
    await run_until(relay, lambda: row(store, item.id)["stage"] == "shunt:relay")
    assert len(sink.sent) == 3  # SHUNT_AFTER tries, no more
    r = row(store, item.id)
    assert r["last_error"] == "internal error (3/3): RuntimeError: a bug in the gateway"
    [shunted] = events(store, "send.shunted")
    assert shunted["message"] == item.message_id and "RuntimeError" in shunted["error"]
    assert not bounces(relay)


async def test_an_operators_bounce_is_reported_and_the_message_never_sent(tmp_path, store):
    sink = Sink()
    relay = make_relay(tmp_path, store, sink)
    item = spooled(store)
    with Session(store.engine) as s:
        give_up(session=s, audit=store.audit, message_id=item.message_id, actor="cli:root", reason="customer left")
    await run_until(relay, lambda: row(store, item.id)["stage"] == "bounced")
    assert sink.sent == []
    [report] = bounces(relay)
    assert "customer left" in report.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_a_bounce_the_inbox_cannot_take_yet_waits_without_sending_again(tmp_path, store):
    sink = Sink(PermanentFailure("550 5.1.1 no such user"))
    relay = make_relay(tmp_path, store, sink)
    relay.imap.down = True  # type: ignore[attr-defined]
    item = spooled(store)
    await run_until(relay, lambda: row(store, item.id)["stage"] == "bounce" and not relay.work.ids)
    assert "550 5.1.1" in row(store, item.id)["last_error"] and not bounces(relay)
    relay = make_relay(tmp_path, store, sink)  # the INBOX is back; the bounce is due now
    with Session(store.engine) as s:
        s.execute(text("UPDATE spool SET next_attempt = created_at WHERE id = :id"), {"id": item.id})
        s.commit()
    await run_until(relay, lambda: row(store, item.id)["stage"] == "bounced")
    assert len(sink.sent) == 1 and len(bounces(relay)) == 1


@pytest.mark.parametrize("action", ["release", "reject"])
async def test_held_mail_nobody_reviewed_in_time_is_released_or_rejected(tmp_path, store, action):
    sink = Sink()
    relay = make_relay(tmp_path, store, sink, held_timeout=60.0, held_timeout_action=action)
    held = spooled(store, stage="held", age=120)
    young = spooled(store, stage="held")
    if action == "release":
        await run_until(relay, lambda: notices(store, held.message_id) == ["done", "done"])  # the message, the notice
        assert sink.sent == [["max@buyer.test"]] and row(store, held.id)["stage"] == "done"
        texts = [email.message_from_bytes(m.read_bytes(), policy=email.policy.default)
                 for m in (store.data_dir / "messages").rglob("*.eml")]
        [notice] = [m for m in texts if m["X-Mailwarden-Notice"] and "released" in m["X-Mailwarden-Notice"]]
        text_ = notice.get_content()  # type: ignore[attr-defined]
        assert "was released by the gateway" in text_ and "Note: nobody reviewed it in time" in text_
    else:
        await run_until(relay, lambda: notices(store, held.message_id) == ["done"])
        assert sink.sent == [] and row(store, held.id)["stage"] == "rejected"
        [notice] = [m for m in (store.data_dir / "messages").rglob("*.eml")]
        text_ = email.message_from_bytes(notice.read_bytes(), policy=email.policy.default).get_content()  # type: ignore[attr-defined]
        assert "will not be sent.\nReason: nobody reviewed it in time" in text_ and "max@buyer.test" in text_
    assert row(store, young.id)["stage"] == "held"
    [ev] = events(store, f"quarantine.{action}")
    assert ev["message"] == held.message_id


def notices(store, message_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    with Session(store.engine) as s:
        return [r[0] for r in s.execute(text("SELECT stage FROM spool WHERE message_id = :m AND stage != 'rejected'"),
                                        {"m": message_id})]


async def test_the_relay_holds_its_upstream_connections_within_the_shared_budget(tmp_path, store):
    """Each SMTP sender and the Sent-copy worker hold one lease of the process's connection
    budget; a budget smaller than the senders wanted leaves the extra ones waiting."""
    from mailwarden.gateway.upstream.budget import ConnectionBudget

    budget = ConnectionBudget({"imap": 1, "smtp": 1})
    cfg = delivery_config(tmp_path, outbound={"retry_initial": "0.05s", "relay_connections": 3})
    relay = Relay(store=store, upstream=cfg.upstream, outbound=cfg.outbound,  # type: ignore[arg-type]
                  writer=BatchWriter(store.engine), budget=budget)
    relay.smtp = [Sink(), Sink(), Sink()]  # type: ignore[list-item]
    relay.imap = relay.copies.imap = FakeIMAP()  # type: ignore[assignment]
    relay.writer.start()
    await relay.start()
    try:
        await asyncio.sleep(0.2)
        use = budget.snapshot()
        assert (use["smtp"].in_use, use["smtp"].waiting) == (1, 2)
        assert (use["imap"].in_use, use["imap"].holders) == (1, ("relay Sent copies",))
    finally:
        await relay.stop(grace=1)
        await relay.writer.stop()
    after = budget.snapshot()
    assert after["smtp"].in_use == after["smtp"].waiting == after["imap"].in_use == 0
