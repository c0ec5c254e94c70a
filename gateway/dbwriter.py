"""Group commit: the database writes of many connections share one transaction.

Every write the gateway makes (spool entries, delivery records, audit events)
is a *job*: a function of a session that adds rows.  One task collects the jobs
queued meanwhile, runs them on one thread, each inside its own SAVEPOINT (a
failing job rolls back alone), and commits them together: one fsync for the
batch instead of one per message.  A job's caller hears of its result only
after the commit — so "250 only after the spool commit" still holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mailwarden.store.db import writer_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session

log = logging.getLogger(__name__)
T = TypeVar("T")
Job = Callable[[Session], Any]


class BatchWriter:
    def __init__(self, engine: Engine, *, max_batch: int = 100,
                 before_commit: Callable[[], None] | None = None) -> None:
        self.engine = writer_engine(engine)
        self.before_commit = before_commit
        self.max_batch = max_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailwarden-db")
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="db-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # Wait for a batch in progress off the event loop, which must keep running meanwhile.
        await asyncio.to_thread(self.executor.shutdown, True)

    async def run(self, job: Callable[[Session], T]) -> T:
        """Run ``job`` in the next batch; returns its result once committed."""
        assert self._queue is not None, "BatchWriter.start() first"
        if self._task is None or self._task.done():
            raise ConnectionAbortedError("the gateway is stopping")  # nobody would run the job
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, fut))
        return await fut

    async def _loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            running = loop.run_in_executor(self.executor, self._run, [job for job, _ in batch])
            try:
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
                    _job, fut = self._queue.get_nowait()
                    if not fut.done():
                        fut.set_exception(ConnectionAbortedError("the gateway is stopping"))
                raise
            except Exception as exc:  # the executor itself failed: fail the whole batch
                results = [(False, exc)] * len(batch)
            self._settle(batch, results)

    @staticmethod
    def _settle(batch: list[tuple[Job, asyncio.Future[Any]]], results: list[tuple[bool, Any]]) -> None:
        for (_job, fut), (ok, value) in zip(batch, results):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _run(self, jobs: list[Job]) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        with Session(self.engine, expire_on_commit=False) as s:
            for job in jobs:
                info = dict(s.info)
                try:
                    with s.begin_nested():
                        results.append((True, job(s)))
                except Exception as exc:  # this job alone is rolled back …
                    s.info.clear()  # … with what it noted on the session (e.g. the audit chain head)
                    s.info.update(info)
                    results.append((False, exc))
            try:
                if self.before_commit is not None:
                    self.before_commit()
                s.commit()
            except Exception as exc:
                log.exception("batch commit of %d jobs failed", len(jobs))
                s.rollback()
                return [(False, exc)] * len(jobs)
        return results
