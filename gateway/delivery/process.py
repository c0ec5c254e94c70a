"""The delivery process: the relay (:mod:`.relay`), and the inbound sync beside it
(:mod:`mailwarden.gateway.sync`, sharing its connection budget), in a process of its own.

``serve`` accepts mail in one process and delivers it from another, as Postfix
splits smtpd from its queue manager.  The deliverer runs at a lower CPU priority
(``DELIVERY_NICE``): when the machine is busy, answering a salesperson's DATA
comes before relaying what is already safe in the spool.  The two share only the store (spool rows
and files); after each spool commit the acceptor nudges the deliverer through a
pipe.  Each has its own interpreter, so relaying and filing Sent copies take no
CPU time (Python's GIL) from answering the salespeople's clients.

The pipe also carries the end: when ``serve`` stops, or dies, the deliverer
reads end-of-file, lets the sends in progress finish and exits.  ``serve``
restarts a deliverer that dies on its own.

At most one deliverer per data directory: it holds an exclusive lock on
``<data_dir>/delivery.lock``.  A deliverer still finishing its sends after its
``serve`` was killed thereby holds back the next one, which would otherwise
send the same items again; so does a second ``serve`` on the same data.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import multiprocessing
import os
import signal
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from mailwarden.store import StoreHandle, open_store
from mailwarden.store.spool import sync_dirs

from mailwarden.gateway import logsetup
from mailwarden.gateway.config import Config, config_from_dict
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.gateway.engines import quarantine_expiry
from mailwarden.gateway.metrics import multiprocess_env
from mailwarden.gateway.delivery.relay import Relay, upstream_budget
from mailwarden.gateway.sync.service import start_sync
from mailwarden.gateway.upstream.budget import ConnectionBudget

log = logging.getLogger(__name__)
LOCK_NAME = "delivery.lock"
STOP_GRACE = 30.0  # seconds a send in progress may take to finish when stopping
DELIVERY_NICE = 10  # the delivery process's niceness, relative to serve's
WRITER_LINGER = 0.01  # seconds a batch of delivery records waits for more to join it


async def hold_delivery_lock(data_dir: Path, poll: float = 0.25) -> int:
    """Wait until this process is the data directory's only deliverer; returns the locked fd
    (closing it releases the lock)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    warned = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if not warned:
                    log.warning("another delivery process is still running for %s (finishing its sends, or a "
                                "second serve on the same data); waiting for it", data_dir)
                    warned = True
                await asyncio.sleep(poll)
    except BaseException:
        os.close(fd)
        raise


def make_relay(cfg: Config, store: StoreHandle, writer: BatchWriter, budget: ConnectionBudget | None = None) -> Relay:
    """The relay; ``budget``: the connections it shares with the inbound sync (see :func:`make_budget`)."""
    assert cfg.upstream and cfg.outbound
    held_timeout, held_action = quarantine_expiry(cfg)
    budget = budget or make_budget(cfg)
    return Relay(store=store, upstream=cfg.upstream, outbound=cfg.outbound, writer=writer,
                 held_timeout=held_timeout, held_timeout_action=held_action, budget=budget)


def make_budget(cfg: Config) -> ConnectionBudget:
    """One budget for everything in this process that talks to the company mailbox."""
    assert cfg.upstream and cfg.outbound
    return upstream_budget(cfg.upstream, cfg.outbound)


