"""The delivery worker's append stage: the tagged copy of each relayed message into the
upstream Sent folder (and the operator's notices into the INBOX), then the record that it is
there and the message's bytes filed under ``messages/``.  A mixin of :class:`.relay.Relay`,
whose queues, writer and IMAP connection it shares.

Copies waiting together go in one APPEND (MULTIAPPEND, when the upstream has it) and their
records in one commit; a batch the upstream refuses is retried copy by copy, so that one bad
copy does not hold the others back.  At most :data:`UNRECORDED_APPENDS` copies are in Sent but
not yet recorded.  A copy that may be there already (tried before, or left by a deliverer that
died before recording it) is looked for by its ``X-Mailwarden-Ref`` before it is filed again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mailwarden.store.rawsql import raw
from mailwarden.store.spool import DueItem
from sqlmodel import Session

from mailwarden.gateway.headers import sent_ref
from mailwarden.gateway.upstream.source import Source, TemporaryFailure
from mailwarden.gateway.upstream.imap import Refused

if TYPE_CHECKING:
    from mailwarden.gateway.delivery.relay import Relay

log = logging.getLogger(__name__)
APPEND_BATCH = 8  # Sent copies in one APPEND at most (when the upstream has MULTIAPPEND)
UNRECORDED_APPENDS = 2 * APPEND_BATCH  # a batch being recorded while the next goes out
APPEND_LINGER = 0.05  # seconds a Sent copy waits for others to go in the same APPEND


class AppendStage:
    async def _appender(self: Relay) -> None:
        carry: DueItem | None = None  # taken from the queue but not for the batch before it
        while True:
            item = carry or await self._appends.get()
            carry = None
            batch = [item]
            self._busy += 1
            await self._unrecorded.acquire()  # released by _append_batch, or once the copy is recorded
            if item.stage != "notice" and self._appends.qsize() < APPEND_BATCH - 1:
                await asyncio.sleep(APPEND_LINGER)  # nobody waits for a Sent copy: let others join it
            # The copies waiting now go together: one APPEND (MULTIAPPEND), one commit for their records.
            while (item.stage != "notice" and len(batch) < APPEND_BATCH and not self._appends.empty()
                   and not self._unrecorded.locked()):
                more = self._appends.get_nowait()
                if more.stage == "notice":
                    carry = more
                    break
                self._busy += 1
                await self._unrecorded.acquire()  # not locked: returns at once
                batch.append(more)
            await self._append_batch(batch)

    async def _append_batch(self: Relay, batch: list[DueItem]) -> None:
        """Store a notice in the INBOX (the operator's view), or several Sent copies (the
        message as it went out, plus the tags) in one go, then hand them on to be recorded."""
        notice = batch[0].stage == "notice"
        sources, ready = [], []
        for item in batch:  # opened here: a spool file that cannot be read fails alone
            src = Source(b"" if notice else item.sent_headers.encode("ascii"), self.store.spool_dir / item.blob)
            try:
                await src.open()
            except OSError as exc:
                await self._not_stored(item, f"cannot read the spool file: {exc.strerror or exc}")
                continue
            sources.append(src)
            ready.append(item)
        folder = self.upstream.inbox_folder if notice else self.upstream.sent_folder
        if not notice:
            sources, ready = await self._not_there_yet(folder, sources, ready)
        if not ready:
            return
        stored, failed, error = 0, False, ""
        try:
            await self.imap.append_many(folder, [(src, [] if notice else ["\\Seen"], item.keywords.split())
                                                 for src, item in zip(sources, ready)])
            stored = len(ready)
        except Refused as exc:  # one of them (too big?) must not hold the others back: one by one
            stored, failed, error = getattr(exc, "stored", 0), True, str(exc)
            if len(ready) - stored > 1:
                for src in sources:
                    src.close()
                self._record_appended(ready[:stored])
                for item in ready[stored:]:
                    await self._append_batch([item])
                return
        except TemporaryFailure as exc:
            stored, failed, error = getattr(exc, "stored", 0), True, str(exc)
        except Exception as exc:
            log.exception("Sent copy of message=%s failed unexpectedly", ready[0].message_id)
            stored, failed, error = getattr(exc, "stored", 0), True, "internal error while storing the Sent copy"
        finally:
            for src in sources:
                src.close()
        self._record_appended(ready[:stored])
        if failed:
            for item in ready[stored:]:
                await self._not_stored(item, error)

    async def _not_there_yet(self: Relay, folder: str, sources: list[Source],
                             ready: list[DueItem]) -> tuple[list[Source], list[DueItem]]:
        """Leave out the copies already in ``folder``: asked (by ``X-Mailwarden-Ref``) for those
        tried before (an APPEND cut off may have gone through) and those a crashed process may
        have stored without recording.  The ones found are recorded as stored."""
        check = {item.id: ref for item in ready if item.attempts > 0 or item.verify
                 if (ref := sent_ref(item.sent_headers)) is not None}
        if not check:
            return sources, ready
        try:
            there = await self.imap.stored(folder, list(check.values())) or set()  # None: cannot tell
        except Exception as exc:  # not knowing, filing them again could file them twice: later
            if not isinstance(exc, TemporaryFailure):
                log.exception("cannot look for Sent copies in %s", folder)
            for src in sources:
                src.close()
            for item in ready:
                await self._not_stored(item, str(exc) if isinstance(exc, TemporaryFailure) else "internal error")
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

    def _record_appended(self: Relay, stored: list[DueItem]) -> None:
        """Record these copies while the next APPEND goes out: the records of several batches
        then share a commit instead of one commit (and one wait) each."""
        if stored:
            task = asyncio.create_task(self._appended(stored), name=f"appended-{stored[0].id}")
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    async def _not_stored(self: Relay, item: DueItem, error: str) -> None:
        """The copy is not in the folder: try again later; the item leaves the stage."""
        log.warning("Sent copy of message=%s not stored yet: %s", item.message_id, error)
        try:
            await self._retry_later(item, f"Sent copy pending: {error}")
        finally:
            self._unrecorded.release()
            self._in_flight.discard(item.id)
            self._busy -= 1

    async def _appended(self: Relay, batch: list[DueItem]) -> None:
        """The copies are in their folder: mark the items done, then file their bytes.  An item
        stays in flight (the dispatcher does not offer it again) until its row says done."""
        try:
            await self.writer.run(lambda s: self._record_append(s, [item.id for item in batch]), plain=True)
            for item in batch:
                self._archive(item.blob)  # a rename: cheaper than a thread hop
        except Exception:
            log.exception("cannot record the Sent copy of message=%s", batch[0].message_id)
            for item in batch:
                await self._retry_later(item, "internal error while recording the Sent copy")
        finally:
            for item in batch:
                self._unrecorded.release()
                self._in_flight.discard(item.id)
                self._busy -= 1

    @staticmethod
    def _record_append(s: Session, ids: list[int]) -> None:
        db = raw(s)
        for item_id in ids:
            db.execute("UPDATE spool SET stage = 'done' WHERE id = :id", {"id": item_id})

    def _archive(self: Relay, blob: str) -> None:
        """Keep the message as sent under messages/YYYY/MM."""
        src = self.store.spool_dir / blob
        dest_dir = self.archive_dir / blob[:4] / blob[4:6]
        dest_dir.mkdir(parents=True, exist_ok=True)
        try:
            src.replace(dest_dir / blob)
        except FileNotFoundError:
            pass
