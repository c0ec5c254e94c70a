"""A delivered message is never delivered again because its new state could not be written.

The upstream is up; the store cannot record anything: another connection holds SQLite's write
lock for longer than the writer waits for it (as a backup tool, an admin's long transaction or a
stuck process would).  The relay sends what it has in hand, cannot record the 250s, and must
pause and back off instead of sending those messages again; once the lock is gone it records
them and goes on.  Counted at the customer's mailbox on the real Dovecot.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from mailwarden.store.models import SpoolItem
from sqlmodel import Session, select

from tests.integration.conftest import SHARED, running_gateway, token
from tests.reliability.rig import CUSTOMER, message, settled, subjects

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

N = 10
LOCKED_FOR = 8.0  # seconds the store stays unwritable once the relay has sent
LOCK_WAIT = 1.0  # seconds the writer waits for the lock before a batch fails (30 s in production)
RELAY_PENDING = 2 * 4  # results the relay may hold unrecorded at once: two per relay connection (4)


def send(gw, run: str) -> list[int]:  # type: ignore[no-untyped-def]
    codes = []
    with gw.client() as c:
        for i in range(N):
            c.mail("x@x.example")
            c.rcpt("max@buyer.test")
            codes.append(c.data(message(f"{run}-{i}"))[0])
    return codes


def items(gw) -> list[SpoolItem]:  # type: ignore[no-untyped-def]
    with Session(gw.store.engine) as s:
        return list(s.exec(select(SpoolItem).where(SpoolItem.stage != "notice")).all())


async def wait(predicate, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_store_that_cannot_record_never_makes_the_relay_send_again(upstream, tmp_path):
    up = upstream
    run = token()
    # retry_initial 3 s: after the first refused attempt the items wait long enough for the lock
    # to be taken before they come due again.
    async with running_gateway(up, tmp_path, retry_initial="3s") as gw:
        relay = gw.gw.relay
        assert relay is not None
        gw.gw.writer.lock_wait = LOCK_WAIT
        await asyncio.to_thread(up.stop_smtp)
        lock = None
        try:
            assert await asyncio.to_thread(send, gw, run) == [250] * N
            await wait(lambda: all(i.attempts >= 1 for i in items(gw)) and len(items(gw)) == N,
                       "the first (refused) attempt of each message to be recorded")
            lock = sqlite3.connect(str(gw.store.engine.url.database), isolation_level=None, timeout=30)
            lock.execute("BEGIN EXCLUSIVE")  # the store can no longer write; it can still be read
        finally:
            await asyncio.to_thread(up.start_smtp)
        try:
            await wait(lambda: subjects(up.fetch_all(CUSTOMER), run), "a first send while the store is locked", 20)
            paused_at = time.monotonic()
            while time.monotonic() - paused_at < LOCKED_FOR:
                got = subjects(await asyncio.to_thread(up.fetch_all, CUSTOMER), run)
                assert set(got.values()) <= {1}, f"delivered again while the store was unwritable: {got}"
                await asyncio.sleep(0.5)
            sent_while_locked = len(got)
            refused = relay.work.refused_records
        finally:
            assert lock is not None
            lock.rollback()
            lock.close()
        assert sent_while_locked >= 1, "nothing was sent while the store was locked: the fault was not exercised"
        # Backing off, not spinning: each result kept is written again after 0.5, 1, 2, 4 s …
        assert refused <= 8 * RELAY_PENDING, f"{refused} refused records in {LOCKED_FOR:g} s: the relay spins"

        delivered = await asyncio.to_thread(settled, up, CUSTOMER, run, want=N)
        assert len(delivered) == N and set(delivered.values()) == {1}, delivered
        sent = await asyncio.to_thread(settled, up, SHARED, run, "Sent", want=N)
        assert len(sent) == N and set(sent.values()) == {1}, sent
        await wait(lambda: {i.stage for i in items(gw)} == {"done"}, "every item to be recorded done")
        assert relay.work.writable.is_set()
        assert gw.store.audit.verify().ok
