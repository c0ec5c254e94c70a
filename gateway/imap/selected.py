"""The selected mailbox of a session: its messages by sequence number, what changed under it,
and the commands that act on its messages (FETCH, STORE, SEARCH, COPY/MOVE, EXPUNGE).

The session's list of messages changes only when it tells the client: new mail as EXISTS,
flags changed elsewhere (another device of the same user) as FETCH, messages gone as EXPUNGE —
and EXPUNGE only where RFC 3501 7.4.1 allows it (not during FETCH, STORE or SEARCH by sequence
number), so a client's sequence numbers never shift under a command.  Every command first asks
the store whether the view or the box moved (one small query) and takes what changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mailwarden.store import StoreHandle
from mailwarden.store import imapchanges as changes, imapstate as st
from mailwarden.store.imapstate import BoxInfo, Message

from .commands import STAR, Copy, Fetch, FetchItem, Search, SequenceSet, Store
from .fetching import render_item, sets_seen, sources
from .searching import Candidate, SearchContext, search
from .respond import flag_list, sequence_set

SYSTEM = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
CHUNK = 100  # messages rendered per worker-thread call: the loop writes one chunk while the next renders
Write = Callable[[bytes], Awaitable[None]]


@dataclass
class Selected:
    box: BoxInfo
    readonly: bool
    messages: list[Message]
    epoch: int
    condstore: bool = False
    known_modseq: int = 0
    gone: set[int] = field(default_factory=set)  # UIDs expunged in the store, not yet told
    keywords: set[str] = field(default_factory=set)  # told in FLAGS: a client must not see others
    recent: set[int] = field(default_factory=set)  # UIDs \\Recent to this session

    def __post_init__(self) -> None:
        self.known_modseq = self.box.highest_modseq
        self.keywords = {f for m in self.messages for f in m.flags if not f.startswith("\\")}

    def flags_lines(self) -> bytes:
        """FLAGS and PERMANENTFLAGS: the system flags and every keyword in the mailbox."""
        names = [*SYSTEM, *sorted(self.keywords)]
        permanent = b"()" if self.readonly else flag_list([*names, "\\*"])
        return (b"* FLAGS " + flag_list(names) + b"\r\n* OK [PERMANENTFLAGS " + permanent + b"] Flags\r\n")

    def _new_keywords(self, messages: list[Message]) -> bytes:
        """FLAGS again when these messages carry keywords the client was not told of (RFC 3501 7.2.6)."""
        new = {f for m in messages for f in m.flags if not f.startswith("\\")} - self.keywords
        if not new:
            return b""
        self.keywords |= new
        return self.flags_lines()

    # --- which messages a set names ------------------------------------------------------

    def resolve(self, messages: SequenceSet, uid: bool) -> list[tuple[int, Message]]:
        """(sequence number, message) of each message ``messages`` names, in order."""
        if not self.messages:
            return []
        if uid:
            largest = self.messages[-1].uid
            ranges = messages.resolve(largest)
            return [(i + 1, m) for i, m in enumerate(self.messages) if any(a <= m.uid <= b for a, b in ranges)]
        ranges = messages.resolve(len(self.messages))
        out = []
        for a, b in ranges:
            for seq in range(max(a, 1), min(b, len(self.messages)) + 1):
                out.append(seq)
        return [(seq, self.messages[seq - 1]) for seq in sorted(set(out))]

    def valid_sequence(self, messages: SequenceSet) -> bool:
        """A sequence set by number names only messages that exist (RFC 3501: else BAD); ``*``
        names the last one, and nothing in an empty mailbox."""
        n = len(self.messages)
        return all(end == STAR or 0 < end <= n for pair in messages.ranges for end in pair)

    # --- what changed ----------------------------------------------------------------------

    async def catch_up(self, store: StoreHandle, user_id: int, write: Write, *, expunge: bool) -> None:
        """Tell the client what changed in the box since it last heard: EXISTS, FETCH FLAGS and
        (when ``expunge``) EXPUNGE."""
        update = await asyncio.to_thread(st.poll_if_moved, store.engine, user_id, self.box.id, self.epoch,
                                         self.known_modseq, claim=not self.readonly)
        if update is not None:
            self.epoch, self.known_modseq = update.epoch, update.box.highest_modseq
            self.box = update.box
            self.gone.update(update.expunged)
            by_uid = {m.uid: i for i, m in enumerate(self.messages)}
            if update.changed:
                self._own()
            added = 0
            for m in update.changed:
                i = by_uid.get(m.uid)
                if i is None:
                    if m.uid > (self.messages[-1].uid if self.messages else 0):
                        self.messages.append(m)
                        added += 1
                        if update.recent_above is not None and m.uid > update.recent_above:
                            self.recent.add(m.uid)
                        told = self._new_keywords([m])
                        if told:
                            await write(told)
                    continue
                old = self.messages[i]
                self.messages[i] = m
                if old.flags != m.flags:
                    await write(self._new_keywords([m]) + self.flags_line(i + 1, m, uid=False))
            if expunge:
                await self.tell_expunged(write)
            if added:
                await write(b"* %d EXISTS\r\n* %d RECENT\r\n" % (len(self.messages), len(self.recent)))
        elif expunge and self.gone:
            await self.tell_expunged(write)

    async def tell_expunged(self, write: Write) -> None:
        if not self.gone:
            return
        keep = []
        out = []
        seq = 0
        for m in self.messages:
            seq += 1
            if m.uid in self.gone:
                out.append(b"* %d EXPUNGE\r\n" % seq)
                self.recent.discard(m.uid)
                seq -= 1
            else:
                keep.append(m)
        self.messages = keep
        self.gone.clear()
        if out:
            await write(b"".join(out))

    def flag_names(self, m: Message) -> list[str]:
        return sorted(m.flags | {"\\Recent"}) if m.uid in self.recent else sorted(m.flags)

    def flags_line(self, seq: int, m: Message, *, uid: bool) -> bytes:
        parts = [b"FLAGS " + flag_list(self.flag_names(m))]
        if uid:
            parts.insert(0, b"UID %d" % m.uid)
        if self.condstore:
            parts.append(b"MODSEQ (%d)" % m.modseq)
        return b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n"

    # --- FETCH -------------------------------------------------------------------------------

    async def fetch(self, cmd: Fetch, store: StoreHandle, user_id: int, masked: bool, write: Write) -> int:
        """Answer FETCH; returns how many message bodies (or parts of them) it served."""
        chosen = self.resolve(cmd.messages, cmd.uid)
        if cmd.changed_since is not None:
            chosen = [(seq, m) for seq, m in chosen if m.modseq > cmd.changed_since]
        if not chosen:
            return 0
        items = list(cmd.items)
        if not self.readonly and any(sets_seen(i) for i in items):
            unseen = [m.mail_id for _, m in chosen if "\\Seen" not in m.flags]
            if unseen:
                after, _ = await asyncio.to_thread(changes.store_flags, store.engine, user_id, self.box.id, unseen,
                                                   "+", ["\\Seen"])
                self._take(after)
                chosen = [(seq, self.messages[seq - 1]) for seq, _ in chosen]
                if not any(i.name == "FLAGS" for i in items):
                    items.append(FetchItem("FLAGS"))
        want_modseq = self.condstore and (cmd.changed_since is not None or any(i.name == "MODSEQ" for i in items))
        names = [i for i in items if i.name not in ("UID", "FLAGS", "MODSEQ")]
        flags = any(i.name == "FLAGS" for i in items)
        uid = cmd.uid or any(i.name == "UID" for i in items)
        for start in range(0, len(chosen), CHUNK):
            part = chosen[start:start + CHUNK]
            data = await asyncio.to_thread(self._render, part, names, store, masked, uid=uid, flags=flags,
                                           modseq=want_modseq)
            await write(data)
        return len(chosen) if any(_reads_body(i) for i in items) else 0

    def _render(self, part: list[tuple[int, Message]], items: list[FetchItem], store: StoreHandle, masked: bool,
                *, uid: bool, flags: bool, modseq: bool) -> bytes:
        cache = sources(store.engine)
        found = {m.mail_id: cache.get(m.mail_id, masked) for _, m in part} if items else {}
        missing = [mail_id for mail_id, src in found.items() if src is None]
        if missing:
            for mail_id, mail in st.mail_rows(store.engine, missing).items():
                found[mail_id] = cache.source(mail, masked=masked, blobs=store.blobs)
        out = []
        for seq, m in part:
            fields = []
            if uid:
                fields.append(b"UID %d" % m.uid)
            if flags:
                fields.append(b"FLAGS " + flag_list(self.flag_names(m)))
            if modseq:
                fields.append(b"MODSEQ (%d)" % m.modseq)
            if items:
                src = found.get(m.mail_id)
                if src is None:
                    continue  # gone from the store under us: nothing to say of it
                fields.extend(render_item(i, src, store.blobs) for i in items)
            out.append(b"* %d FETCH (" % seq + b" ".join(fields) + b")\r\n")
        return b"".join(out)

    def _own(self) -> None:
        """Copy the box's shared snapshot before changing the list (other sessions read it)."""
        if isinstance(self.messages, st.Snapshot):
            self.messages = self.messages.owned()

    def _take(self, after: dict[int, Message]) -> None:
        self._own()
        for i, m in enumerate(self.messages):
            new = after.get(m.mail_id)
            if new is not None and new.uid == m.uid:
                # known_modseq stays: what another session changed meanwhile is still to tell
                self.messages[i] = new

    # --- STORE -------------------------------------------------------------------------------

    async def store(self, cmd: Store, store: StoreHandle, user_id: int, write: Write) -> str:
        """Returns the response code of the tagged OK ("" or "[MODIFIED …] ")."""
        chosen = self.resolve(cmd.messages, cmd.uid)
        if not chosen:
            return ""
        ids = [m.mail_id for _, m in chosen]
        modseqs = {m.mail_id: m.modseq for _, m in chosen}
        after, refused = await asyncio.to_thread(changes.store_flags, store.engine, user_id, self.box.id, ids, cmd.mode,
                                                 list(cmd.flags), cmd.unchanged_since, modseqs)
        self._take(after)
        told = self._new_keywords(list(after.values()))
        if told:
            await write(told)
        refused_set = set(refused)
        if not cmd.silent or self.condstore:
            lines = [self.flags_line(seq, self.messages[seq - 1], uid=cmd.uid) for seq, m in chosen
                     if m.mail_id not in refused_set]
            if lines:
                await write(b"".join(lines))
        if refused:
            numbers = [m.uid if cmd.uid else seq for seq, m in chosen if m.mail_id in refused_set]
            return f"[MODIFIED {sequence_set(numbers)}] "
        return ""

    # --- SEARCH ------------------------------------------------------------------------------

    async def search(self, cmd: Search, store: StoreHandle, masked: bool, write: Write) -> bytes:
        """Returns the untagged answer."""
        candidates = [Candidate(i + 1, m.uid, m.mail_id, m.modseq, frozenset(self.flag_names(m)))
                      for i, m in enumerate(self.messages)]

        def run() -> list[Candidate]:
            mails = st.mail_rows(store.engine, [c.mail_id for c in candidates])

            def blob_of(mail):  # type: ignore[no-untyped-def]
                src = sources(store.engine).source(mail, masked=masked, blobs=store.blobs)
                return src.blob, src.facts

            ctx = SearchContext(store.engine, store.blobs, mails, len(self.messages),
                                self.messages[-1].uid if self.messages else 0, blob_of)
            return search(candidates, cmd.criteria, ctx, cmd.charset or "UTF-8")

        found = await asyncio.to_thread(run) if candidates else []
        numbers = [c.uid if cmd.uid else c.seq for c in found]
        if cmd.returns is not None:
            return _esearch(cmd, found, numbers, self.condstore and uses_modseq(cmd.criteria))
        line = b"* SEARCH" + b"".join(b" %d" % n for n in numbers)
        if self.condstore and uses_modseq(cmd.criteria) and found:
            line += b" (MODSEQ %d)" % max(c.modseq for c in found)
        return line + b"\r\n"

    # --- EXPUNGE, COPY, MOVE -------------------------------------------------------------------

    def deleted(self, only: SequenceSet | None = None) -> list[Message]:
        chosen = [m for _, m in self.resolve(only, True)] if only is not None else self.messages
        return [m for m in chosen if "\\Deleted" in m.flags and m.uid not in self.gone]


