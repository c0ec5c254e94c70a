"""The append stage: Sent copies waiting together go in one APPEND; a refused batch is
retried copy by copy, so one bad copy does not hold the others back."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from mailwarden.gateway.delivery import sentcopy as appendstage
from mailwarden.gateway.config import config_from_dict
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.gateway.delivery.relay import Relay
from mailwarden.gateway.server import SECTIONS
from mailwarden.gateway.upstream.imap import Refused
from mailwarden.store import open_store
from mailwarden.store.spool import DueItem


class FakeIMAP:
    """Records each APPEND; refuses any that holds the copy named ``bad`` (all or none, as
    MULTIAPPEND is)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.there: set[str] = set()  # refs of copies in the folder already
        self.asked: list[list[str]] = []

    async def stored(self, folder, refs):  # type: ignore[no-untyped-def]
        self.asked.append(refs)
        return self.there & set(refs)

    async def append_many(self, folder, entries):  # type: ignore[no-untyped-def]
        names = [src.path.name for src, _flags, _kw in entries]
        self.calls.append(names)
        if "bad.eml" in names:
            exc = Refused("upstream refused APPEND to 'Sent': NO too big")
            exc.stored = 0  # type: ignore[attr-defined]
            raise exc

    async def close(self) -> None:
        pass


@pytest.fixture
def relay(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "pw").write_text("secret\n")
    cfg = config_from_dict({
        "company": {"name": "Bright Lighting", "domains": ["company.test"]},
        "upstream": {"imap": "localhost:1", "imap_tls": "none", "smtp": "localhost:1", "smtp_tls": "none",
                     "username": "sales@company.test", "password_file": "pw"},
        "listen": {"smtp": "127.0.0.1:0"}, "store": {"data_dir": "data"}, "outbound": {}, "rules": {},
    }, tmp_path / "mailwarden.toml", SECTIONS)
    assert cfg.store is not None and cfg.upstream is not None and cfg.outbound is not None
    store = open_store(cfg.store)
    writer = BatchWriter(store.engine)
    r = Relay(store=store, upstream=cfg.upstream, outbound=cfg.outbound, writer=writer)
    r.imap = FakeIMAP()  # type: ignore[assignment]
    yield r
    store.close()


def item(relay: Relay, n: int, name: str, *, attempts: int = 0, verify: bool = False) -> DueItem:
    (relay.store.spool_dir / f"{name}.eml").write_bytes(b"Subject: x\r\n\r\nx\r\n")
    now = datetime.now(timezone.utc)
    return DueItem(n, n, f"{name}.eml", "sales@company.test", '["max@buyer.test"]', "zhang", "$mw_op_zhang",
                   f"X-Mailwarden-Operator: zhang\r\nX-Mailwarden-Ref: ref-{name}\r\n", "", "append", attempts,
                   now, now, None, verify)


async def run_appender(relay: Relay, items: list[DueItem]) -> list[int]:
    """Feed ``items`` to the append stage until it is done with them; the ids it retries later."""
    relay.writer.start()
    retried: list[int] = []

    async def retry_later(item, error):  # type: ignore[no-untyped-def]
        retried.append(item.id)

    relay._retry_later = retry_later
    for it in items:
        relay._in_flight.add(it.id)
        relay._appends.put_nowait(it)
    task = asyncio.create_task(relay._appender())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if not relay._in_flight:
            break
    task.cancel()
    await asyncio.gather(task, *relay._finishing, return_exceptions=True)
    await relay.writer.stop()
    assert relay._busy == 0 and relay._unrecorded._value == appendstage.UNRECORDED_APPENDS
    return retried


def archived(relay: Relay) -> list[str]:
    return sorted(p.name for p in (relay.store.data_dir / "messages").rglob("*.eml"))


async def test_a_refused_batch_is_retried_copy_by_copy(relay):
    retried = await run_appender(relay, [item(relay, 1, "a"), item(relay, 2, "bad"), item(relay, 3, "c")])
    assert relay.imap.calls == [["a.eml", "bad.eml", "c.eml"], ["a.eml"], ["bad.eml"], ["c.eml"]]
    assert retried == [2]  # only the refused copy waits for another try
    assert archived(relay) == ["a.eml", "c.eml"]


async def test_an_unreadable_spool_file_fails_alone(relay):
    items = [item(relay, 1, "a"), item(relay, 2, "gone"), item(relay, 3, "c")]
    (relay.store.spool_dir / "gone.eml").unlink()
    retried = await run_appender(relay, items)
    assert relay.imap.calls == [["a.eml", "c.eml"]] and retried == [2]
    assert archived(relay) == ["a.eml", "c.eml"]


async def test_a_copy_tried_before_is_looked_for_first(relay):
    """A copy whose earlier APPEND may have gone through (tried before, or found by a new
    process) is looked for by its ref; the one there is recorded, not stored again."""
    relay.imap.there = {"ref-b"}
    items = [item(relay, 1, "a"), item(relay, 2, "b", attempts=1), item(relay, 3, "c", verify=True)]
    retried = await run_appender(relay, items)
    assert relay.imap.asked == [["ref-b", "ref-c"]]
    assert relay.imap.calls == [["a.eml", "c.eml"]] and retried == []
    assert archived(relay) == ["a.eml", "b.eml", "c.eml"]


async def test_copies_due_since_before_the_start_are_looked_for(relay):
    """A new deliverer does not know whether the one before it stored a copy it had not yet
    recorded: copies due since before it started are looked for; later ones are not."""
    from datetime import timedelta

    old, new = item(relay, 1, "old"), item(relay, 2, "new")
    old.next_attempt = relay._started - timedelta(seconds=5)
    new.next_attempt = relay._started + timedelta(seconds=1)
    relay._load_due = lambda busy: [old, new]
    task = asyncio.create_task(relay._dispatch())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert (old.verify, new.verify) == (True, False)
    assert [relay._appends.get_nowait().id for _ in range(2)] == [1, 2]


def test_a_retry_of_some_recipients_files_no_second_copy_and_customers_never_see_the_ref(relay):
    """The item split off to retry some recipients is done once relayed: the message's Sent
    copy is the first delivery's.  Exposed tag headers leave the ref out, so that a copy the
    upstream keeps of what it sent cannot pass for the gateway's."""
    import dataclasses

    from mailwarden.gateway.delivery.relay import RETRY_MARK, _next_stage

    first = item(relay, 1, "m")
    retry = dataclasses.replace(first, blob=f"m{RETRY_MARK}0a1b2c3d.eml")
    assert (_next_stage(first), _next_stage(retry)) == ("append", "done")
    relay.outbound = dataclasses.replace(relay.outbound, expose_headers=True)
    assert relay._exposed(first) == b"X-Mailwarden-Operator: zhang\r\n"