class DeliveryProcess:
    """The acceptor's handle on its deliverer: start, nudge, supervise, stop."""

    def __init__(self, cfg: Config, sections: set[str]) -> None:
        self.cfg, self.sections = cfg, sections
        self._proc: Any = None  # multiprocessing's SpawnProcess
        self._pipe: Any = None  # the write end of the nudge pipe
        self._supervisor: asyncio.Task[None] | None = None
        self.metrics_dir: Path | None = None  # where the process keeps its counters (None: not counted)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="delivery-supervisor")

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited sockets, threads or loop
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=main, name="mailwarden-delivery", daemon=False,
                           args=(self.cfg.raw, self.cfg.path, self.sections, reader, logging.getLogger().level))
        with multiprocess_env(self.metrics_dir):
            proc.start()
        reader.close()
        os.set_blocking(writer.fileno(), False)  # a nudge never blocks the event loop
        self._proc, self._pipe = proc, writer
        log.info("delivery process started (pid %s)", proc.pid)

    def wake(self) -> None:
        """New mail is committed: deliver it now, not at the next poll."""
        if self._pipe is not None:
            with suppress(OSError):  # full (a nudge is pending anyway) or gone (being restarted)
                os.write(self._pipe.fileno(), b".")

    async def _exited(self) -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        sentinel = self._proc.sentinel
        loop.add_reader(sentinel, lambda: done.done() or done.set_result(None))
        try:
            await done
        finally:
            loop.remove_reader(sentinel)
        self._proc.join()

    async def _supervise(self) -> None:
        delay = 1.0
        while True:
            started = time.monotonic()
            await self._exited()
            self._pipe.close()
            self._pipe = None
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 60.0)
            log.error("the delivery process exited unexpectedly (exit code %s); restarting it in %.0f s",
                      self._proc.exitcode, delay)
            await asyncio.sleep(delay)
            self._spawn()

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        if self._proc is None:
            return
        if self._pipe is not None:
            self._pipe.close()  # end-of-file: finish the sends in progress and exit
            self._pipe = None
        try:
            await asyncio.wait_for(self._exited(), STOP_GRACE + 15)
        except asyncio.TimeoutError:
            log.error("the delivery process did not stop in time; killing it")
            self._proc.kill()
            await asyncio.to_thread(self._proc.join)


# -- the delivery process itself --------------------------------------------

def main(raw: dict[str, Any], path: Path | None, sections: set[str], pipe: Any, log_level: int) -> None:
    """Entry point of the spawned process."""
    logsetup.configure(log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: serve says when to stop
    # Salespeople wait for the answer to DATA; nobody waits on the relay's few milliseconds.
    # When the CPUs are busy, the acceptor goes first (a lower priority is always allowed).
    with suppress(OSError):
        os.nice(DELIVERY_NICE)
    cfg = config_from_dict(raw, path, sections)
    assert cfg.store is not None
    store = open_store(cfg.store, migrate=False)
    try:
        asyncio.run(_deliver(cfg, store, pipe.fileno()))
    finally:
        store.close()


async def _deliver(cfg: Config, store: StoreHandle, fd: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    relay: Relay | None = None

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        if not data:  # serve stopped or died
            loop.remove_reader(fd)
            stop.set()
        elif relay is not None:
            relay.wake()

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    locking = asyncio.create_task(hold_delivery_lock(cfg.data_dir))
    await asyncio.wait([locking, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    if not locking.done():  # told to stop while still waiting for the lock
        locking.cancel()
        await asyncio.gather(locking, return_exceptions=True)
        return
    lock_fd = locking.result()
    def before_commit() -> None:
        # Hard links for split deliveries are made without syncing the folder: done here, once
        # for the batch, and only when the batch made one.
        if relay is not None and relay.linked:
            relay.linked = False
            sync_dirs(store.spool_dir)

    # Nobody waits on these commits but the deliverer itself: let records gather for a moment.
    writer = BatchWriter(store.engine, before_commit=before_commit, linger=WRITER_LINGER)
    writer.start()
    sync, sync_lock = None, None
    try:
        budget = make_budget(cfg)
        relay = make_relay(cfg, store, writer, budget)
        await relay.start()
        sync, sync_lock = start_sync(cfg, store, budget)
        await stop.wait()
        log.info("delivery process stopping")
        if sync is not None:
            await sync.stop()
        await relay.stop(STOP_GRACE)
    finally:
        await writer.stop()
        if sync_lock is not None:
            os.close(sync_lock)
        os.close(lock_fd)