def _reads_body(item: FetchItem) -> bool:
    """The item serves message text (not a header, not a MIME header): what the access audit counts."""
    if item.name in ("RFC822", "RFC822.TEXT"):
        return True
    if item.name in ("BODY[]", "BINARY[]"):
        return item.section is None or not item.section.text.startswith(("HEADER", "MIME"))
    return False


def uses_modseq(key: object) -> bool:
    from .commands import And, Key, Not, Or

    if isinstance(key, Key):
        return key.name == "MODSEQ"
    if isinstance(key, And):
        return any(uses_modseq(k) for k in key.keys)
    if isinstance(key, Or):
        return uses_modseq(key.left) or uses_modseq(key.right)
    if isinstance(key, Not):
        return uses_modseq(key.key)
    return False


def _esearch(cmd: Search, found: list[Candidate], numbers: list[int], modseq: bool) -> bytes:
    """The ESEARCH answer (RFC 4731); ``modseq``: with the MODSEQ of what it returns (RFC 7162
    3.1.5: of the MIN/MAX messages, or of all found for ALL and COUNT)."""
    returns = cmd.returns or ("ALL",)
    parts = [b'* ESEARCH (TAG "%s")' % cmd.tag.encode()]
    if cmd.uid:
        parts.append(b"UID")
    if numbers:
        if "MIN" in returns:
            parts.append(b"MIN %d" % min(numbers))
        if "MAX" in returns:
            parts.append(b"MAX %d" % max(numbers))
        if "ALL" in returns:
            parts.append(b"ALL " + sequence_set(numbers).encode())
    if "COUNT" in returns:
        parts.append(b"COUNT %d" % len(numbers))
    if modseq and found:
        if "ALL" in returns or "COUNT" in returns:
            shown = found
        else:
            ends = {min(numbers), max(numbers)} & {min(numbers) if "MIN" in returns else -1,
                                                   max(numbers) if "MAX" in returns else -1}
            shown = [c for c, n in zip(found, numbers) if n in ends]
        parts.append(b"MODSEQ %d" % max(c.modseq for c in shown))
    return b" ".join(parts) + b"\r\n"


def copy_uids(chosen: list[tuple[int, Message]], placed: dict[int, int]) -> tuple[str, str]:
    """The source and destination UID sets of COPYUID, in the same order."""
    pairs = [(m.uid, placed[m.mail_id]) for _, m in chosen if m.mail_id in placed]
    return ",".join(str(a) for a, _ in pairs), ",".join(str(b) for _, b in pairs)


__all__ = ["Copy", "Selected", "copy_uids"]
