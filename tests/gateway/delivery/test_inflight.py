"""A record the store cannot take is kept and written again, never dropped (on a real SQLite
store whose write lock another connection holds)."""

from __future__ import annotations

import asyncio
import errno
import sqlite3

import pytest
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.gateway.delivery import inflight
from mailwarden.gateway.delivery.inflight import InFlight, store_unavailable
from mailwarden.store.spool import retry_later
from sqlalchemy.exc import IntegrityError, OperationalError

from .conftest import row, spooled


def test_what_counts_as_a_store_that_cannot_write():
    assert store_unavailable(OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked")))
    assert store_unavailable(sqlite3.OperationalError("database or disk is full"))
    assert store_unavailable(OSError(errno.ENOSPC, "No space left on device"))
    assert not store_unavailable(FileNotFoundError(errno.ENOENT, "gone"))  # a spool file: not the store
    assert not store_unavailable(ConnectionAbortedError("the gateway is stopping"))
    assert not store_unavailable(IntegrityError("INSERT", None, sqlite3.IntegrityError("UNIQUE")))
    assert not store_unavailable(ValueError("a bug"))


async def test_a_record_the_store_refuses_waits_and_is_written_once_it_can(store, monkeypatch):
    monkeypatch.setattr(inflight, "RECORD_RETRY_INITIAL", 0.05)
    item = spooled(store)
    writer = BatchWriter(store.engine, lock_wait=0.05)
    writer.start()
    work = InFlight(store=store, writer=writer, retry_initial=30.0)
    lock = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        record = asyncio.create_task(work.record(lambda s: retry_later(session=s, item=item, error="later",
                                                                       retry_initial=30.0)))
        while work.refused_records < 2:
            assert not record.done(), record
            await asyncio.sleep(0.02)
        assert not work.writable.is_set() and row(store, item.id)["attempts"] == 0
    finally:
        lock.rollback()
        lock.close()
    await record
    assert work.writable.is_set() and row(store, item.id)["attempts"] == 1
    await writer.stop()


async def test_a_record_that_is_wrong_is_not_retried(store):
    writer = BatchWriter(store.engine)
    writer.start()
    work = InFlight(store=store, writer=writer, retry_initial=30.0)

    def bad(_s):  # type: ignore[no-untyped-def]
        raise ValueError("a bug")
    with pytest.raises(ValueError):
        await work.record(bad)
    assert work.refused_records == 0 and work.writable.is_set()
    await writer.stop()
