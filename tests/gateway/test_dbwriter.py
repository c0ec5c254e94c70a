"""Group commit: jobs share a commit; a failing job rolls back alone; nothing waits for ever."""

import asyncio
import json

import pytest
from mailwarden.gateway.config import Store
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.store import open_store
from mailwarden.store.models import AuditEvent
from sqlmodel import Session, select


@pytest.fixture
def store(tmp_path):
    st = open_store(Store(url=f"sqlite:///{tmp_path / 'db'}", data_dir=tmp_path, audit_key_file=tmp_path / "k"))
    yield st
    st.close()


def _ok(store):
    """A job factory: job n appends an "ok" event and returns its seq."""
    return lambda n: lambda s: store.audit.append(actor="t", action="ok", session=s, n=n).seq


async def test_batch_with_a_failing_job(store):
    w = BatchWriter(store.engine)
    w.start()

    good = _ok(store)

    def bad(s):
        store.audit.append(actor="t", action="doomed", session=s)
        raise ValueError("no")

    results = await asyncio.gather(w.run(good(1)), w.run(bad), w.run(good(2)), return_exceptions=True)
    await w.stop()
    assert results[0] == 1 and isinstance(results[1], ValueError) and results[2] == 2
    with Session(store.engine) as s:
        assert [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.seq))] == ["ok", "ok"]
    assert store.audit.verify().ok  # the rolled-back event left no hole and no stale chain head


async def test_plain_jobs_fail_alone_and_mix_with_orm_jobs(store):
    """Plain jobs (raw SQL under a plain SAVEPOINT) and ORM jobs (nested transactions) in one
    batch: a failing job of either kind leaves nothing behind, the others commit."""
    from mailwarden.store.rawsql import raw

    w = BatchWriter(store.engine)
    w.start()

    good = _ok(store)

    def bad_plain(s):
        store.audit.append(actor="t", action="doomed", session=s)
        raw(s).execute("INSERT INTO no_such_table VALUES (1)")

    def orm(s):
        s.add(AuditEvent(seq=999, actor="t", action="orm", prev_mac="x", mac="y"))
        s.flush()
        raise ValueError("no")

    results = await asyncio.gather(w.run(good(1), plain=True), w.run(bad_plain, plain=True), w.run(orm),
                                   w.run(good(2)), w.run(good(3), plain=True), return_exceptions=True)
    await w.stop()
    assert results[0] == 1 and results[3] == 2 and results[4] == 3, results
    assert isinstance(results[1], Exception) and isinstance(results[2], ValueError)
    with Session(store.engine) as s:
        assert [e.action for e in s.exec(select(AuditEvent).order_by(AuditEvent.seq))] == ["ok", "ok", "ok"]
    assert store.audit.verify().ok


@pytest.mark.postgres
async def test_writer_replaces_a_connection_the_database_dropped(pg_database, tmp_path):
    """The writer holds one connection from batch to batch; when the server ends it (a restart,
    an idle timeout), the next batch takes a new one instead of failing for ever."""
    from sqlalchemy import text

    st = open_store(Store(url=pg_database, data_dir=tmp_path, audit_key_file=tmp_path / "k"))
    w = BatchWriter(st.engine)
    w.start()
    try:
        def ok(s):
            return st.audit.append(actor="t", action="ok", session=s).seq

        assert await w.run(ok, plain=True) == 1
        assert w._conn is not None  # noqa: SLF001
        pid = w._conn.connection.dbapi_connection.info.backend_pid  # noqa: SLF001
        with st.engine.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert await w.run(ok, plain=True) == 2
        assert await w.run(ok) == 3
        assert st.audit.verify().ok
    finally:
        await w.stop()
        st.close()


@pytest.mark.parametrize("plain", [True, False])
async def test_a_full_disk_fails_the_whole_batch_and_stores_nothing(store, plain):
    """SQLite rolls back the whole transaction on a full disk, not just the failing job's
    SAVEPOINT: no job of that batch may be reported done (a 250 for a message not stored)."""
    from mailwarden.store.rawsql import raw

    w = BatchWriter(store.engine)
    w.start()

    def limit(s):  # a "disk" with room for two more pages, on the writer's own connection
        db = raw(s)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 2}")

    good = _ok(store)

    def huge(s):
        store.audit.append(actor="t", action="huge", session=s, blob="x" * 2_000_000)

    await w.run(limit, plain=True)
    results = await asyncio.gather(w.run(good(1), plain=True), w.run(huge, plain=plain), w.run(good(2), plain=True),
                                   return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert await w.run(good(3), plain=True) == 1  # a new connection: the limit is gone, the chain intact
    await w.stop()
    with Session(store.engine) as s:
        assert [json.loads(e.detail).get("n") for e in s.exec(select(AuditEvent))] == [3]
    assert store.audit.verify().ok


async def test_run_after_stop_fails_fast(store):
    w = BatchWriter(store.engine)
    w.start()
    await w.stop()
    with pytest.raises(ConnectionAbortedError):
        await asyncio.wait_for(w.run(lambda s: None), 1)


def _hold_write_lock(path, seconds: float, held) -> None:  # type: ignore[no-untyped-def]
    import sqlite3
    import time

    other = sqlite3.connect(path, isolation_level=None)  # another process's writer, say
    other.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


async def test_writer_waits_for_another_writers_lock_then_commits(store, tmp_path):
    import threading
    import time

    held = threading.Event()
    t = threading.Thread(target=_hold_write_lock, args=(tmp_path / "db", 0.4, held))
    t.start()
    held.wait(5)
    w = BatchWriter(store.engine)
    w.start()
    started = time.monotonic()
    seq = await w.run(lambda s: store.audit.append(actor="t", action="after-lock", session=s).seq)
    waited = time.monotonic() - started
    await w.stop()
    t.join()
    assert seq == 1 and waited >= 0.3  # it waited for the lock (and did not fail at once)
    assert store.audit.verify().ok


async def test_writer_gives_up_on_a_lock_held_too_long(store, tmp_path):
    import threading

    held = threading.Event()
    t = threading.Thread(target=_hold_write_lock, args=(tmp_path / "db", 1.5, held))
    t.start()
    held.wait(5)
    w = BatchWriter(store.engine, lock_wait=0.3)
    w.start()
    with pytest.raises(Exception, match="locked"):
        await w.run(lambda s: store.audit.append(actor="t", action="never", session=s))
    await w.stop()
    t.join()


async def test_linger_gathers_jobs_into_one_commit(store):
    """With ``linger`` the jobs queued a moment after the first share its commit."""
    commits: list[int] = []
    w = BatchWriter(store.engine, linger=0.2, before_commit=lambda: commits.append(1))
    w.start()
    job = _ok(store)

    async def later(n: int):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.02 * n)
        return await w.run(job(n))

    seqs = await asyncio.gather(*(later(n) for n in range(3)))
    await w.stop()
    assert sorted(seqs) == [1, 2, 3] and commits == [1]


async def test_stopping_while_lingering_runs_the_jobs_taken(store):
    """A writer stopped while its batch lingers still runs (and settles) the jobs it took."""
    w = BatchWriter(store.engine, linger=5.0)
    w.start()
    pending = asyncio.ensure_future(w.run(_ok(store)(1)))
    await asyncio.sleep(0.05)  # taken off the queue, lingering
    await asyncio.wait_for(w.stop(), 10)
    assert await asyncio.wait_for(pending, 1) == 1
