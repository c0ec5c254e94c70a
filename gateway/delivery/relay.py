"""The delivery worker: from the spool to the company mailbox.

Stage ``relay``: send with the shared account over a few reused SMTP
connections.  A temporary failure (4xx, connection trouble) is retried with
exponential backoff until ``[outbound] retry_max_age``; a permanent one (5xx)
or expiry bounces to the operator.  The stage moves to ``append`` in the same
moment the upstream's 250 is recorded, so a restart never sends twice.

Stage ``append`` (:mod:`.sentcopy`): put the tagged copy in the
upstream Sent folder (IMAP keywords where allowed, ``X-Mailwarden-*`` headers
always), then file the bytes under ``messages/`` and mark the item ``done``.

Both stream the message from its spool file (:class:`~mailwarden.gateway.upstream.source.Source`):
a large message is never read whole; a bounce reads only the header block.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from datetime import timedelta

from mailwarden.store import StoreHandle
from mailwarden.store.db import writer_engine
from mailwarden.store.models import Message, SpoolItem, utcnow
from mailwarden.store.quarantine import expired, reject, release
from mailwarden.store.rawsql import raw
from mailwarden.store.spool import DueItem, backoff, due
from sqlmodel import Session

from mailwarden.gateway.config import Outbound, Upstream
from mailwarden.gateway.delivery.sentcopy import UNRECORDED_APPENDS, AppendStage
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.gateway.delivery.notices import build_bounce, build_notice, spool_head
from mailwarden.gateway.headers import keyword, without_ref
from mailwarden.gateway.upstream.source import PermanentFailure, Source, TemporaryFailure
from mailwarden.gateway.upstream.smtp import SendResult, SMTPConnection, upstream_tls
from mailwarden.gateway.upstream.imap import IMAPConnection

log = logging.getLogger(__name__)
_SPOOL_INSERT = ("INSERT INTO spool (message_id, blob, mail_from, rcpts, operator, keywords, stage, attempts, "
                 "sent_headers, decision, created_at, next_attempt, last_error) VALUES (:message_id, :blob, "
                 ":mail_from, :rcpts, :operator, :keywords, :stage, :attempts, :sent_headers, :decision, "
                 ":created_at, :next_attempt, :last_error)")
COALESCE = 0.03  # seconds a nudge waits for more before the spool is read
RETRY_MARK = ".retry-"  # in the spool name of an item split off to retry some recipients


class Relay(AppendStage):
    def __init__(self, *, store: StoreHandle, upstream: Upstream, outbound: Outbound, writer: BatchWriter,
                 held_timeout: float | None = None, held_timeout_action: str = "reject") -> None:
        self.store = store
        self.held_timeout = held_timeout
        self.held_timeout_action = held_timeout_action
        self._next_expiry_check = 0.0
        self.upstream = upstream
        self.outbound = outbound
        self.writer = writer
        tls = upstream_tls(upstream)
        self.smtp = [SMTPConnection(upstream, tls) for _ in range(outbound.relay_connections)]
        self.imap = IMAPConnection(upstream, tls)
        self._wake = asyncio.Event()
        self._queue: asyncio.Queue[DueItem] = asyncio.Queue()
        self._appends: asyncio.Queue[DueItem] = asyncio.Queue()
        self._in_flight: set[int] = set()
        self._busy = 0  # items a worker is processing right now
        self._finishing: set[asyncio.Task[None]] = set()  # Sent copies being recorded
        # At most this many copies stored in Sent but not yet recorded (a batch being recorded
        # while the next goes out): after a crash, those are looked for before they are filed again.
        self._unrecorded = asyncio.Semaphore(UNRECORDED_APPENDS)
        # Likewise sends the upstream took but not yet recorded (after a crash, those go out
        # again): two per connection, one being recorded while the next is sent.
        self._unrecorded_sends = asyncio.Semaphore(2 * outbound.relay_connections)
        self.linked = False  # a spool file got a new name (hard link) in the batch being written
        self._started = utcnow()
        self._tasks: list[asyncio.Task[None]] = []
        self.archive_dir = store.data_dir / "messages"

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._dispatch(), name="relay-dispatch")]
        self._tasks += [asyncio.create_task(self._sender(c), name=f"relay-smtp-{i}") for i, c in enumerate(self.smtp)]
        self._tasks.append(asyncio.create_task(self._appender(), name="relay-append"))

    async def stop(self, grace: float = 30.0) -> None:
        """Stop taking new items, let sends in progress finish (a send cut off after the
        final dot would go out again after restart), then stop the workers."""
        self._tasks[0].cancel()  # the dispatcher
        for queue in (self._queue, self._appends):  # not started: left for the next start, whole
            while not queue.empty():
                self._in_flight.discard(queue.get_nowait().id)
        deadline = asyncio.get_running_loop().time() + grace
        while self._busy and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for t in (*self._tasks, *self._finishing):
            t.cancel()
        await asyncio.gather(*self._tasks, *self._finishing, return_exceptions=True)
        for c in self.smtp:
            await c.close()
        await self.imap.close()

    # -- dispatch ----------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            try:
                # Snapshot what is in flight *before* reading: an item that finishes after the
                # snapshot has committed its new stage before leaving the set, so a read that
                # starts later cannot see it stale.
                items = await asyncio.to_thread(self._load_due, set(self._in_flight))
            except Exception:
                log.exception("cannot read the spool; retrying")
                items = []
            for item in items:
                assert item.id is not None
                if item.id in self._in_flight:
                    continue
                # A Sent copy due since before this process started may have been stored by the
                # process before it, which died before recording it.
                item.verify = item.stage == "append" and _aware(item.next_attempt) <= self._started
                self._in_flight.add(item.id)
                (self._queue if item.stage == "relay" else self._appends).put_nowait(item)  # append, notice
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0 if items else 5.0)
                # Let the nudges of a burst of accepted messages arrive: one read of the spool
                # for all of them, not one each (each read skips everything in flight).
                await asyncio.sleep(COALESCE)
            except asyncio.TimeoutError:
                pass

    def _expire_held(self) -> None:
        """Held mail nobody decided on within ``[rules] quarantine_timeout``: release or reject it."""
        if self.held_timeout is None:
            return
        cutoff = utcnow() - timedelta(seconds=self.held_timeout)
        # It writes (release/reject): take the write lock at BEGIN, as the other writers do.
        with Session(writer_engine(self.store.engine), expire_on_commit=False) as s:
            for item in expired(session=s, older_than=cutoff):
                if self.held_timeout_action == "release":
                    release(session=s, audit=self.store.audit, message_id=item.message_id, actor="system",
                            note="quarantine timeout")
                else:
                    reason = "nobody reviewed it in time / 超时未审核"
                    msg = s.get(Message, item.message_id)
                    notice = build_notice(shared=self.upstream.username, operator=item.operator,
                                          subject=f"Not sent / 未发送: {msg.subject if msg else ''}",
                                          text=f"Your held message was not sent: {reason}.\n",
                                          kind="rejected", ref=str(item.message_id))
                    reject(session=s, audit=self.store.audit, spool_dir=self.store.spool_dir,
                           message_id=item.message_id, actor="system", reason=reason, notice=notice)

    def _load_due(self, busy: set[int]) -> list[DueItem]:
        now = time.monotonic()
        if now >= self._next_expiry_check:
            self._next_expiry_check = now + 30
            try:
                self._expire_held()
            except Exception:
                log.exception("quarantine expiry round failed")
        with Session(self.store.engine, expire_on_commit=False) as s:
            return list(due(session=s, now=utcnow(), limit=500, exclude=busy))

    # -- relay stage -------------------------------------------------------

    async def _sender(self, conn: SMTPConnection) -> None:
        while True:
            item = await self._queue.get()
            self._busy += 1
            await self._unrecorded_sends.acquire()  # released once this send is recorded (or failed)
            try:
                sent = await self._send(conn, item)
            except Exception:
                sent = None
                await self._failed_unexpectedly(item)
            if sent is None:
                self._unrecorded_sends.release()
                assert item.id is not None
                self._in_flight.discard(item.id)
                self._busy -= 1
                continue
            # The upstream said 250: record it while this connection sends the next one (the
            # records of several sends then share a commit).
            task = asyncio.create_task(self._delivered(item, *sent), name=f"delivered-{item.id}")
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    async def _send(self, conn: SMTPConnection, item: DueItem) -> tuple[list[str], SendResult] | None:
        """Relay one item; its recipients and the upstream's answer, or None when it is dealt
        with already (a retry scheduled, a bounce sent)."""
        path = self.store.spool_dir / item.blob
        tags = self._exposed(item)
        data = Source(tags, path)
        rcpts: list[str] = json.loads(item.rcpts)
        try:
            await data.open()
            return rcpts, await conn.send(item.mail_from, rcpts, data)
        except TemporaryFailure as exc:
            await self._temporary(item, str(exc))
        except PermanentFailure as exc:
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
            delivered = [r for r in rcpts if r not in result.refused]
            try:
                await self.writer.run(lambda s: self._record_delivery(s, item, delivered, temporary), plain=True)
            finally:
                self._unrecorded_sends.release()
            log.info("relayed message=%s operator=%s delivered=%d", item.message_id, item.operator, len(delivered))
            if permanent:
                await self._bounce(item, list(permanent), "; ".join(f"{r}: {e}" for r, e in permanent.items()),
                                   await spool_head(self.store.spool_dir / item.blob, self._exposed(item)),
                                   partial=bool(delivered or temporary))
            if delivered and _next_stage(item) == "done":  # a retry of some recipients: nothing to file
                self._archive(item.blob)
            elif delivered:
                item.stage = "append"
                item.rcpts = json.dumps(delivered)
                self._appends.put_nowait(item)
                handed_on = True
        except Exception:
            await self._failed_unexpectedly(item)
        finally:
            if not handed_on:
                assert item.id is not None
                self._in_flight.discard(item.id)
            self._busy -= 1

    def _record_delivery(self, s: Session, item: DueItem, delivered: list[str], temporary: dict[str, str]) -> None:
        """The upstream said 250: record it at once (this is what makes delivery exactly-once).

        Plain UPDATEs by id on the writer thread; ``item`` is the in-flight snapshot, whose
        row nobody else changes while it is in flight."""
        db, now = raw(s), utcnow()
        if delivered:
            if temporary:
                # Some recipients must be retried: split them off as their own relay item, with
                # its own name for the file (a hard link), so each item files its own.  The
                # message's Sent copy is this item's: the retry is relayed only (see _next_stage).
                twin = f"{item.blob[:-4]}{RETRY_MARK}{uuid.uuid4().hex[:8]}.eml"
                os.link(self.store.spool_dir / item.blob, self.store.spool_dir / twin)
                self.linked = True  # the writer must make the new name durable before this commit
                db.execute(_SPOOL_INSERT, {
                    "message_id": item.message_id, "blob": twin, "mail_from": item.mail_from,
                    "rcpts": json.dumps(list(temporary)), "operator": item.operator, "keywords": "",
                    "stage": "relay", "attempts": item.attempts + 1, "sent_headers": item.sent_headers,
                    "decision": "", "created_at": now,
                    "next_attempt": now + backoff(item.attempts + 1, self.outbound.retry_initial),
                    "last_error": "; ".join(temporary.values())[:2000]})
            db.execute("UPDATE spool SET stage = :stage, rcpts = :rcpts, next_attempt = :now WHERE id = :id",
                       {"stage": _next_stage(item), "rcpts": json.dumps(delivered), "now": now, "id": item.id})
            db.execute("UPDATE messages SET status = 'delivered', delivered_at = :now WHERE id = :id",
                       {"now": now, "id": item.message_id})
            self.store.audit.append(actor=item.operator, action="send.delivered", target=",".join(delivered),
                                    session=s, message=item.message_id)
        else:  # nothing delivered: retry only the temporary refusals (the others are bounced)
            db.execute("UPDATE spool SET rcpts = :rcpts, attempts = :attempts, next_attempt = :next, "
                       "last_error = :error WHERE id = :id", {
                           "rcpts": json.dumps(list(temporary)), "attempts": item.attempts + 1,
                           "next": now + backoff(item.attempts + 1, self.outbound.retry_initial),
                           "error": "; ".join(temporary.values())[:2000], "id": item.id})

    def _exposed(self, item: DueItem) -> bytes:
        """The tag headers when the customer sees them too, else nothing.  Never the ref: a copy
        the upstream keeps of what it sent (Gmail, Office 365 do) must not pass for the gateway's."""
        if not (self.outbound.expose_headers and item.sent_headers):
            return b""
        return without_ref(item.sent_headers).encode("ascii")

    async def _temporary(self, item: DueItem, error: str) -> None:
        age = (utcnow() - _aware(item.created_at)).total_seconds()
        if age >= self.outbound.retry_max_age:
            head = await spool_head(self.store.spool_dir / item.blob, self._exposed(item))
            await self._bounce(item, json.loads(item.rcpts),
                               f"could not be delivered for {timedelta(seconds=int(age))}; last error: {error}", head)
            return
        log.info("temporary failure message=%s attempt=%d: %s", item.message_id, item.attempts + 1, error)
        await self._retry_later(item, error)

    async def _failed_unexpectedly(self, item: DueItem) -> None:
        """A bug or a database hiccup while relaying: logged, and the item tried again later."""
        log.exception("relay of spool item %s failed unexpectedly; it stays queued", item.id)
        try:
            await self._temporary(item, "internal error in the gateway")
        except Exception:
            log.exception("cannot reschedule spool item %s", item.id)

    async def _retry_later(self, item: DueItem, error: str) -> None:
        """Schedule the next attempt.  Never raises: a worker must not die of a database hiccup
        (the item then stays due and the dispatcher offers it again)."""

        def update(s: Session) -> None:
            row = s.get(SpoolItem, item.id)
            if row is None:
                return
            row.attempts += 1
            row.next_attempt = utcnow() + backoff(row.attempts, self.outbound.retry_initial)
            row.last_error = error[:2000]
            s.add(row)

        try:
            await self.writer.run(update)
        except Exception:
            log.exception("cannot record the next attempt for message=%s", item.message_id)

    async def _bounce(self, item: DueItem, rcpts: list[str], reason: str, original: bytes, *, partial: bool = False) -> None:
        """Tell the operator: a bounce report in the shared INBOX, tagged for them.
        ``original``: the message's header block at least (see :func:`_head`)."""
        report = build_bounce(shared=self.upstream.username, operator=item.operator, rcpts=rcpts, reason=reason,
                              original=original)
        try:
            await self.imap.append(self.upstream.inbox_folder, report, [], [keyword("op", item.operator), "$mw_bounce"])
        except TemporaryFailure as exc:
            log.warning("cannot deliver the bounce for message=%s yet: %s", item.message_id, exc)
            await self._retry_later(item, f"bounce pending: {exc}")
            return

        def record(s: Session) -> None:
            row = s.get(SpoolItem, item.id)
            msg = s.get(Message, item.message_id)
            if row is not None and not partial:
                row.stage = "bounced"
                row.last_error = reason[:2000]
                s.add(row)
            if msg is not None and not partial:
                msg.status = "bounced"
                msg.status_detail = reason[:2000]
                s.add(msg)
            self.store.audit.append(actor=item.operator, action="send.bounced", target=",".join(rcpts),
                                    session=s, message=item.message_id, reason=reason[:500])

        await self.writer.run(record)
        if not partial:
            await asyncio.to_thread(self._archive, item.blob)
        log.warning("bounced message=%s operator=%s: %s", item.message_id, item.operator, reason[:200])


def _next_stage(item: DueItem) -> str:
    """After the upstream took an item: its Sent copy next, unless it is the retry of some of
    a message's recipients, whose copy the first delivery filed."""
    return "done" if RETRY_MARK in item.blob else "append"


def _aware(ts):  # type: ignore[no-untyped-def]
    from datetime import timezone

    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts
