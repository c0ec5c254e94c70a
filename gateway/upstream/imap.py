"""IMAP to the company mailbox (the upstream), with the shared account: APPEND of the
Sent copies, bounces and notices.  SMTP is in :mod:`.smtp`.

The connection is our own client (:mod:`.imapclient` over the sans-I/O codec in
:mod:`.imapwire` and :mod:`.imapresponse`): the literal of an APPEND is streamed from its
:class:`Source` piece by piece, each once the connection has taken the last, and only once
the server has asked for it (synchronising literals), so a server that refuses one half-way
can never read message bytes as commands (LITERAL+ could).

Several Sent copies go in one ``APPEND`` when the server offers MULTIAPPEND (RFC 3502): one
save transaction on the server instead of one each (Dovecot spends about a third of the CPU
per copy); then all or none are stored.

The company's folders are never expunged: a folder SELECTed to read its permanent flags is
left by EXAMINE + CLOSE, which removes nothing (RFC 3501 6.4.2).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from mailwarden.gateway.config import Upstream
from mailwarden.gateway.upstream.imapclient import IMAPClient, Reply
from mailwarden.gateway.upstream.imapwire import ProtocolError, Raw, Search, Status, Untagged, encode_mailbox
from mailwarden.gateway.upstream.source import Source, TemporaryFailure

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 60.0  # connecting, TLS, LOGIN and CAPABILITY together
_BROKEN = (OSError, asyncio.TimeoutError)  # the connection is gone (Dropped is one): a new one may do


class Refused(TemporaryFailure):
    """The upstream answered a command (APPEND, SELECT...) with NO or BAD (the connection is fine)."""


async def login(upstream: Upstream, tls: ssl.SSLContext, *,
                on_untagged: Callable[[Untagged | Status], None] | None = None) -> IMAPClient:
    """A connection to the upstream IMAP server, logged in with the shared account: TLS as
    ``imap_tls`` says (implicit, STARTTLS or none), then LOGIN, and the capabilities as they
    are after it.  A refusal raises :exc:`TemporaryFailure` naming the server."""
    u = upstream
    client = await IMAPClient.connect(u.imap.host, u.imap.port, tls=tls if u.imap_tls == "implicit" else None,
                                      on_untagged=on_untagged)
    try:
        if u.imap_tls == "starttls":
            reply = await client.starttls(tls, u.imap.host)
            if not reply.ok:
                raise TemporaryFailure(f"upstream IMAP {u.imap} refused STARTTLS: {reply.status}")
            await client.capability()
        reply = await client.command("LOGIN", u.username, u.password.reveal())
        if not reply.ok:
            raise TemporaryFailure(f"upstream IMAP {u.imap} refused the shared account's login: {reply.status}")
        # After LOGIN: most servers name MULTIAPPEND only then (in the answer, or when asked).
        if reply.status.code is None or reply.status.code.name != "CAPABILITY":
            await client.capability()
    except BaseException:
        await client.logout()
        raise
    return client


class IMAPConnection:
    """One IMAP connection to the upstream, used for APPEND (Sent copies, bounces)."""

    def __init__(self, upstream: Upstream, tls: ssl.SSLContext) -> None:
        self.upstream = upstream
        self.tls = tls
        self.client: IMAPClient | None = None
        self._lock = asyncio.Lock()
        self._keywords_ok: dict[str, bool] = {}
        self._search_refused: dict[str, bool] = {}

    async def _connect(self) -> IMAPClient:
        return await login(self.upstream, self.tls)

    async def _connected(self) -> IMAPClient:
        """The open connection, or a new one when there is none yet or it was dropped."""
        if self.client is None or self.client.closed:
            self.client = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT)
        return self.client

    async def login(self) -> None:
        """Connect and log in now (``mailwarden check``); raises :class:`TemporaryFailure`."""
        try:
            await self._connected()
        except TemporaryFailure:
            raise
        except (OSError, asyncio.TimeoutError, ProtocolError) as exc:
            raise TemporaryFailure(f"cannot reach the upstream IMAP server {self.upstream.imap}: "
                                   f"{exc or type(exc).__name__}") from None

    @property
    def multiappend(self) -> bool:
        """Whether the open connection's server takes several messages in one APPEND."""
        return self.client is not None and "MULTIAPPEND" in self.client.capabilities

    async def keywords_allowed(self, folder: str) -> bool:
        """Whether ``folder`` accepts new keywords (PERMANENTFLAGS has ``\\*``).
        Exchange allows none; Dovecot and most others do."""
        if folder not in self._keywords_ok:
            assert self.client is not None
            mailbox = encode_mailbox(folder)
            # SELECT, not EXAMINE: a read-only mailbox reports no permanent flags.
            reply = await self.client.command("SELECT", mailbox)
            if not reply.ok:  # not there yet (a new mailbox's Sent): create it, once
                await self.client.command("CREATE", mailbox)
                reply = await self.client.command("SELECT", mailbox)
            if not reply.ok:
                raise TemporaryFailure(f"cannot open upstream folder {folder!r}: {reply.status}")
            self._keywords_ok[folder] = any(
                isinstance(r, Status) and r.code is not None and r.code.name == "PERMANENTFLAGS"
                and any(isinstance(a, tuple) and "\\*" in a for a in r.code.args) for r in reply.untagged)
            await _deselect(self.client, mailbox)
        return self._keywords_ok[folder]

    async def append(self, folder: str, data: bytes | Source, flags: list[str], keywords: list[str]) -> None:
        """APPEND ``data`` (bytes, or a :class:`Source` streamed from its file) to ``folder``."""
        await self.append_many(folder, [(data if isinstance(data, Source) else Source(data), flags, keywords)])

    async def append_many(self, folder: str, entries: list[tuple[Source, list[str], list[str]]]) -> None:
        """APPEND each ``(source, flags, keywords)`` to ``folder``: all in one command when the
        server has MULTIAPPEND (then all or none are stored), else one after another.
        Raises :exc:`Refused` when the server says no, :exc:`TemporaryFailure` otherwise; either
        way ``exc.stored`` says how many of the entries, from the first, are in the folder."""
        pending = list(entries)
        mailbox = encode_mailbox(folder)
        async with self._lock:
            try:
                for attempt in (1, 2):
                    try:
                        client = await self._connected()
                        allowed = any(kw for _, _, kw in entries) and await self.keywords_allowed(folder)
                        status = None
                        while pending:
                            group = pending if self.multiappend else pending[:1]
                            status = await _append(client, mailbox, [
                                ("(" + " ".join(flags + (keywords if allowed else [])) + ")", source)
                                for source, flags, keywords in group])
                            if not status.ok:
                                break
                            del pending[:len(group)]
                        if status is None or status.ok:
                            return
                        if "TRYCREATE" in str(status).upper() and attempt == 1:
                            await client.command("CREATE", mailbox)
                            continue
                        raise Refused(f"upstream refused APPEND to {folder!r}: {status}")
                    except _BROKEN as exc:
                        await self.close()
                        if attempt == 2:
                            raise TemporaryFailure(f"cannot reach the upstream IMAP server {self.upstream.imap}: "
                                                   f"{exc or type(exc).__name__}") from None
            except TemporaryFailure as exc:
                exc.stored = len(entries) - len(pending)  # type: ignore[attr-defined]
                raise
            except BaseException as exc:  # cancelled (stopping) or a bug, maybe mid-literal: the connection is done for
                exc.stored = len(entries) - len(pending)  # type: ignore[attr-defined]
                client, self.client = self.client, None
                if client is not None:
                    client.abort()
                raise

    async def stored(self, folder: str, refs: list[str], header: str = "X-Mailwarden-Ref") -> set[str] | None:
        """Which of ``refs`` (``X-Mailwarden-Ref`` values, or those of ``header``) have a copy in
        ``folder`` already: asked before appending again a copy whose earlier APPEND may have gone
        through.  None when the server cannot tell (it refuses such a SEARCH): it is not asked again."""
        if self._search_refused.get(folder):
            return None
        found: set[str] = set()
        async with self._lock:
            try:
                client = await self._connected()
                if not (await client.command("EXAMINE", encode_mailbox(folder))).ok:
                    return found  # no such folder yet: nothing in it
                for ref in refs:
                    reply = await _search(client, ref, header)
                    if not reply.ok:
                        log.warning("upstream %s cannot search %r for copies already there (%s): they are "
                                    "filed again, maybe twice", client.peer, folder, reply.status)
                        self._search_refused[folder] = True
                        break
                    if any(isinstance(r, Search) and r.numbers for r in reply.untagged):
                        found.add(ref)
                await client.command("CLOSE")  # read-only: expunges nothing
            except _BROKEN as exc:
                await self.close()  # not CLOSE first: after a timeout it would wait as long again
                raise TemporaryFailure(f"cannot reach the upstream IMAP server {self.upstream.imap}: "
                                       f"{exc or type(exc).__name__}") from None
        return None if self._search_refused.get(folder) else found

    async def close(self) -> None:
        """LOGOUT and close (at once when the connection is already broken)."""
        client, self.client = self.client, None
        if client is not None:
            await client.logout()


async def _search(client: IMAPClient, ref: str, header: str) -> Reply:
    """``SEARCH HEADER X-Mailwarden-Ref ref`` (or another header): the copies that carry ``ref``."""
    return await client.command("SEARCH", Raw("HEADER"), header, ref)


async def _deselect(client: IMAPClient, mailbox: str) -> None:
    """Leave the selected folder without expunging anything: CLOSE after a SELECT would
    remove the messages someone marked \\Deleted in the company's folder; after EXAMINE it
    removes none (RFC 3501 6.4.2)."""
    if (await client.command("EXAMINE", mailbox)).ok:
        await client.command("CLOSE")


async def _append(client: IMAPClient, mailbox: str, entries: list[tuple[str, Source]]) -> Status:
    """``APPEND mailbox (flags) {size}`` for the first ``(flags, source)``, ``(flags) {size}`` for
    each further one (MULTIAPPEND), each literal streamed from its ``source`` once the server
    has asked for it (:meth:`IMAPClient.command`).  A server that answers NO or BAD instead of
    asking (TRYCREATE, too big) gets no literal: its answer is returned."""
    args: list[str | Source] = []
    for flags, source in entries:
        args += [Raw(flags), source]
    return (await client.command("APPEND", mailbox, *args)).status
