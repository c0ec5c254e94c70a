"""What the relay and the Sent-copy stage share: the items in flight, and how the outcome of
each is recorded.

An item is *in flight* from the moment the dispatcher hands it to a worker until its new state
is committed; the dispatcher offers no item that is in flight, so nobody else changes its row
meanwhile and the workers may record their outcome from the snapshot they were given.  The
records are the spool's own transitions (:mod:`mailwarden.store.spool`), run as plain jobs of
the group-commit writer.

A record the store cannot take (locked for longer than the writer waits, a full disk, a
read-only file, a database that went away) is never dropped: the item stays in flight, so it is
offered to nobody, and the record is written again with a growing pause until the store takes
it.  Meanwhile :attr:`InFlight.writable` is clear and the workers start nothing new: a message
the upstream took is never sent again because its new state could not be written, and a store
that cannot write costs one attempt per pause, not a loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from mailwarden.store import StoreHandle
from mailwarden.store.spool import DueItem, damage, failed, file_sent, needs_thread, retry_later
from sqlmodel import Session

from mailwarden.gateway.dbwriter import BatchWriter

log = logging.getLogger(__name__)
RECORD_RETRY_INITIAL = 0.5  # seconds before a record the store refused is written again; doubling …
RECORD_RETRY_MAX = 30.0  # … up to this


STORE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)  # a spool file the store could not write


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store cannot write now (and may later), rather than that the
    record itself is wrong: SQLAlchemy's and the drivers' ``OperationalError`` (locked, disk
    full, read-only, I/O error, connection lost) and a full or read-only file system."""
    if isinstance(exc, OSError):
        return exc.errno in STORE_ERRNOS
    return any(cls.__name__ == "OperationalError" for cls in type(exc).__mro__)


class InFlight:
    """The deliverer's bookkeeping: ids in flight, workers busy, records being written."""

    def __init__(self, *, store: StoreHandle, writer: BatchWriter, retry_initial: float) -> None:
        self.store = store
        self.writer = writer
        self.retry_initial = retry_initial
        self.ids: set[int] = set()
        self.busy = 0  # items a worker is processing right now
        self.finishing: set[asyncio.Task[None]] = set()  # records being written while the next item goes out
        self.linked = False  # a spool file got a new name (hard link) in the batch being written
        self.writable = asyncio.Event()  # clear while the store refuses records: start nothing new
        self.writable.set()
        self.refused_records = 0  # records the store refused (each written again later)
        self._paused_at = 0.0

    def take(self, item: DueItem) -> None:
        self.ids.add(item.id)

    def release(self, item: DueItem) -> None:
        """The item's new state is committed (or it is left as it was): it may be offered again."""
        self.ids.discard(item.id)

    def start(self) -> None:
        self.busy += 1

    def stop(self) -> None:
        self.busy -= 1

    def meanwhile(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` (a record) while the worker goes on with the next item."""
        task = asyncio.create_task(coro, name=name)
        self.finishing.add(task)
        task.add_done_callback(self.finishing.discard)

    async def record(self, job: Callable[[Session], Any]) -> Any:
        """Run a transition on the writer (plain SQL: a cheap SAVEPOINT); returns once committed.
        While the store cannot write (:func:`store_unavailable`) the job is run again after a
        growing pause, for as long as it takes; any other error is raised."""
        delay = RECORD_RETRY_INITIAL
        while True:
            try:
                result = await self.writer.run(job, plain=True)
            except Exception as exc:
                if not store_unavailable(exc):
                    raise
                self.refused_records += 1
                if self.writable.is_set():
                    self.writable.clear()
                    self._paused_at = time.monotonic()
                    log.error("the store cannot record delivery results (%s): relaying paused, results kept "
                              "and written again until it can", exc)
                else:
                    log.warning("the store still cannot record delivery results (%s); next try in %.1f s", exc,
                                delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECORD_RETRY_MAX)
                continue
            if not self.writable.is_set():
                self.writable.set()
                log.warning("the store records again after %.0f s: relaying resumes",
                            time.monotonic() - self._paused_at)
            return result

    async def damage(self, item: DueItem) -> str | None:
        """What is wrong with the item's spool file compared with its digest (see
        :func:`mailwarden.store.spool.damage`); a large file is read on a thread."""
        if item.digest is None:
            return None
        path = self.store.spool_dir / item.blob
        return await asyncio.to_thread(damage, path, item.digest) if needs_thread(path) else damage(path, item.digest)

    def file_sent(self, blob: str) -> None:
        file_sent(self.store.spool_dir, blob)

    async def retry_later(self, item: DueItem, error: str | None) -> None:
        """Schedule the next attempt.  Never raises: a worker must not die of a database hiccup
        (the item then stays due and the dispatcher offers it again)."""
        try:
            await self.record(lambda s: retry_later(session=s, item=item, error=error,
                                                    retry_initial=self.retry_initial))
        except Exception:
            log.exception("cannot record the next attempt for message=%s operator=%s", item.message_id,
                          item.operator)

    async def failed(self, item: DueItem, exc: BaseException) -> None:
        """Handling ``item`` failed unexpectedly (a bug, not the upstream): logged, tried again
        a few times, then shunted (:func:`mailwarden.store.spool.failed`).  Never raises."""
        log.error("spool item %s (message=%s operator=%s) failed unexpectedly in stage %s", item.id,
                  item.message_id, item.operator, item.stage, exc_info=exc)
        error = f"{type(exc).__name__}: {exc}"
        try:
            shunted = await self.record(lambda s: failed(session=s, audit=self.store.audit, item=item, error=error,
                                                         retry_initial=self.retry_initial))
        except Exception:
            log.exception("cannot record the failure of spool item %s", item.id)
            return
        if shunted:
            log.error("shunted message=%s operator=%s: see `mailwarden queue list --state shunt`",
                      item.message_id, item.operator)
