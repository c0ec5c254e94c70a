"""The inbound sync's connections to the company mailbox (the upstream): folders, the state
of one folder, new messages, flags and UIDs to compare, IDLE.

A :class:`MailboxConnection` is one IMAP login with the shared account, holding a lease of the
connection budget from :meth:`~MailboxConnection.connect` to :meth:`~MailboxConnection.close`.
It reads and never changes: folders are opened with EXAMINE and bodies fetched with
``BODY.PEEK[]`` (``BODY[]`` would set ``\\Seen`` upstream), except in
:meth:`~MailboxConnection.store_keywords`, which is asked for.  What to do with what it reads
(a UIDVALIDITY that changed, a message gone) is the caller's to decide.

Servers differ (see each method): ID is sent where advertised (163/126 refuse SELECT without
it); QRESYNC and CONDSTORE are used where offered, and without them (Exchange, QQ Mail) the
caller compares all UIDs and flags; every set of UIDs goes out ascending and compressed
(:func:`uid_set`), since QQ Mail and Exmail answer BAD to any other.

A connection that drops, garbles or times out in the middle of a command raises
:exc:`~mailwarden.gateway.upstream.source.TemporaryFailure` and is closed, its lease given
back: the caller connects again after a pause (:class:`Backoff`).  A NO or BAD answer raises
:exc:`~mailwarden.gateway.upstream.imap.Refused` and leaves the connection open.

What it returns (:class:`~.upstreamdata.FolderState`, :class:`~.upstreamdata.Fetched`) and the
pure helpers (:func:`~.upstreamdata.uid_set`, :func:`~.upstreamdata.plan_batches`,
:class:`~.upstreamdata.Backoff`) are in :mod:`.upstreamdata`.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import importlib.metadata
import logging
import ssl
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

from mailwarden.gateway.config import Upstream
from mailwarden.gateway.sync.folders import Folder, folders_from
from mailwarden.gateway.sync.upstreamdata import (
    MAX_BATCH, Fetched, FolderState, flags_of, folder_state, internal_date, modseq_of, numbers, plan_batches, uid_set)
from mailwarden.gateway.upstream.budget import ConnectionBudget, Lease
from mailwarden.gateway.upstream.imap import CONNECT_TIMEOUT, Refused, login
from mailwarden.gateway.upstream.imapclient import IMAPClient, Reply
from mailwarden.gateway.upstream.imapresponse import MAX_LITERAL
from mailwarden.gateway.upstream.imapwire import (
    Argument, Continuation, ESearch, Exists, Expunge, Fetch, ListItem, Raw, Search, Status, Untagged, Vanished,
    encode_mailbox, parse_set)
from mailwarden.gateway.upstream.source import TemporaryFailure

__all__ = ["MailboxConnection"]

log = logging.getLogger(__name__)

MAX_BYTES = 16 * 1024 * 1024  # message bytes fetch_new holds at once, about
IDLE_REISSUE = 25 * 60.0  # seconds: RFC 2177 lets a server drop an IDLE after 30 minutes
IDLE_SETTLE = 0.1  # seconds to gather what comes together (EXISTS, RECENT, FETCH) before returning
_FETCH_ITEMS = "UID FLAGS INTERNALDATE RFC822.SIZE"


def _version() -> str:
    try:
        return importlib.metadata.version("mailwarden")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)


class MailboxConnection:
    """One IMAP connection of the inbound sync to the company mailbox (module documentation).

    ``holder`` names it in the budget's snapshot (``"sync idle INBOX"``).  ``max_message``:
    messages larger than this are reported, not fetched (at most the parser's limit)."""

    def __init__(self, upstream: Upstream, tls: ssl.SSLContext, *, budget: ConnectionBudget, holder: str,
                 max_message: int = MAX_LITERAL) -> None:
        self.upstream, self.tls, self.budget, self.holder = upstream, tls, budget, holder
        self.max_message = min(max_message, MAX_LITERAL)
        self.client: IMAPClient | None = None
        self.selected: FolderState | None = None
        self.exists = 0  # messages in the selected folder, as the server last said
        self._lease: Lease | None = None
        self._uidvalidity: dict[str, int] = {}  # per folder, as last seen (across reconnects)

    # -- the connection --
    @property
    def connected(self) -> bool:
        return self.client is not None and not self.client.closed

    @property
    def capabilities(self) -> frozenset[str]:
        return self.client.capabilities if self.client is not None else frozenset()

    @property
    def has_idle(self) -> bool:
        """Whether the server offers IDLE; without it the caller polls (:meth:`noop`)."""
        return "IDLE" in self.capabilities

    @property
    def has_condstore(self) -> bool:
        return "CONDSTORE" in self.capabilities or self.has_qresync

    @property
    def has_qresync(self) -> bool:
        return "QRESYNC" in self.capabilities

    @property
    def server(self) -> str:
        return str(self.upstream.imap)

    async def connect(self) -> None:
        """Take a lease of the budget (waiting for one), connect, log in, send ID where
        advertised, ENABLE QRESYNC where offered.  Raises TemporaryFailure on any trouble."""
        if self.connected:
            return
        await self.close()
        self._lease = await self.budget.acquire("imap", self.holder)
        try:
            self.client = await asyncio.wait_for(login(self.upstream, self.tls, on_untagged=self._heard),
                                                 CONNECT_TIMEOUT)
            if "ID" in self.client.capabilities:
                reply = await self.client.command("ID", Raw(f'("name" "mailwarden" "version" "{_version()}")'))
                if not reply.ok:
                    log.warning("upstream IMAP %s refused ID: %s", self.server, reply.status)
            if self.has_qresync:
                try:
                    await self._command("ENABLE", Raw("QRESYNC"))
                except Refused as exc:
                    log.warning("%s: folders are compared without it", exc)
        except OSError as exc:  # Dropped, TLS, refused, timeouts
            await self.close()
            raise TemporaryFailure(f"cannot reach the upstream IMAP server {self.server}: "
                                   f"{exc or type(exc).__name__}") from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """LOGOUT (at once when the connection is broken) and give the lease back."""
        client, self.client, self.selected = self.client, None, None
        try:
            if client is not None:
                await client.logout()
        finally:
            lease, self._lease = self._lease, None
            if lease is not None:
                lease.release()

    async def __aenter__(self) -> MailboxConnection:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _heard(self, ev: Untagged | Status) -> None:
        if isinstance(ev, Exists):
            self.exists = ev.count
        elif isinstance(ev, Expunge):
            self.exists = max(0, self.exists - 1)

    async def _command(self, name: str, *args: Argument) -> Reply:
        """One command; a broken connection becomes TemporaryFailure (and is closed), NO/BAD Refused."""
        if self.client is None or self.client.closed:
            raise TemporaryFailure(f"not connected to the upstream IMAP server {self.server}")
        try:
            reply = await self.client.command(name, *args)
        except OSError as exc:
            await self.close()
            raise TemporaryFailure(f"upstream IMAP {self.server} dropped during {name}: "
                                   f"{exc or type(exc).__name__}") from None
        except BaseException:  # cancelled: the client closed itself if it was mid-command
            if self.client is not None and self.client.closed:
                await self.close()
            raise
        if not reply.ok:
            raise Refused(f"upstream IMAP {self.server} refused {name}: {reply.status}")
        return reply

    async def _uid_fetch(self, uids: Iterable[int] | str, items: str, *modifiers: str) -> list[Fetch]:
        which = uids if isinstance(uids, str) else uid_set(uids)
        reply = await self._command("UID", Raw("FETCH"), Raw(which), Raw(f"({items})"), *map(Raw, modifiers))
        return [r for r in reply.untagged if isinstance(r, Fetch) and isinstance(r.items.get("UID"), int)]

    async def _uid_fetch_all(self, uids: str, items: str, *modifiers: str) -> list[Fetch]:
        """A FETCH over ``n:*``, which a server may refuse in an empty folder: then nothing."""
        try:
            return await self._uid_fetch(uids, items, *modifiers)
        except Refused:
            if self.exists:
                raise
            return []

    # -- folders --
    async def folders(self) -> list[Folder]:
        """The selectable folders, each with its role: ``LIST ... RETURN (SPECIAL-USE)`` where
        offered, else XLIST where offered (old Gmail, QQ Mail), else plain LIST."""
        caps = self.capabilities
        reply: Reply | None = None
        if "SPECIAL-USE" in caps and "LIST-EXTENDED" in caps:
            try:
                reply = await self._command("LIST", "", Raw("*"), Raw("RETURN"), Raw("(SPECIAL-USE)"))
            except Refused as exc:
                log.info("%s; asking with plain LIST", exc)
        elif "XLIST" in caps and "SPECIAL-USE" not in caps:
            reply = await self._command("XLIST", "", Raw("*"))
        if reply is None:  # SPECIAL-USE alone puts the attributes in plain LIST (RFC 6154 2)
            reply = await self._command("LIST", "", Raw("*"))
        return folders_from(r for r in reply.untagged if isinstance(r, ListItem))

    async def select(self, folder: str | Folder, *, uidvalidity: int | None = None,
                     modseq: int | None = None) -> FolderState:
        """EXAMINE ``folder`` (a :class:`Folder`, or a name as the configuration writes it).
        With QRESYNC and the ``uidvalidity`` and ``modseq`` known from last time, the answer
        brings what vanished and changed since (:class:`FolderState`)."""
        name, wire = (folder.name, folder.wire) if isinstance(folder, Folder) else (folder, encode_mailbox(folder))
        args: list[Argument] = []
        if self.has_qresync and uidvalidity is not None and modseq is not None:
            args.append(Raw(f"(QRESYNC ({uidvalidity} {modseq}))"))
        elif self.has_condstore and not self.has_qresync:
            args.append(Raw("(CONDSTORE)"))
        return await self._open("EXAMINE", name, wire, args,
                                uidvalidity if uidvalidity is not None else self._uidvalidity.get(name))

    async def _open(self, command: str, name: str, wire: str, args: list[Argument], known: int | None) -> FolderState:
        self.selected = None  # a failed SELECT leaves none selected (RFC 3501 6.3.1)
        reply = await self._command(command, wire, *args)
        state = folder_state(name, wire, reply, known, server=self.server)
        self._uidvalidity[name] = state.uidvalidity
        self.selected, self.exists = state, state.exists
        return state

    def _selected(self) -> FolderState:
        if self.selected is None:
            raise RuntimeError("select() a folder first")
        return self.selected

    # -- messages --
    async def fetch_new(self, after_uid: int, *, max_bytes: int = MAX_BYTES) -> AsyncIterator[Fetched]:
        """The messages of the selected folder with UID > ``after_uid``, ascending, each once,
        with its bytes (``BODY.PEEK[]``).  Their sizes are asked first, so that small messages
        come several to a FETCH and large ones alone, about ``max_bytes`` held at once; one
        over ``max_message`` comes as ``too_large``, without its bytes.  A message expunged
        meanwhile is asked again (:exc:`TemporaryFailure` after the ones before it): on the next
        call it is either there or no longer listed.  A NOOP first lets the server show messages that came since
        the last command (Dovecot adds them to a session's view only between commands)."""
        self._selected()
        await self._command("NOOP")
        # n:* names the last message even when its UID is below n: keep only the newer ones.
        sized = await self._uid_fetch_all(f"{after_uid + 1}:*", "UID RFC822.SIZE")
        sizes = sorted({(f.items["UID"], f.items.get("RFC822.SIZE")) for f in sized  # type: ignore[misc]
                        if f.items["UID"] > after_uid and isinstance(f.items.get("RFC822.SIZE"), int)})  # type: ignore[operator]
        for uids, too_large in plan_batches(sizes, max_bytes, self.max_message):  # type: ignore[arg-type]
            items = _FETCH_ITEMS if too_large else _FETCH_ITEMS + " BODY.PEEK[]"
            wanted = set(uids)
            got = {f.items["UID"]: f for f in await self._uid_fetch(uids, items)
                   if f.items["UID"] in wanted and (too_large or "BODY[]" in f.items)}
            missing = sorted(wanted - set(got))  # type: ignore[arg-type]
            for uid in sorted(got):  # type: ignore[type-var]
                if missing and uid > missing[0]:
                    break  # never past a message the server did not give: the caller's mark stays below it
                items_ = got.pop(uid).items
                body = items_.get("BODY[]")
                yield Fetched(uid, int(items_.get("RFC822.SIZE") or 0), flags_of(items_.get("FLAGS")),  # type: ignore[arg-type]
                              internal_date(items_.get("INTERNALDATE")),
                              None if too_large else body if isinstance(body, bytes) else b"",
                              modseq_of(items_.get("MODSEQ")))
            if missing:
                raise Refused(f"upstream IMAP {self.server} did not return UID {missing[0]} of "
                                       f"{self._selected().name!r}; asking again")

    async def uids(self) -> set[int]:
        """Every UID in the selected folder (ESEARCH where offered: one compact answer)."""
        self._selected()
        if "ESEARCH" in self.capabilities:
            reply = await self._command("UID", Raw("SEARCH"), Raw("RETURN"), Raw("(ALL)"), Raw("ALL"))
            found = [r.results["ALL"] for r in reply.untagged if isinstance(r, ESearch) and "ALL" in r.results]
            return numbers(r for value in found for r in parse_set(value))
        reply = await self._command("UID", Raw("SEARCH"), Raw("ALL"))
        return {n for r in reply.untagged if isinstance(r, Search) for n in r.numbers}

    async def uid_flags(self, since_modseq: int | None = None) -> dict[int, tuple[tuple[str, ...], int | None]]:
        """``uid -> (flags, modseq)`` for the selected folder: all messages, or with CONDSTORE
        and ``since_modseq`` only those changed since (CHANGEDSINCE).  Without CONDSTORE
        (Office 365, QQ Mail) modseq is None and every message is listed."""
        self._selected()
        if self.has_condstore:
            modifiers = [f"(CHANGEDSINCE {since_modseq})"] if since_modseq is not None else []
            fetched = await self._uid_fetch_all("1:*", "UID FLAGS MODSEQ", *modifiers)
        else:
            fetched = await self._uid_fetch_all("1:*", "UID FLAGS")
        return {f.items["UID"]: (flags_of(f.items.get("FLAGS")), modseq_of(f.items.get("MODSEQ")))  # type: ignore[misc]
                for f in fetched}

    async def header_ids(self, uids: Iterable[int]) -> dict[int, tuple[str | None, int, datetime | None]]:
        """``uid -> (Message-ID, size, internal date)`` without the bodies: to map messages
        already in the store to their new UIDs after UIDVALIDITY changed."""
        self._selected()
        ordered = sorted(set(uids))
        out: dict[int, tuple[str | None, int, datetime | None]] = {}
        for i in range(0, len(ordered), MAX_BATCH):
            for f in await self._uid_fetch(ordered[i:i + MAX_BATCH],
                                           "UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"):
                header = next((v for k, v in f.items.items() if k.startswith("BODY[HEADER.FIELDS")), None)
                value = _HEADERS.parsebytes(header).get("Message-ID") if isinstance(header, bytes) else None
                message_id = " ".join(str(value).split()) or None if value is not None else None
                size = f.items.get("RFC822.SIZE")
                out[f.items["UID"]] = (message_id, size if isinstance(size, int) else 0,  # type: ignore[index]
                                       internal_date(f.items.get("INTERNALDATE")))
        return out

    async def store_keywords(self, uid: int, keywords: Iterable[str]) -> bool:
        """Add ``keywords`` to message ``uid`` of the selected folder, upstream: SELECT
        (read-write) for it, then EXAMINE again.  False when the folder takes no new keywords
        (PERMANENTFLAGS without ``\\*``, as on Exchange): nothing is stored."""
        state = self._selected()
        writable = await self._open("SELECT", state.name, state.wire, [], state.uidvalidity)
        try:
            if writable.uidvalidity_changed or not writable.keywords_allowed:
                return False
            await self._command("UID", Raw("STORE"), Raw(uid_set([uid])), Raw("+FLAGS.SILENT"),
                                Raw("(" + " ".join(keywords) + ")"))
            return True
        finally:
            await self._open("EXAMINE", state.name, state.wire, [], state.uidvalidity)

    # -- news --
    async def noop(self) -> list[Untagged]:
        """NOOP: what changed in the selected folder since the last command (for servers without IDLE)."""
        reply = await self._command("NOOP")
        return [r for r in reply.untagged if _news(r)]

    async def idle(self, timeout: float) -> list[Untagged]:
        """IDLE on the selected folder until the server tells of a change (EXISTS, EXPUNGE,
        FETCH, VANISHED: returned, with what came in the same moment) or ``timeout`` seconds
        pass (returns nothing).  DONE on the way out; IDLE is issued again every
        :data:`IDLE_REISSUE` seconds.  Only where :attr:`has_idle`."""
        self._selected()
        if not self.has_idle:
            raise RuntimeError(f"upstream IMAP {self.server} does not offer IDLE: poll with noop()")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            news = await self._idle_once(min(left, IDLE_REISSUE))
            if news:
                return news
        return []

    async def _idle_once(self, seconds: float) -> list[Untagged]:
        client = self.client
        if client is None or client.closed:
            raise TemporaryFailure(f"not connected to the upstream IMAP server {self.server}")
        tag, news, other = client.new_tag(), [], []  # type: ignore[var-annotated]
        quiet = client.timeout
        try:
            client.send(f"{tag} IDLE\r\n".encode())
            await client.drain()
            answer = await client.wait(tag, news)
            if isinstance(answer, Status):
                raise Refused(f"upstream IMAP {self.server} refused IDLE: {answer}")
            client.timeout = quiet + seconds  # silence is what IDLE is for
            try:
                async with asyncio.timeout(seconds):
                    while not any(_news(ev) for ev in news):
                        await self._idle_event(client, tag, news)
                async with asyncio.timeout(IDLE_SETTLE):
                    while True:
                        await self._idle_event(client, tag, news)
            except TimeoutError:
                pass
            client.timeout = quiet
            client.send(b"DONE\r\n")
            await client.drain()
            status = await client.wait(tag, other)
            if not status.ok:
                raise Refused(f"upstream IMAP {self.server} ended IDLE with {status}")
        except OSError as exc:
            await self.close()
            raise TemporaryFailure(f"upstream IMAP {self.server} dropped during IDLE: "
                                   f"{exc or type(exc).__name__}") from None
        except Refused:  # answered in step: the connection stays
            raise
        except BaseException:  # cancelled in the middle of IDLE: out of step, no LOGOUT either
            client.abort()
            await self.close()
            raise
        finally:
            client.timeout = quiet
        return [ev for ev in news + other if _news(ev)]

    async def _idle_event(self, client: IMAPClient, tag: str, news: list[Untagged | Status]) -> None:
        ev = await client.next_event()
        if isinstance(ev, Continuation) or (isinstance(ev, Status) and ev.tag is not None):
            raise TemporaryFailure(f"upstream IMAP {self.server} left IDLE by itself: {ev}")
        self._heard(ev)  # type: ignore[arg-type]
        news.append(ev)  # type: ignore[arg-type]


def _news(ev: Untagged | Status) -> bool:
    return isinstance(ev, Exists | Expunge | Fetch | Vanished)
