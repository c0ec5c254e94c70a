"""The Sent-copy stage: the tagged copy of each relayed message into the upstream Sent folder
(and the operator's notices into the INBOX), then the record that it is there and the
message's bytes filed under ``messages/``.  :class:`SentCopies` is given the IMAP connection
and the deliverer's bookkeeping (:class:`.inflight.InFlight`) by :class:`.relay.Relay`, which
feeds its :attr:`~SentCopies.queue`.

Copies waiting together go in one APPEND (MULTIAPPEND, when the upstream has it) and their
records in one commit; a batch the upstream refuses is retried copy by copy, so that one bad
copy does not hold the others back.  At most :data:`UNRECORDED_APPENDS` copies are in Sent but
not yet recorded.  A copy that may be there already (tried before, or left by a deliverer that
died before recording it) is looked for by its ``X-Mailwarden-Ref`` (by its ``Message-ID`` when
it was spooled without one) before it is filed again.  A spool file that is not what was
accepted is not filed: the item is shunted with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from mailwarden.store import StoreHandle
from mailwarden.store.spool import DueItem, damaged, sent_copies_filed
from mailwarden.store.spool import states as st

from mailwarden.gateway import metrics
from mailwarden.gateway.config import Upstream
from mailwarden.gateway.delivery.inflight import InFlight
from mailwarden.gateway.delivery.notices import read_head
from mailwarden.gateway.headers import sent_ref, split_headers
from mailwarden.gateway.upstream.imap import IMAPConnection, Refused
from mailwarden.gateway.upstream.source import Source, TemporaryFailure

log = logging.getLogger(__name__)
APPEND_BATCH = 8  # Sent copies in one APPEND at most (when the upstream has MULTIAPPEND)
UNRECORDED_APPENDS = 2 * APPEND_BATCH  # a batch being recorded while the next goes out
APPEND_LINGER = 0.05  # seconds a Sent copy waits for others to go in the same APPEND


class SentCopies:
    """The worker of the ``append`` and ``notice`` stages."""

    def __init__(self, *, work: InFlight, imap: IMAPConnection, upstream: Upstream, store: StoreHandle) -> None:
        self.work = work
        self.store = store
        self.imap = imap
        self.upstream = upstream
        self.spool_dir: Path = store.spool_dir
        self.queue: asyncio.Queue[DueItem] = asyncio.Queue()
        # At most this many copies stored in Sent but not yet recorded (a batch being recorded
        # while the next goes out): after a crash, those are looked for before they are filed again.
        self.unrecorded = asyncio.Semaphore(UNRECORDED_APPENDS)

    async def run(self) -> None:
        """Take the queued items, in batches, until cancelled."""
        carry: DueItem | None = None  # taken from the queue but not for the batch before it
        while True:
            item = carry or await self.queue.get()
            carry = None
            batch = [item]
            await self.work.writable.wait()  # a copy whose record cannot be written would be filed again
            self.work.start()
            await self.unrecorded.acquire()  # released by _append_batch, or once the copy is recorded
            if item.stage != st.NOTICE and self.queue.qsize() < APPEND_BATCH - 1:
                await asyncio.sleep(APPEND_LINGER)  # nobody waits for a Sent copy: let others join it
            # The copies waiting now go together: one APPEND (MULTIAPPEND), one commit for their records.
            while (item.stage != st.NOTICE and len(batch) < APPEND_BATCH and not self.queue.empty()
                   and not self.unrecorded.locked()):
                more = self.queue.get_nowait()
                if more.stage == st.NOTICE:
                    carry = more
                    break
                self.work.start()
                await self.unrecorded.acquire()  # not locked: returns at once
                batch.append(more)
            await self._append_batch(batch)

    async def _append_batch(self, batch: list[DueItem]) -> None:
        """Store a notice in the INBOX (the operator's view), or several Sent copies (the
        message as it went out, plus the tags) in one go, then hand them on to be recorded."""
        notice = batch[0].stage == st.NOTICE
        sources, ready = [], []
        for item in batch:  # opened here: a spool file that cannot be read fails alone
            if not notice and await self._damaged(item):
                continue
            src = Source(b"" if notice else item.sent_headers.encode("ascii"), self.spool_dir / item.blob)
            try:
                await src.open()
            except OSError as exc:
                await self._not_stored(item, exc)
                continue
            sources.append(src)
            ready.append(item)
        folder = self.upstream.inbox_folder if notice else self.upstream.sent_folder
        if not notice:
            sources, ready = await self._not_there_yet(folder, sources, ready)
        if not ready:
            return
        stored, failure = 0, None
        try:
            await self.imap.append_many(folder, [(src, [] if notice else ["\\Seen"], item.keywords.split())
                                                 for src, item in zip(sources, ready)])
            stored = len(ready)
        except Refused as exc:  # one of them (too big?) must not hold the others back: one by one
            stored, failure = getattr(exc, "stored", 0), exc
            if len(ready) - stored > 1:
                for src in sources:
                    src.close()
                self._record_appended(ready[:stored])
                for item in ready[stored:]:
                    await self._append_batch([item])
                return
        except Exception as exc:  # TemporaryFailure, or a bug (then the item may be shunted)
            if not isinstance(exc, TemporaryFailure):
                log.exception("Sent copy of message=%s failed unexpectedly", ready[0].message_id)
            stored, failure = getattr(exc, "stored", 0), exc
        finally:
            for src in sources:
                src.close()
        self._record_appended(ready[:stored])
        if failure is not None:
            for item in ready[stored:]:
                await self._not_stored(item, failure)

    async def _not_there_yet(self, folder: str, sources: list[Source],
                             ready: list[DueItem]) -> tuple[list[Source], list[DueItem]]:
        """Leave out the copies already in ``folder``: asked (by ``X-Mailwarden-Ref``) for those
        tried before (an APPEND cut off may have gone through) and those a crashed process may
        have stored without recording.  The ones found are recorded as stored."""
        unsure = [item for item in ready if item.attempts > 0 or item.verify]
        check = {item.id: ref for item in unsure if (ref := sent_ref(item.sent_headers)) is not None}
        by_id = {item.id: mid for item in unsure if item.id not in check
                 if (mid := await asyncio.to_thread(self._message_id, item)) is not None}
        if not check and not by_id:
            return sources, ready
        try:
            # None: the server cannot tell
            there = (await self.imap.stored(folder, list(check.values())) or set()) if check else set()
            if by_id:  # spooled without a ref: its Message-ID says whether it is there
                found_ids = await self.imap.stored(folder, list(by_id.values()), "Message-ID") or set()
                check.update({i: mid for i, mid in by_id.items() if mid in found_ids})
                there |= {mid for mid in by_id.values() if mid in found_ids}
        except Exception as exc:  # not knowing, filing them again could file them twice: later
            if not isinstance(exc, TemporaryFailure):
                log.exception("cannot look for Sent copies in %s", folder)
            for src in sources:
                src.close()
            for item in ready:
                await self._not_stored(item, exc)
            return [], []
        found, keep = [], []
        for src, item in zip(sources, ready):
            if check.get(item.id) in there:
                log.info("Sent copy of message=%s is in %s already: not stored again", item.message_id, folder)
                src.close()
                found.append(item)
            else:
                keep.append((src, item))
        self._record_appended(found)
        return [src for src, _ in keep], [item for _, item in keep]

    def _message_id(self, item: DueItem) -> str | None:
        """The ``Message-ID`` in the spool file's header block (None: none, or no file)."""
        try:
            head = read_head(self.spool_dir / item.blob, b"")
        except OSError:
            return None
        value = split_headers(head).get("message-id")
        return value.strip() if value and value.strip() else None

    async def _damaged(self, item: DueItem) -> bool:
        """Whether the spool file is not what was accepted: then shunted with the reason (the
        customer has the message; what is missing is its copy in Sent)."""
        reason = await self.work.damage(item)
        if reason is None:
            return False
        log.error("Sent copy of message=%s operator=%s not filed: %s", item.message_id, item.operator, reason)
        try:
            await self.work.record(lambda s: damaged(session=s, audit=self.store.audit, item=item, reason=reason,
                                                     spool_dir=self.spool_dir))
        except Exception as exc:
            log.exception("cannot shunt message=%s", item.message_id)
            await self.work.failed(item, exc)
        finally:
            self.unrecorded.release()
            self.work.release(item)
            self.work.stop()
        return True

    def _record_appended(self, stored: list[DueItem]) -> None:
        """Record these copies while the next APPEND goes out: the records of several batches
        then share a commit instead of one commit (and one wait) each."""
        if stored:
            self.work.meanwhile(self._appended(stored), name=f"appended-{stored[0].id}")

    async def _not_stored(self, item: DueItem, exc: BaseException) -> None:
        """The copy is not in the folder: tried again later (the upstream said no or is
        unreachable), or counted towards the shunt (anything else); the item leaves the stage."""
        try:
            if isinstance(exc, (TemporaryFailure, Refused)):
                metrics.upstream_error("imap", "temporary")
                log.warning("Sent copy of message=%s not stored yet: %s", item.message_id, exc)
                await self.work.retry_later(item, f"Sent copy pending: {exc}")
            else:  # an unreadable spool file does not come back by itself: shunted after a few tries
                await self.work.failed(item, exc)
        finally:
            self.unrecorded.release()
            self.work.release(item)
            self.work.stop()

    async def _appended(self, batch: list[DueItem]) -> None:
        """The copies are in their folder: mark the items done, then file their bytes.  An item
        stays in flight (the dispatcher does not offer it again) until its row says done."""
        try:
            await self.work.record(lambda s: sent_copies_filed(session=s, items=batch))
            for item in batch:
                self.work.file_sent(item.blob)  # a rename: cheaper than a thread hop
        except Exception as exc:
            log.exception("cannot record the Sent copy of message=%s", batch[0].message_id)
            for item in batch:
                await self.work.failed(item, exc)
        finally:
            for item in batch:
                self.unrecorded.release()
                self.work.release(item)
                self.work.stop()
