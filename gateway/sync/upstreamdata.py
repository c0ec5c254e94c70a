"""What the inbound sync's upstream connection (:mod:`.upstream`) hands back, and the pure
reading and planning behind it: a folder's state from the answer to EXAMINE
(:func:`folder_state`), a fetched message (:class:`Fetched`), which messages to fetch
together (:func:`plan_batches`), UID sets as the wire wants them (:func:`uid_set`), the pause
between reconnects (:class:`Backoff`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from mailwarden.gateway.upstream.imap import Refused
from mailwarden.gateway.upstream.imapclient import Reply
from mailwarden.gateway.upstream.imapresponse import MAX_LITERAL
from mailwarden.gateway.upstream.imapwire import Exists, Fetch, Flags, Status, Value, Vanished

MAX_BATCH = 500  # UIDs in one command: a set of scattered UIDs stays well within a server's line limit


@dataclass(frozen=True)
class FolderState:
    """What EXAMINE told about a folder.  ``uidvalidity_changed``: its UIDVALIDITY is not the
    one the caller knew (or this connection saw last): every UID known for it is void.
    ``vanished`` and ``changed`` come only with QRESYNC and a known (uidvalidity, modseq): UIDs
    expunged since (inclusive ranges) and ``uid -> (flags, modseq)`` changed since."""

    name: str
    wire: str  # the name as SELECT wants it
    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None  # None: no CONDSTORE on this server (or NOMODSEQ on this folder)
    permanentflags: tuple[str, ...]  # an EXAMINEd folder reports none: nothing may be changed
    flags: tuple[str, ...]
    uidvalidity_changed: bool = False
    vanished: tuple[tuple[int, int], ...] = ()
    changed: Mapping[int, tuple[tuple[str, ...], int | None]] = field(default_factory=dict)

    @property
    def keywords_allowed(self) -> bool:
        return "\\*" in self.permanentflags


@dataclass(frozen=True)
class Fetched:
    """One new message: its bytes exactly as the server holds them, or none when it is larger
    than a response may carry (``too_large``: report it, do not fetch it)."""

    uid: int
    size: int
    flags: tuple[str, ...]
    internal_date: datetime | None
    body: bytes | None
    modseq: int | None = None

    @property
    def too_large(self) -> bool:
        return self.body is None


def uid_set(uids: Iterable[int]) -> str:
    """``1:5,7,9:12``: the UIDs ascending, each once, runs compressed (QQ Mail and Exmail
    refuse any other order)."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an IMAP set needs at least one number")
    if ordered[0] < 1:
        raise ValueError(f"IMAP numbers start at 1, not {ordered[0]}")
    parts: list[str] = []
    start = prev = ordered[0]
    for n in ordered[1:] + [0]:
        if n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    return ",".join(parts)


def plan_batches(sizes: Iterable[tuple[int, int]], max_bytes: int, max_message: int = MAX_LITERAL,
                 max_count: int = MAX_BATCH) -> list[tuple[list[int], bool]]:
    """``(uid, size)`` pairs, ascending, in groups to fetch together: ``(uids, too_large)``.
    Small messages go several to a group up to ``max_bytes`` (and ``max_count``), one at least
    its size goes alone, and one over ``max_message`` alone with ``too_large``."""
    batches: list[tuple[list[int], bool]] = []
    group: list[int] = []
    held = 0
    for uid, size in sizes:
        if size > max_message or size >= max_bytes:
            if group:
                batches.append((group, False))
                group, held = [], 0
            batches.append(([uid], size > max_message))
            continue
        if group and (held + size > max_bytes or len(group) >= max_count):
            batches.append((group, False))
            group, held = [], 0
        group.append(uid)
        held += size
    if group:
        batches.append((group, False))
    return batches


class Backoff:
    """Pauses between reconnects: ``initial`` seconds, doubling up to ``maximum``, back to
    ``initial`` after :meth:`reset` (a success)."""

    def __init__(self, initial: float = 1.0, maximum: float = 300.0) -> None:
        self.initial, self.maximum = initial, maximum
        self._next = initial

    def next(self) -> float:
        """The pause to make now; the one after it is twice as long."""
        delay, self._next = self._next, min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial

    async def wait(self) -> None:
        await asyncio.sleep(self.next())


def internal_date(value: Value) -> datetime | None:
    """``"17-Jul-1996 02:44:25 -0700"`` (RFC 3501 date-time); None when unreadable."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    try:
        return datetime.strptime(text.strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def flags_of(value: Value) -> tuple[str, ...]:
    return tuple(str(f) for f in value) if isinstance(value, tuple) else ()


def modseq_of(value: Value) -> int | None:
    if isinstance(value, tuple) and value and isinstance(value[0], int):
        return value[0]
    return value if isinstance(value, int) else None


def numbers(ranges: Iterable[tuple[int, int]]) -> set[int]:
    return {n for lo, hi in ranges for n in range(lo, hi + 1)}


def folder_state(name: str, wire: str, reply: Reply, known: int | None, *, server: str) -> FolderState:
    """The state an EXAMINE or SELECT of ``name`` answered; ``known``: the UIDVALIDITY known before."""
    codes: dict[str, tuple[Value, ...]] = {}
    exists, flags, vanished = 0, (), []
    changed: dict[int, tuple[tuple[str, ...], int | None]] = {}
    for r in reply.untagged:
        if isinstance(r, Status) and r.code is not None:
            codes[r.code.name] = r.code.args
        elif isinstance(r, Exists):
            exists = r.count
        elif isinstance(r, Flags):
            flags = r.flags
        elif isinstance(r, Vanished):
            vanished.extend(r.uids)
        elif isinstance(r, Fetch) and isinstance(r.items.get("UID"), int):
            changed[r.items["UID"]] = (flags_of(r.items.get("FLAGS")), modseq_of(r.items.get("MODSEQ")))  # type: ignore[index]
    if "UIDVALIDITY" not in codes or not isinstance(codes["UIDVALIDITY"][0], int):
        raise Refused(f"upstream IMAP {server} gave no UIDVALIDITY for {name!r}")
    uidvalidity = codes["UIDVALIDITY"][0]

    def number(code: str) -> int | None:
        args = codes.get(code, ())
        return args[0] if args and isinstance(args[0], int) else None

    highest = None if "NOMODSEQ" in codes else number("HIGHESTMODSEQ")
    permanent = flags_of(codes.get("PERMANENTFLAGS", ((),))[0])
    return FolderState(name, wire, uidvalidity, number("UIDNEXT"), exists, highest, permanent, flags,
                       known is not None and known != uidvalidity, tuple(vanished), changed)
