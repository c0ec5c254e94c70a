"""The Sent-copy stage: copies waiting together go in one APPEND; a refused batch is retried
copy by copy, so one bad copy does not hold the others back."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.gateway.delivery.inflight import InFlight
from mailwarden.gateway.delivery.relay import Relay
from mailwarden.gateway.delivery.sentcopy import UNRECORDED_APPENDS, SentCopies
from mailwarden.store.spool import DueItem
from mailwarden.store.spool.files import RETRY_MARK
from mailwarden.store.spool.rows import next_stage

from .conftest import FakeIMAP, delivery_config, row, spooled


@pytest.fixture
def copies(tmp_path, store):  # type: ignore[no-untyped-def]
    cfg = delivery_config(tmp_path)
    work = InFlight(store=store, writer=BatchWriter(store.engine), retry_initial=30.0)
    return SentCopies(work=work, imap=FakeIMAP(), upstream=cfg.upstream, store=store)  # type: ignore[arg-type]


def item(copies: SentCopies, name: str, *, attempts: int = 0, verify: bool = False) -> DueItem:
    it = spooled(copies.work.store, stage="append", attempts=attempts, ref=f"ref-{name}")
    it.verify = verify
    copies.imap.names[it.blob] = name  # type: ignore[attr-defined]
    return it


@pytest.fixture(autouse=True)
def named(copies):  # type: ignore[no-untyped-def]
    copies.imap.names = {}


async def run_copies(copies: SentCopies, items: list[DueItem]) -> None:
    """Feed ``items`` to the stage until it is done with them, and check it let go of them all."""
    copies.work.writer.start()
    for it in items:
        copies.work.take(it)
        copies.queue.put_nowait(it)
    task = asyncio.create_task(copies.run())
    for _ in range(300):
        await asyncio.sleep(0.01)
        if not copies.work.ids:
            break
    task.cancel()
    await asyncio.gather(task, *copies.work.finishing, return_exceptions=True)
    await copies.work.writer.stop()
    assert copies.work.busy == 0
    for _ in range(UNRECORDED_APPENDS):  # every permit given back
        assert not copies.unrecorded.locked()
        await copies.unrecorded.acquire()


def calls(copies: SentCopies) -> list[list[str]]:
    return [[copies.imap.names[n] for n in call] for call in copies.imap.calls]  # type: ignore[attr-defined]


def archived(copies: SentCopies) -> list[str]:
    return sorted(copies.imap.names[p.name]  # type: ignore[attr-defined]
                  for p in (copies.work.store.data_dir / "messages").rglob("*.eml"))


def stages(copies: SentCopies, items: list[DueItem]) -> list[str]:
    return [row(copies.work.store, it.id)["stage"] for it in items]


async def test_a_refused_batch_is_retried_copy_by_copy(copies):
    items = [item(copies, "a"), item(copies, "bad"), item(copies, "c")]
    copies.imap.bad = {items[1].blob}
    await run_copies(copies, items)
    assert calls(copies) == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]
    assert stages(copies, items) == ["done", "append", "done"]  # only the refused copy waits for another try
    refused = row(copies.work.store, items[1].id)
    assert refused["attempts"] == 1 and refused["last_error"].startswith("Sent copy pending: upstream refused")
    assert archived(copies) == ["a", "c"]


async def test_a_deleted_spool_file_is_shunted_alone_with_the_reason(copies):
    items = [item(copies, "a"), item(copies, "gone"), item(copies, "c")]
    (copies.work.store.spool_dir / items[1].blob).unlink()
    await run_copies(copies, items)
    assert calls(copies) == [["a", "c"]]
    assert stages(copies, items) == ["done", "shunt:append", "done"]
    assert row(copies.work.store, items[1].id)["last_error"].startswith("Sent copy not filed: the spool file is missing")
    assert archived(copies) == ["a", "c"]


async def test_an_unreadable_spool_file_without_a_digest_fails_alone_and_counts_towards_the_shunt(copies):
    """A row spooled before digests were recorded: nothing to compare, the old way."""
    items = [item(copies, "a"), item(copies, "gone"), item(copies, "c")]
    items[1].digest = None
    (copies.work.store.spool_dir / items[1].blob).unlink()
    await run_copies(copies, items)
    assert calls(copies) == [["a", "c"]]
    assert stages(copies, items) == ["done", "append", "done"]
    assert row(copies.work.store, items[1].id)["last_error"].startswith("internal error (1/3): FileNotFoundError")
    assert archived(copies) == ["a", "c"]


async def test_a_copy_tried_before_is_looked_for_first(copies):
    """A copy whose earlier APPEND may have gone through (tried before, or found by a new
    process) is looked for by its ref; the one there is recorded, not stored again."""
    copies.imap.there = {"ref-b"}
    items = [item(copies, "a"), item(copies, "b", attempts=1), item(copies, "c", verify=True)]
    await run_copies(copies, items)
    assert copies.imap.asked == [["ref-b", "ref-c"]]
    assert calls(copies) == [["a", "c"]] and stages(copies, items) == ["done"] * 3
    assert archived(copies) == ["a", "b", "c"]


async def test_a_copy_spooled_without_a_ref_is_looked_for_by_its_message_id(copies):
    """Spooled before the gateway tagged copies with a ref: its Message-ID says whether it is there."""
    def old(name: str) -> DueItem:
        it = spooled(copies.work.store, stage="append", attempts=1,
                     body=f"Message-ID: <{name}@company.test>\r\nSubject: x\r\n\r\nx\r\n".encode())
        copies.imap.names[it.blob] = name  # type: ignore[attr-defined]
        return it
    copies.imap.there = {"<b@company.test>"}
    items = [old("a"), old("b")]
    await run_copies(copies, items)
    assert copies.imap.asked == [["Message-ID: <a@company.test>", "Message-ID: <b@company.test>"]]
    assert calls(copies) == [["a"]] and stages(copies, items) == ["done"] * 2
    assert archived(copies) == ["a", "b"]


async def test_copies_due_since_before_the_start_are_looked_for(tmp_path, store):
    """A new deliverer does not know whether the one before it stored a copy it had not yet
    recorded: copies due since before it started are looked for; later ones are not."""
    cfg = delivery_config(tmp_path)
    relay = Relay(store=store, upstream=cfg.upstream, outbound=cfg.outbound, writer=BatchWriter(store.engine))  # type: ignore[arg-type]
    old, new = spooled(store, stage="append"), spooled(store, stage="append")
    old.next_attempt = relay.started - timedelta(seconds=5)
    new.next_attempt = relay.started + timedelta(seconds=1)
    relay.load_due = lambda busy: [old, new]  # type: ignore[method-assign]
    task = asyncio.create_task(relay.dispatch())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert (old.verify, new.verify) == (True, False)
    assert [relay.copies.queue.get_nowait().id for _ in range(2)] == [old.id, new.id]


def test_a_retry_of_some_recipients_files_no_second_copy_and_customers_never_see_the_ref(tmp_path, store):
    """The item split off to retry some recipients is done once relayed: the message's Sent
    copy is the first delivery's.  Exposed tag headers leave the ref out, so that a copy the
    upstream keeps of what it sent cannot pass for the gateway's."""
    cfg = delivery_config(tmp_path, outbound={"expose_headers": True})
    relay = Relay(store=store, upstream=cfg.upstream, outbound=cfg.outbound, writer=BatchWriter(store.engine))  # type: ignore[arg-type]
    first = spooled(store, stage="append", ref="ref-m")
    retry = dataclasses.replace(first, blob=f"m{RETRY_MARK}0a1b2c3d.eml")
    assert (next_stage(first), next_stage(retry)) == ("append", "done")
    assert relay.exposed(first) == b"X-Mailwarden-Operator: zhang\r\n"
