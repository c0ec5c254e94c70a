"""The running sync: a few upstream connections keep the store's copy of one company mailbox
current (:class:`MailboxSync`).

- One connection waits in IDLE on INBOX (``[sync] idle``) and wakes the worker when the server
  reports news; it re-issues IDLE before servers drop it, and where the server has no IDLE
  (163/126) the worker polls every ``[sync] poll_interval`` instead.
- ``[sync] workers`` connections (one by default) bring each synced folder up to date: INBOX,
  the Sent folder, and those ``[sync] folders`` names.  New mail by UID, from the folder's
  progress mark; a UIDVALIDITY change re-maps what the store has by Message-ID and size
  (:meth:`~.importer.Importer.remap`) instead of downloading it again; every
  ``[sync] diff_interval``, flags changed and messages removed upstream (the store keeps them).
- Every connection holds a lease of the one connection budget it shares with the relay, so
  together they never log in more often than ``[upstream] imap_connections``.
- A connection that fails is opened again after a pause that doubles up to five minutes; what
  each part last did is in the store (``mailwarden sync status``).

:func:`initial_import` runs the same catching-up once over every folder (``mailwarden sync
--initial``), with progress reports.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailwarden.store import StoreHandle
from mailwarden.store.mails import ensure_folder, locations, mark_gone, set_sync_status, update_flags
from mailwarden.store.models import DEFAULT_MAILBOX, Folder, utcnow

from mailwarden.gateway.config import Config, Sync, Upstream
from mailwarden.gateway.config import Filing as FilingConfig
from mailwarden.gateway.sync.filing import FilingPolicy
from mailwarden.gateway.sync.folders import find_role
from mailwarden.gateway.sync.importer import Describe, Importer, Incoming, Mask
from mailwarden.gateway.sync.pool import return_idle_customers
from mailwarden.gateway.sync.upstream import MailboxConnection
from mailwarden.gateway.sync.upstreamdata import Backoff
from mailwarden.gateway.upstream.budget import ConnectionBudget
from mailwarden.gateway.upstream.smtp import upstream_tls
from mailwarden.gateway.upstream.source import TemporaryFailure

log = logging.getLogger(__name__)

LOCK_NAME = "sync.lock"
IDLE_RENEW = 25 * 60.0  # seconds: servers may end an IDLE after 30 minutes (RFC 2177)
BATCH_BYTES = 8 * 1024 * 1024  # bytes of messages stored in one transaction
BATCH_COUNT = 200
POOL_ROUND = 6 * 3600.0  # seconds between looks for customers to return to the pool


@dataclass
class Progress:
    folder: str
    done: int = 0
    total: int = 0


class DownloadPacer:
    """Keeps the bytes fetched per day under ``[sync] daily_download_mb`` (Gmail stops an
    account's IMAP for the day past about 2500 MB)."""

    def __init__(self, daily_mb: int) -> None:
        self.limit = daily_mb * 1024 * 1024
        self.day, self.used = self._today(), 0

    @staticmethod
    def _today() -> int:
        return int(time.time() // 86400)

    async def take(self, nbytes: int) -> None:
        if not self.limit:
            return
        if self._today() != self.day:
            self.day, self.used = self._today(), 0
        while self.used + nbytes > self.limit and self.used:
            wait = (self.day + 1) * 86400 - time.time()
            log.warning("the day's download cap ([sync] daily_download_mb) is reached; the import goes on in %.0f s", wait)
            await asyncio.sleep(max(1.0, wait))
            if self._today() != self.day:
                self.day, self.used = self._today(), 0
        self.used += nbytes


class MailboxSync:
    """Keeps the store's copy of one company mailbox current (see the module documentation)."""

    def __init__(self, store: StoreHandle, upstream: Upstream, sync: Sync, policy: FilingPolicy,
                 budget: ConnectionBudget, *, describe: Describe | None = None, mailbox_id: int = DEFAULT_MAILBOX,
                 filing: FilingConfig | None = None, mask: Mask | None = None) -> None:
        self.store, self.upstream, self.cfg, self.budget = store, upstream, sync, budget
        self.filing = filing
        self._next_pool = 0.0
        self.mailbox_id = mailbox_id
        self.importer = Importer(store, policy, mailbox_id=mailbox_id, describe=describe, mask=mask)
        self.pacer = DownloadPacer(sync.daily_download_mb)
        self._news = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._next_diff = 0.0
        self.has_idle: bool | None = None  # learnt from the first connection
        self.tls = upstream_tls(upstream)

    # -- life ------------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._work("worker"), name="sync-worker"))
        if self.cfg.idle:
            self._tasks.append(asyncio.create_task(self._idle(), name="sync-idle"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def wake(self) -> None:
        """Look at every folder now (the IDLE connection heard of news)."""
        self._news.set()

    async def _status(self, component: str, state: str, detail: str = "", *, event: bool = False) -> None:
        def write() -> None:
            with self.store.session() as s:
                set_sync_status(session=s, component=component, state=state, detail=detail, event=event,
                                mailbox_id=self.mailbox_id)
        try:
            await asyncio.to_thread(write)
        except Exception as exc:  # noqa: BLE001 - the status is for people; the sync goes on without it
            log.warning("cannot record the sync's status (%s): %s", component, exc)

    def _connection(self, holder: str) -> MailboxConnection:
        return MailboxConnection(self.upstream, self.tls, budget=self.budget, holder=holder)

    # -- the worker ------------------------------------------------------------------------
    async def _work(self, name: str) -> None:
        backoff = Backoff()
        while True:
            conn = self._connection(f"sync {name}")
            try:
                await conn.connect()
                self.has_idle = conn.has_idle
                await self._status(name, "connected")
                while True:
                    await self.catch_up(conn)
                    backoff.reset()
                    await self._pool_round()
                    await self._status(name, "idle" if self.cfg.idle and conn.has_idle else "polling", event=True)
                    self._news.clear()
                    try:
                        await asyncio.wait_for(self._news.wait(), self.cfg.poll_interval)
                    except asyncio.TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except (TemporaryFailure, OSError, asyncio.TimeoutError) as exc:
                delay = backoff.next()
                await self._status(name, "retrying", str(exc))
                log.warning("inbound sync: %s; trying again in %.0f s", exc, delay)
            except Exception as exc:  # noqa: BLE001 - a bug must not end the sync for good
                delay = backoff.next()
                log.exception("inbound sync failed unexpectedly; trying again in %.0f s", delay)
                await self._status(name, "retrying", f"unexpected error: {type(exc).__name__}: {exc}")
            finally:
                await conn.close()
            await asyncio.sleep(delay)

    async def _pool_round(self) -> None:
        """Now and then: customers nobody wrote to for ``[filing] return_after_days`` go back to the pool."""
        if self.filing is None or not self.filing.return_after_days or time.monotonic() < self._next_pool:
            return
        self._next_pool = time.monotonic() + POOL_ROUND
        try:
            await asyncio.to_thread(return_idle_customers, self.store, self.filing, shared=self.upstream.username)
        except Exception:  # noqa: BLE001 - the sync goes on; the next round tries again
            log.exception("cannot return idle customers to the pool")

    async def folders(self, conn: MailboxConnection) -> list[Folder]:
        """The folders to keep: INBOX, Sent and ``[sync] folders``, as store rows."""
        listed = await conn.folders()
        want: list[tuple[str, str]] = []
        inbox = find_role(listed, "inbox")
        want.append((inbox.name if inbox else self.upstream.inbox_folder, "inbox"))
        sent = find_role(listed, "sent")
        want.append((sent.name if sent else self.upstream.sent_folder, "sent"))
        names = {f.name: f for f in listed}
        for name in self.cfg.folders:
            if name in names and all(name != w[0] for w in want):
                want.append((name, names[name].role))
            elif name not in names:
                log.warning("[sync] folders names %r, which the company mailbox does not have", name)

        def rows() -> list[Folder]:
            with self.store.session() as s:
                return [ensure_folder(session=s, name=n, role=r, mailbox_id=self.mailbox_id) for n, r in want]
        return await asyncio.to_thread(rows)

    async def catch_up(self, conn: MailboxConnection, progress: Callable[[Progress], None] | None = None) -> int:
        """Bring every synced folder up to date; returns how many messages were stored."""
        stored = 0
        diff = time.monotonic() >= self._next_diff
        for folder in await self.folders(conn):
            stored += await self._folder(conn, folder, progress, diff=diff)
        if diff:
            self._next_diff = time.monotonic() + self.cfg.diff_interval
        return stored

    async def _folder(self, conn: MailboxConnection, folder: Folder, progress: Callable[[Progress], None] | None,
                      *, diff: bool) -> int:
        assert folder.id is not None
        state = await conn.select(folder.name, uidvalidity=folder.uidvalidity, modseq=folder.highest_modseq)
        if folder.uidvalidity is None:
            folder.uidvalidity = state.uidvalidity
            await asyncio.to_thread(self._set_uidvalidity, folder.id, state.uidvalidity)
        elif folder.uidvalidity != state.uidvalidity:
            log.warning("folder %r changed UIDVALIDITY %s -> %s: re-mapping by Message-ID and size", folder.name,
                        folder.uidvalidity, state.uidvalidity)
            found = await conn.header_ids(await conn.uids())
            await asyncio.to_thread(self.importer.remap, folder.id, state.uidvalidity,
                                    {uid: (mid, size) for uid, (mid, size, _date) in found.items()})
            folder.uidvalidity, folder.uid_next = state.uidvalidity, 1
            diff = True
        stored = 0
        if state.uidnext is None or state.uidnext > folder.uid_next:
            known = await asyncio.to_thread(self._known_uids, folder.id) if folder.uid_next == 1 else set()
            stored = await self._fetch(conn, folder, known, progress, total=state.exists)
        if diff:
            await self._diff(conn, folder)
        await asyncio.to_thread(self._counted, folder.id, state.exists)
        return stored

    async def _fetch(self, conn: MailboxConnection, folder: Folder, known: set[int],
                     progress: Callable[[Progress], None] | None, *, total: int) -> int:
        assert folder.id is not None and folder.uidvalidity is not None
        batch: list[Incoming] = []
        size = stored = 0
        report = Progress(folder.name, total=total)

        async def flush() -> None:
            nonlocal batch, size, stored
            if batch:
                done = await asyncio.to_thread(self.importer.store_batch, folder.id, folder.uidvalidity, batch)
                stored += sum(1 for d in done if d.new)
                folder.uid_next = max(folder.uid_next, batch[-1].uid + 1)
                report.done += len(batch)
                if progress is not None:
                    progress(report)
                batch, size = [], 0

        async for item in conn.fetch_new(folder.uid_next - 1, max_bytes=BATCH_BYTES):
            if item.uid in known:
                continue
            if item.too_large or item.body is None:
                log.warning("folder %r UID %d: %s bytes, more than the sync fetches; left upstream", folder.name,
                            item.uid, item.size)
                continue
            await self.pacer.take(len(item.body))
            batch.append(Incoming(item.uid, item.body, tuple(item.flags), item.internal_date, item.modseq))
            size += len(item.body)
            if size >= BATCH_BYTES or len(batch) >= BATCH_COUNT:
                await flush()
        await flush()
        return stored

    async def _diff(self, conn: MailboxConnection, folder: Folder) -> None:
        """Flags changed and messages removed upstream since the last look (the store keeps
        removed messages: their location is marked gone)."""
        assert folder.id is not None
        present = await conn.uids()
        flags = await conn.uid_flags(folder.highest_modseq)
        await asyncio.to_thread(self._apply_diff, folder, present, flags)

    # -- store steps (threads) -------------------------------------------------------------
    def _set_uidvalidity(self, folder_id: int, uidvalidity: int) -> None:
        with self.store.session() as s:
            row = s.get(Folder, folder_id)
            assert row is not None
            row.uidvalidity, row.uid_next = uidvalidity, 1
            s.add(row)

    def _known_uids(self, folder_id: int) -> set[int]:
        with self.store.session() as s:
            row = s.get(Folder, folder_id)
            assert row is not None
            return set(locations(session=s, folder=row))

    def _counted(self, folder_id: int, exists: int) -> None:
        with self.store.session() as s:
            row = s.get(Folder, folder_id)
            assert row is not None
            row.message_count = exists
            s.add(row)

    def _apply_diff(self, folder: Folder, present: set[int], flags: dict[int, tuple[tuple[str, ...], int | None]]) -> None:
        with self.store.session() as s:
            row = s.get(Folder, folder.id)
            assert row is not None
            here = locations(session=s, folder=row)
            gone = [loc for uid, loc in here.items() if uid not in present and uid < row.uid_next]
            mark_gone(session=s, locations=gone)
            update_flags(session=s, here=here, flags=flags)
            modseqs = [m for _f, m in flags.values() if m is not None]
            if modseqs:
                row.highest_modseq = max([row.highest_modseq or 0, *modseqs])
            row.diffed_at = utcnow()
            s.add(row)
        if gone:
            log.info("folder %r: %d messages removed upstream (kept in the store)", folder.name, len(gone))

    # -- IDLE ------------------------------------------------------------------------------
    async def _idle(self) -> None:
        backoff = Backoff()
        while True:
            conn = self._connection("sync idle INBOX")
            try:
                await conn.connect()
                if not conn.has_idle:
                    await self._status("idle INBOX", "no IDLE", "the server has no IDLE: the worker polls "
                                       f"every {self.cfg.poll_interval:.0f} s")
                    await conn.close()
                    return  # and give the lease back
                await conn.select(self.upstream.inbox_folder)
                await self._status("idle INBOX", "waiting")
                while True:
                    events = await conn.idle(IDLE_RENEW)
                    backoff.reset()
                    if events:
                        await self._status("idle INBOX", "waiting", f"{len(events)} events", event=True)
                        self.wake()
            except asyncio.CancelledError:
                raise
            except (TemporaryFailure, OSError, asyncio.TimeoutError) as exc:
                delay = backoff.next()
                await self._status("idle INBOX", "retrying", str(exc))
                log.warning("inbound sync (IDLE): %s; trying again in %.0f s", exc, delay)
            except Exception as exc:  # noqa: BLE001
                delay = backoff.next()
                log.exception("inbound sync (IDLE) failed unexpectedly; trying again in %.0f s", delay)
                await self._status("idle INBOX", "retrying", f"unexpected error: {type(exc).__name__}: {exc}")
            finally:
                await conn.close()
            self.wake()  # whatever came while the connection was down
            await asyncio.sleep(delay)


async def initial_import(sync: MailboxSync, progress: Callable[[Progress], None] | None = None) -> int:
    """Import every synced folder once, to its end, on one connection; returns messages stored."""
    conn = sync._connection("sync --initial")
    try:
        await conn.connect()
        return await sync.catch_up(conn, progress)
    finally:
        await conn.close()


def make_sync(cfg: Config, store: StoreHandle, budget: ConnectionBudget) -> MailboxSync:
    """The sync of the ``[upstream]`` mailbox, from the config (``company``, ``upstream``, ``sync``,
    ``filing`` and ``outbound`` loaded)."""
    from mailwarden.gateway.engines import company_profile, freemail_domains, rules_settings
    from mailwarden.gateway.sync.masker import Masker
    from mailwarden.gateway.sync.masking import masked_rendition

    assert cfg.company and cfg.upstream and cfg.sync and cfg.filing
    policy = FilingPolicy(key=store.audit.key, company_domains=cfg.company.domains,
                          freemail=frozenset(freemail_domains(cfg)), unknown=cfg.filing.unknown,
                          on_duty=cfg.filing.on_duty)
    masker = Masker.build(company_profile(cfg), rules_settings(cfg))  # what counts as private: as outbound
    return MailboxSync(store, cfg.upstream, cfg.sync, policy, budget, describe=describe_for_imap(), filing=cfg.filing,
                       mask=lambda raw: masked_rendition(raw, masker=masker))


def describe_for_imap() -> Describe:
    """What the IMAP server will serve of a message, computed at import."""
    from mailwarden.gateway.imap.bodystructure import describe

    return lambda raw: describe(raw).to_json()


def hold_sync_lock(data_dir: Path) -> int | None:
    """The data directory's sync lock, as an open descriptor (closing it lets go), or None when
    another process holds it: one syncer per store, serve's or ``mailwarden sync --initial``."""
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def start_sync(cfg: Config, store: StoreHandle, budget: ConnectionBudget) -> tuple[MailboxSync | None, int | None]:
    """Start the sync of the ``[upstream]`` mailbox beside the relay (sharing its budget), unless
    ``[sync] enabled = false`` or another process syncs this store already (its lock is held).
    Returns the sync and the lock to close when it stops."""
    assert cfg.sync is not None
    if not cfg.sync.enabled:
        log.info("the inbound sync is off ([sync] enabled = false)")
        return None, None
    lock = hold_sync_lock(cfg.data_dir)
    if lock is None:
        log.warning("another process syncs this store's mailbox (`mailwarden sync --initial`, or a second serve); "
                    "this one relays only")
        return None, None
    try:
        sync = make_sync(cfg, store, budget)
        sync.start()
    except BaseException:
        os.close(lock)
        raise
    log.info("inbound sync started: %s, %d worker(s), folders INBOX, Sent%s", "IDLE on INBOX" if cfg.sync.idle
             else f"polling every {cfg.sync.poll_interval:.0f} s", cfg.sync.workers,
             "".join(f", {f}" for f in cfg.sync.folders))
    return sync, lock
