"""The delivery worker: from the spool to the company mailbox.

Stage ``relay``: send with the shared account over a few reused SMTP
connections.  A temporary failure (4xx, connection trouble) is retried with
exponential backoff until ``[outbound] retry_max_age``; a permanent one (5xx)
or expiry bounces to the operator.  The stage moves to ``append`` in the same
moment the upstream's 250 is recorded, so a restart never sends twice.
Stage ``bounce`` (an operator gave up on it, or its bounce report could not be
stored yet): the bounce report goes to the operator, the message is never sent.

Stage ``append`` (:mod:`.sentcopy`): put the tagged copy in the
upstream Sent folder (IMAP keywords where allowed, ``X-Mailwarden-*`` headers
always), then file the bytes under ``messages/`` and mark the item ``done``.

An unexpected error (a bug, not the upstream) is retried a few times, then the
item is shunted (:mod:`.inflight`, :func:`mailwarden.store.spool.failed`).  The
states and their transitions are the spool's (:mod:`mailwarden.store.spool`).
A store that cannot record a result pauses the relay (:class:`.inflight.InFlight`);
a spool file that is not what was accepted (emptied, replaced, deleted: its SHA-256
differs from the one recorded at accept time) is shunted at once, with the reason, and
its sender gets a notice: it is never sent as it is, and never retried by itself.

Both stream the message from its spool file (:class:`~mailwarden.gateway.upstream.source.Source`):
a large message is never read whole; a bounce reads only the header block.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from mailwarden.store import StoreHandle
from mailwarden.store.db import writer_engine
from mailwarden.store.models import Message, utcnow
from mailwarden.store.quarantine import expired, reject, release
from mailwarden.store.spool import (
    DueItem,
    aware,
    bounce_later,
    bounce_reason,
    bounced,
    damaged,
    delivered,
    due,
    next_stage,
    retry_later,
    shunt,
)
from mailwarden.store.spool import states as st
from sqlmodel import Session

from mailwarden.gateway import metrics
from mailwarden.gateway.config import Outbound, Upstream
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.gateway.delivery.inflight import InFlight
from mailwarden.gateway.delivery.notices import build_bounce, damaged_notice, rejected_notice, released_notice, spool_head
from mailwarden.gateway.delivery.sentcopy import SentCopies
from mailwarden.gateway.headers import keyword, without_ref
from mailwarden.gateway.upstream.budget import ConnectionBudget
from mailwarden.gateway.upstream.imap import IMAPConnection
from mailwarden.gateway.upstream.smtp import SendResult, SMTPConnection, upstream_tls
from mailwarden.gateway.upstream.source import PermanentFailure, Source, TemporaryFailure

log = logging.getLogger(__name__)
COALESCE = 0.03  # seconds a nudge waits for more before the spool is read


def upstream_budget(upstream: Upstream, outbound: Outbound) -> ConnectionBudget:
    """The connections to one company mailbox: ``[upstream] imap_connections`` IMAP logins (the
    relay holds one for Sent copies and notices, the rest are the inbound sync's) and
    ``[outbound] relay_connections`` SMTP ones."""
    return ConnectionBudget({"imap": upstream.imap_connections, "smtp": outbound.relay_connections})


class Relay:
    def __init__(self, *, store: StoreHandle, upstream: Upstream, outbound: Outbound, writer: BatchWriter,
                 held_timeout: float | None = None, held_timeout_action: str = "reject",
                 budget: ConnectionBudget | None = None) -> None:
        """``budget``: the upstream connections this process may hold, shared with whatever else in
        it talks to the company mailbox (by default one of its own, from the config)."""
        self.store = store
        self.budget = budget or upstream_budget(upstream, outbound)
        self.held_timeout = held_timeout
        self.held_timeout_action = held_timeout_action
        self._next_expiry_check = 0.0
        self.upstream = upstream
        self.outbound = outbound
        self.writer = writer
        tls = upstream_tls(upstream)
        self.smtp = [SMTPConnection(upstream, tls) for _ in range(outbound.relay_connections)]
        self.imap = IMAPConnection(upstream, tls)
        self.work = InFlight(store=store, writer=writer, retry_initial=outbound.retry_initial)
        self.copies = SentCopies(work=self.work, imap=self.imap, upstream=upstream, store=store)
        self._wake = asyncio.Event()
        self._queue: asyncio.Queue[DueItem] = asyncio.Queue()
        # Sends the upstream took but not yet recorded (after a crash, those go out
        # again): two per connection, one being recorded while the next is sent.
        self._unrecorded_sends = asyncio.Semaphore(2 * outbound.relay_connections)
        self.started = utcnow()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def linked(self) -> bool:
        """A spool file got a new name (hard link) in the batch being written: the writer must
        make it durable before that commit."""
        return self.work.linked

    @linked.setter
    def linked(self, value: bool) -> None:
        self.work.linked = value

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self.dispatch(), name="relay-dispatch")]
        self._tasks += [asyncio.create_task(self._holding("smtp", f"relay-smtp-{i}", self._sender(c)),
                                            name=f"relay-smtp-{i}") for i, c in enumerate(self.smtp)]
        self._tasks.append(asyncio.create_task(self._holding("imap", "relay Sent copies", self.copies.run()),
                                               name="relay-append"))

    async def _holding(self, protocol: str, holder: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (a worker that keeps one upstream connection) once the budget has room
        for its connection, and give the room back when it ends."""
        try:
            async with self.budget.hold(protocol, holder):
                await work
        finally:
            work.close()  # never started when cancelled while waiting: no "never awaited" warning

    async def stop(self, grace: float = 30.0) -> None:
        """Stop taking new items, let sends in progress finish (a send cut off after the
        final dot would go out again after restart), then stop the workers."""
        self._tasks[0].cancel()  # the dispatcher
        for queue in (self._queue, self.copies.queue):  # not started: left for the next start, whole
            while not queue.empty():
                self.work.release(queue.get_nowait())
        deadline = asyncio.get_running_loop().time() + grace
        while self.work.busy and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for t in (*self._tasks, *self.work.finishing):
            t.cancel()
        await asyncio.gather(*self._tasks, *self.work.finishing, return_exceptions=True)
        for c in self.smtp:
            await c.close()
        await self.imap.close()

    # -- dispatch ----------------------------------------------------------

    async def dispatch(self) -> None:
        """Hand the due items to the workers, until cancelled."""
        while True:
            await self.work.writable.wait()  # nothing new while the store cannot record results
            self._wake.clear()
            try:
                # Snapshot what is in flight *before* reading: an item that finishes after the
                # snapshot has committed its new stage before leaving the set, so a read that
                # starts later cannot see it stale.
                items = await asyncio.to_thread(self.load_due, set(self.work.ids))
            except Exception:
                log.exception("cannot read the spool; retrying")
                items = []
            for item in items:
                if item.id in self.work.ids:
                    continue
                # A Sent copy due since before this process started may have been stored by the
                # process before it, which died before recording it.
                item.verify = item.stage == st.APPEND and aware(item.next_attempt) <= self.started
                self.work.take(item)
                (self._queue if item.stage in (st.RELAY, st.BOUNCE) else self.copies.queue).put_nowait(item)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0 if items else 5.0)
                # Let the nudges of a burst of accepted messages arrive: one read of the spool
                # for all of them, not one each (each read skips everything in flight).
                await asyncio.sleep(COALESCE)
            except asyncio.TimeoutError:
                pass

    def expire_held(self) -> None:
        """Held mail nobody decided on within ``[rules] quarantine_timeout``: release or reject it."""
        if self.held_timeout is None:
            return
        cutoff = utcnow() - timedelta(seconds=self.held_timeout)
        # It writes (release/reject): take the write lock at BEGIN, as the other writers do.
        with Session(writer_engine(self.store.engine), expire_on_commit=False) as s:
            for item in expired(session=s, older_than=cutoff):
                if self.held_timeout_action == "release":
                    release(session=s, audit=self.store.audit, message_id=item.message_id, actor="system",
                            note="quarantine timeout", spool_dir=self.store.spool_dir,
                            notice=lambda h, shared: released_notice(
                                key=self.store.audit.key, shared=shared, operator=h.operator,
                                subject=h.subject, rcpts=list(h.rcpts), by="the gateway",
                                note="nobody reviewed it in time / 超时未审核", ref=str(h.id)))
                else:
                    reason = "nobody reviewed it in time / 超时未审核"
                    msg = s.get(Message, item.message_id)
                    notice = rejected_notice(key=self.store.audit.key, shared=self.upstream.username, operator=item.operator,
                                             subject=msg.subject if msg else "", rcpts=json.loads(item.rcpts),
                                             reason=reason, ref=str(item.message_id))
                    reject(session=s, audit=self.store.audit, spool_dir=self.store.spool_dir,
                           message_id=item.message_id, actor="system", reason=reason, notice=notice)

    def load_due(self, busy: set[int]) -> list[DueItem]:
        """The items due now but for ``busy``; and, every 30 s, the quarantine timeout applied."""
        now = time.monotonic()
        if now >= self._next_expiry_check:
            self._next_expiry_check = now + 30
            try:
                self.expire_held()
            except Exception:
                log.exception("quarantine expiry round failed")
        with Session(self.store.engine, expire_on_commit=False) as s:
            return list(due(session=s, now=utcnow(), limit=500, exclude=busy))

    # -- relay stage -------------------------------------------------------

    async def _sender(self, conn: SMTPConnection) -> None:
        while True:
            item = await self._queue.get()
            await self.work.writable.wait()  # a send whose result cannot be recorded would go out again
            self.work.start()
            await self._unrecorded_sends.acquire()  # released once this send is recorded (or failed)
            try:
                sent = await self._send(conn, item)
            except Exception as exc:
                sent = None
                await self.work.failed(item, exc)
            if sent is None:
                self._unrecorded_sends.release()
                self.work.release(item)
                self.work.stop()
                continue
            # The upstream said 250: record it while this connection sends the next one (the
            # records of several sends then share a commit).
            self.work.meanwhile(self._delivered(item, *sent), name=f"delivered-{item.id}")

    async def _send(self, conn: SMTPConnection, item: DueItem) -> tuple[list[str], SendResult] | None:
        """Relay one item; its recipients and the upstream's answer, or None when it is dealt
        with already (a retry scheduled, a bounce sent)."""
        path = self.store.spool_dir / item.blob
        tags = self.exposed(item)
        rcpts: list[str] = json.loads(item.rcpts)
        if item.stage == st.BOUNCE:  # given up: never sent, only reported
            await self._bounce(item, rcpts, bounce_reason(item.last_error), await spool_head(path, tags))
            return None
        reason = await self.work.damage(item)
        if reason is not None:
            await self._damaged(item, rcpts, reason)
            return None
        data = Source(tags, path)
        try:
            await data.open()
            return rcpts, await conn.send(item.mail_from, rcpts, data)
        except TemporaryFailure as exc:
            metrics.upstream_error("smtp", "temporary")
            await self._temporary(item, str(exc))
        except PermanentFailure as exc:
            metrics.upstream_error("smtp", "permanent")
            await self._bounce(item, rcpts, str(exc), await spool_head(path, tags))
        finally:
            data.close()
        return None

    async def _delivered(self, item: DueItem, rcpts: list[str], result: SendResult) -> None:
        """Record what the upstream took (this is what makes delivery exactly-once), bounce what
        it refused for good, and hand the item on to the append stage."""
        handed_on = False
        try:
            permanent = {r: f"{c} {m}" for r, (c, m) in result.refused.items() if c >= 500}
            temporary = {r: f"{c} {m}" for r, (c, m) in result.refused.items() if c < 500}
            took = [r for r in rcpts if r not in result.refused]
            try:
                await self.work.record(lambda s: self._record_delivery(s, item, took, temporary))
            except Exception as exc:  # not the store (that is waited for): the record itself failed
                handed_on = not await self._unrecordable(item, exc)  # not even shunted: kept in flight
                return
            finally:
                self._unrecorded_sends.release()
            log.info("relayed message=%s operator=%s delivered=%d", item.message_id, item.operator, len(took))
            if permanent:
                await self._bounce(item, list(permanent), "; ".join(f"{r}: {e}" for r, e in permanent.items()),
                                   await spool_head(self.store.spool_dir / item.blob, self.exposed(item)),
                                   partial=bool(took or temporary))
            if took and next_stage(item) == st.DONE:  # a retry of some recipients: nothing to file
                self.work.file_sent(item.blob)
            elif took:
                item.stage = st.APPEND
                item.rcpts = json.dumps(took)
                self.copies.queue.put_nowait(item)
                handed_on = True
        except Exception as exc:
            await self.work.failed(item, exc)
        finally:
            if not handed_on:
                self.work.release(item)
            self.work.stop()

    def _record_delivery(self, s: Session, item: DueItem, took: list[str], temporary: dict[str, str]) -> None:
        """The upstream said 250: record it at once.  Nothing delivered: retry only the
        temporary refusals (the others are bounced)."""
        if took:
            if delivered(session=s, audit=self.store.audit, item=item, rcpts=took, retry=temporary,
                         retry_initial=self.outbound.retry_initial, spool_dir=self.store.spool_dir):
                self.linked = True  # the writer must make the new name durable before this commit
        else:
            retry_later(session=s, item=item, error="; ".join(temporary.values()), rcpts=list(temporary),
                        retry_initial=self.outbound.retry_initial)

    async def _unrecordable(self, item: DueItem, exc: BaseException) -> bool:
        """The upstream took ``item`` but its record failed, not for want of a writable store (a
        bug): shunted at once, saying so, never sent again by itself (a retry would send it twice).
        False when even that failed: then it must stay in flight, offered to nobody."""
        log.error("message=%s operator=%s was delivered but its record failed", item.message_id, item.operator,
                  exc_info=exc)
        error = (f"delivered to the upstream, but recording it failed ({type(exc).__name__}: {exc}); "
                 "`queue retry` would send it again")
        try:
            await self.work.record(lambda s: shunt(session=s, audit=self.store.audit, item=item, error=error))
        except Exception:
            log.exception("cannot shunt message=%s either; it stays in flight until restart", item.message_id)
            return False
        log.error("shunted message=%s operator=%s: see `mailwarden queue list --state shunt`", item.message_id,
                  item.operator)
        return True

    async def _damaged(self, item: DueItem, rcpts: list[str], reason: str) -> None:
        """The spool file is not what was accepted: shunted with ``reason``, the sender told."""
        subject = await asyncio.to_thread(self._subject, item.message_id)
        notice = damaged_notice(key=self.store.audit.key, shared=self.upstream.username, operator=item.operator,
                                subject=subject, rcpts=rcpts, reason=reason, ref=str(item.message_id))
        if await self.work.record(lambda s: damaged(session=s, audit=self.store.audit, item=item, reason=reason,
                                                    spool_dir=self.store.spool_dir, notice=notice)):
            log.error("not sent: message=%s operator=%s: %s; shunted (see `mailwarden queue list --state shunt`)",
                      item.message_id, item.operator, reason)
            self.wake()  # the notice is due now

    def _subject(self, message_id: int) -> str:
        with Session(self.store.engine) as s:
            msg = s.get(Message, message_id)
            return msg.subject if msg else ""

    def exposed(self, item: DueItem) -> bytes:
        """The tag headers when the customer sees them too, else nothing.  Never the ref: a copy
        the upstream keeps of what it sent (Gmail, Office 365 do) must not pass for the gateway's."""
        if not (self.outbound.expose_headers and item.sent_headers):
            return b""
        return without_ref(item.sent_headers).encode("ascii")

    async def _temporary(self, item: DueItem, error: str) -> None:
        age = (utcnow() - aware(item.created_at)).total_seconds()
        if age >= self.outbound.retry_max_age:
            head = await spool_head(self.store.spool_dir / item.blob, self.exposed(item))
            await self._bounce(item, json.loads(item.rcpts),
                               f"could not be delivered for {timedelta(seconds=int(age))}; last error: {error}", head)
            return
        log.info("temporary failure message=%s operator=%s attempt=%d: %s", item.message_id, item.operator,
                 item.attempts + 1, error)
        await self.work.retry_later(item, error)

    async def _bounce(self, item: DueItem, rcpts: list[str], reason: str, original: bytes, *, partial: bool = False) -> None:
        """Tell the operator: a bounce report in the shared INBOX, tagged for them.
        ``original``: the message's header block at least (see :func:`.notices.spool_head`)."""
        report = build_bounce(key=self.store.audit.key, shared=self.upstream.username, operator=item.operator,
                              rcpts=rcpts, reason=reason, original=original, ref=str(item.message_id))
        try:
            await self.imap.append(self.upstream.inbox_folder, report, [], [keyword("op", item.operator), "$mw_bounce"])
        except TemporaryFailure as exc:
            log.warning("cannot deliver the bounce for message=%s operator=%s yet: %s", item.message_id,
                        item.operator, exc)
            if partial:  # the item goes on to its Sent copy; the refusals are in its audit trail
                await self.work.retry_later(item, f"bounce pending: {exc}")
            else:  # never sent again: it waits in the bounce stage, its reason kept for the report
                await self.work.record(lambda s: bounce_later(session=s, item=item, reason=reason,
                                                              retry_initial=self.outbound.retry_initial))
            return
        await self.work.record(lambda s: bounced(session=s, audit=self.store.audit, item=item, rcpts=rcpts,
                                                 reason=reason, partial=partial))
        if not partial:
            await asyncio.to_thread(self.work.file_sent, item.blob)
        log.warning("bounced message=%s operator=%s: %s", item.message_id, item.operator, reason[:200])

