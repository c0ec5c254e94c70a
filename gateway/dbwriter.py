"""Group commit: the database writes of many connections share one transaction.

Every write the gateway makes (spool entries, delivery records, audit events)
is a *job*: a function of a session that adds rows.  One task collects the jobs
queued meanwhile, runs them on one thread, each inside its own SAVEPOINT (a
failing job rolls back alone), and commits them together: one fsync for the
batch instead of one per message.  A job's caller hears of its result only
after the commit — so "250 only after the spool commit" still holds.

On SQLite the batch takes the database's write lock first.  When another
process (serve's delivery process, an admin command) holds it, the writer
retries every millisecond or two rather than leave it to SQLite's busy handler,
whose sleeps grow to 100 ms each: under load those sleeps, not the other
writer, made the tail of the time to 250 (hundreds of ms).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mailwarden.store.db import make_engine, writer_engine
from mailwarden.store.rawsql import raw
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

log = logging.getLogger(__name__)
T = TypeVar("T")
Job = Callable[[Session], Any]


class BatchWriter:
    def __init__(self, engine: Engine, *, max_batch: int = 100, linger: float = 0.0,
                 before_commit: Callable[[], None] | None = None, lock_wait: float = 30.0) -> None:
        """``linger``: seconds a batch waits after its first job for more to join it (fewer,
        larger commits: each costs an fsync), for writers whose callers are not in a hurry."""
        self._own: Engine | None = None
        if engine.dialect.name == "sqlite":  # its own connection, on which SQLite does not wait: we do
            self._own = make_engine(engine.url.render_as_string(hide_password=False), busy_timeout_ms=0)
        self.engine = writer_engine(self._own or engine)
        self.lock_wait = lock_wait
        self.before_commit = before_commit
        self.max_batch = max_batch
        self.linger = linger
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailwarden-db")
        self._queue: asyncio.Queue[tuple[Job, bool, asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: Connection | None = None  # the writer thread's own, held from batch to batch

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="db-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # Wait for a batch in progress off the event loop, which must keep running meanwhile.
        await asyncio.to_thread(self.executor.shutdown, True)
        self._drop_connection()
        if self._own is not None:
            self._own.dispose()

    async def run(self, job: Callable[[Session], T], *, plain: bool = False) -> T:
        """Run ``job`` in the next batch; returns its result once committed.

        ``plain``: the job writes only through :mod:`mailwarden.store.rawsql` (it adds no ORM
        objects for the session to flush), so a plain SQL SAVEPOINT isolates it: a tenth of
        the cost of the ORM's nested transaction, which every other job gets."""
        assert self._queue is not None, "BatchWriter.start() first"
        if self._task is None or self._task.done():
            raise ConnectionAbortedError("the gateway is stopping")  # nobody would run the job
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, plain, fut))
        return await fut

    async def _loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            stopping = False
            if self.linger and self._queue.qsize() < self.max_batch:
                try:
                    await asyncio.sleep(self.linger)
                except asyncio.CancelledError:  # stopping: the jobs taken still run, below
                    stopping = True
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            running = loop.run_in_executor(self.executor, self._run, [(job, plain) for job, plain, _ in batch])
            try:
                if stopping:
                    raise asyncio.CancelledError
                results = await asyncio.shield(running)
            except asyncio.CancelledError:
                # Stopping.  The batch may commit anyway: tell its callers the truth, then
                # fail whatever is still queued, so nobody waits for ever.
                try:
                    results = await running
                except Exception as exc:
                    results = [(False, exc)] * len(batch)
                self._settle(batch, results)
                while not self._queue.empty():
                    _job, _plain, fut = self._queue.get_nowait()
                    if not fut.done():
                        fut.set_exception(ConnectionAbortedError("the gateway is stopping"))
                raise
            except Exception as exc:  # the executor itself failed: fail the whole batch
                results = [(False, exc)] * len(batch)
            self._settle(batch, results)

    @staticmethod
    def _settle(batch: list[tuple[Job, bool, asyncio.Future[Any]]], results: list[tuple[bool, Any]]) -> None:
        for (_job, _plain, fut), (ok, value) in zip(batch, results):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _begin(self, s: Session) -> None:
        """Begin the batch's transaction (BEGIN IMMEDIATE on SQLite: the write lock)."""
        if self._own is None:
            # A statement now (the driver begins lazily): a connection the server ended since the
            # last batch fails here, where the batch is retried on a new one, not in a job.
            s.connection().exec_driver_sql("SELECT 1")
            return
        deadline = time.monotonic() + self.lock_wait
        delay = 0.0002
        while True:
            try:
                s.connection()
                return
            except OperationalError as exc:
                if not _locked(exc) or time.monotonic() > deadline:
                    raise
                s.rollback()
                time.sleep(delay)
                delay = min(delay * 2, 0.002)

    def _session(self) -> Session:
        """A session on the writer's own connection, held from batch to batch: checking one out
        of the pool and back for every batch cost more than most batches' statements.  The
        session commits and rolls back the connection's transaction itself."""
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            self._drop_connection()
            conn = self._conn = self.engine.connect()
        return Session(bind=conn, expire_on_commit=False, join_transaction_mode="control_fully")

    def _drop_connection(self) -> None:
        """Forget the held connection (after an error it may be broken: the next batch takes a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: nothing to save
                pass

    def _run(self, jobs: list[tuple[Job, bool]]) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        try:
            s = self._session()
            try:
                self._begin(s)
            except Exception as exc:
                if _locked(exc):  # another writer held the lock past lock_wait: give up
                    raise
                # Maybe a connection the database dropped between batches: once more on a new one.
                s.close()
                self._drop_connection()
                s = self._session()
                self._begin(s)
        except Exception as exc:
            log.error("cannot start a batch of %d jobs: %s", len(jobs), exc)
            self._drop_connection()
            return [(False, exc)] * len(jobs)
        with s:
            for job, plain in jobs:
                info = dict(s.info)
                try:
                    if plain:
                        results.append((True, self._plain(s, job)))
                    else:
                        with s.begin_nested():
                            results.append((True, job(s)))
                except Exception as exc:  # this job alone is rolled back …
                    s.info.clear()  # … with what it noted on the session (e.g. the audit chain head)
                    s.info.update(info)
                    results.append((False, exc))
                    if not _in_transaction(s):
                        # … unless the database rolled back the whole transaction (SQLite does on a
                        # full disk or an I/O error): then the jobs before it are gone too, and
                        # those after it would commit alone.  Fail them all; nothing was stored.
                        log.error("the database ended a batch of %d jobs: %s", len(jobs), exc)
                        try:
                            s.rollback()
                        except Exception:  # the transaction is gone already
                            pass
                        self._drop_connection()
                        return [(False, exc)] * len(jobs)
            try:
                if not _in_transaction(s):
                    raise RuntimeError("the database ended the batch's transaction")
                if self.before_commit is not None:
                    self.before_commit()
                s.commit()
            except Exception as exc:
                log.exception("batch commit of %d jobs failed", len(jobs))
                try:
                    s.rollback()
                finally:
                    self._drop_connection()
                return [(False, exc)] * len(jobs)
        return results

    @staticmethod
    def _plain(s: Session, job: Job) -> Any:
        db = raw(s)
        db.cur.execute("SAVEPOINT mw_job")
        try:
            result = job(s)
        except BaseException:
            db.cur.execute("ROLLBACK TO SAVEPOINT mw_job")
            db.cur.execute("RELEASE SAVEPOINT mw_job")
            raise
        db.cur.execute("RELEASE SAVEPOINT mw_job")
        return result


def _in_transaction(s: Session) -> bool:
    """Whether the batch's transaction is still open on the database connection."""
    try:
        db = raw(s)
        if db.sqlite:
            return bool(db.dbapi.in_transaction)  # type: ignore[union-attr]
        return db.dbapi.info.transaction_status.name in ("INTRANS", "ACTIVE")  # type: ignore[union-attr]
    except Exception:  # the connection itself is broken
        return False


def _locked(exc: BaseException) -> bool:
    """SQLite's "database is locked" (another process holds the write lock)."""
    return isinstance(exc, OperationalError) and ("locked" in str(exc.orig) or "busy" in str(exc.orig))
