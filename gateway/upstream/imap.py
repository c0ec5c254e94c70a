"""IMAP to the company mailbox (the upstream), with the shared account: APPEND of the
Sent copies, bounces and notices.  SMTP is in :mod:`.smtp`.

aioimaplib's ``append`` wants the message whole and writes it, with the command,
to the transport at once, without flow control (a TLS transport then holds it
all again).  :func:`_append` streams the literal from a :class:`Source` instead:
the command announces the size, and after the server's go-ahead (``+``) the
literal goes out piece by piece, each once the connection has taken the last
(:class:`_Flow`: aioimaplib's protocol has no flow control of its own).

Several Sent copies go in one ``APPEND`` when the server offers MULTIAPPEND
(RFC 3502): one save transaction on the server instead of one each (Dovecot
spends about a third of the CPU per copy).  The literals are synchronising
only: the server asks for each before it gets it, so a server that refuses one
half-way can never read message bytes as commands (LITERAL+ could).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl

import aioimaplib

from mailwarden.gateway.config import Upstream
from mailwarden.gateway.upstream.source import Source, TemporaryFailure

log = logging.getLogger(__name__)
PERMANENTFLAGS = re.compile(rb"PERMANENTFLAGS \(([^)]*)\)")
_SEARCH_HIT = re.compile(rb"^(?:SEARCH )?\d+( \d+)*$")  # "* SEARCH 3 7" as aioimaplib hands it on


class Refused(TemporaryFailure):
    """The upstream answered the APPEND with NO or BAD (the connection is fine)."""


class IMAPConnection:
    """One IMAP connection to the upstream, used for APPEND (Sent copies, bounces)."""

    def __init__(self, upstream: Upstream, tls: ssl.SSLContext) -> None:
        self.upstream = upstream
        self.tls = tls
        self.client: aioimaplib.IMAP4 | None = None
        self._flow: _Flow | None = None
        self._lock = asyncio.Lock()
        self._keywords_ok: dict[str, bool] = {}
        self._search_refused: dict[str, bool] = {}

    async def _connect(self) -> aioimaplib.IMAP4:
        u = self.upstream
        if u.imap_tls == "implicit":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(host=u.imap.host, port=u.imap.port, ssl_context=self.tls, timeout=60)
        else:
            client = aioimaplib.IMAP4(host=u.imap.host, port=u.imap.port, timeout=60)
        self._flow = _Flow(client.protocol)  # before the transport exists: it reports every pause
        try:
            await client.wait_hello_from_server()
            if u.imap_tls == "starttls":
                await _starttls(client, self.tls, u.imap.host)
            resp = await client.login(u.username, u.password.reveal())
        except BaseException:
            await _drop(client)
            raise
        if resp.result != "OK":
            await _drop(client)
            raise TemporaryFailure(f"upstream IMAP refused the shared account's login: {_text(resp)}")
        try:
            await client.protocol.capability()  # after LOGIN: most servers name MULTIAPPEND only then
        except aioimaplib.Error:
            client.protocol.capabilities = set()
        return client

    async def _connected(self) -> aioimaplib.IMAP4:
        """The open connection, or a new one when there is none yet or it was dropped."""
        transport = self.client.protocol.transport if self.client is not None else None
        if self.client is None or transport is None or transport.is_closing():
            self.client = await asyncio.wait_for(self._connect(), 60)
        return self.client

    @property
    def multiappend(self) -> bool:
        """Whether the open connection's server takes several messages in one APPEND."""
        return self.client is not None and "MULTIAPPEND" in {c.upper() for c in self.client.protocol.capabilities}

    async def keywords_allowed(self, folder: str) -> bool:
        """Whether ``folder`` accepts new keywords (PERMANENTFLAGS has ``\\*``).
        Exchange allows none; Dovecot and most others do."""
        if folder not in self._keywords_ok:
            assert self.client is not None
            # SELECT, not EXAMINE: a read-only mailbox reports no permanent flags.
            resp = await self.client.select(_quote(folder))
            if resp.result != "OK":  # not there yet (a new mailbox's Sent): create it, once
                await self.client.create(_quote(folder))
                resp = await self.client.select(_quote(folder))
            if resp.result != "OK":
                raise TemporaryFailure(f"cannot open upstream folder {folder!r}: {_text(resp)}")
            flags = b" ".join(m.group(1) for line in resp.lines if isinstance(line, (bytes, bytearray))
                              for m in [PERMANENTFLAGS.search(bytes(line))] if m)
            self._keywords_ok[folder] = b"\\*" in flags
            await _deselect(self.client, folder)
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
        async with self._lock:
            try:
                for attempt in (1, 2):
                    try:
                        client = await self._connected()
                        assert self._flow is not None
                        allowed = any(kw for _, _, kw in entries) and await self.keywords_allowed(folder)
                        resp = None
                        while pending:
                            group = pending if self.multiappend else pending[:1]
                            resp = await _append(self.client, self._flow, _quote(folder), [
                                ("(" + " ".join(flags + (keywords if allowed else [])) + ")", source)
                                for source, flags, keywords in group])
                            if resp.result != "OK":
                                break
                            del pending[:len(group)]
                        if resp is None or resp.result == "OK":
                            return
                        text = _text(resp)
                        if "TRYCREATE" in text.upper() and attempt == 1:
                            await self.client.create(_quote(folder))
                            continue
                        raise Refused(f"upstream refused APPEND to {folder!r}: {text}")
                    except (OSError, asyncio.TimeoutError, aioimaplib.Abort, aioimaplib.CommandTimeout) as exc:
                        await self.close()
                        if attempt == 2:
                            raise TemporaryFailure(f"cannot reach the upstream IMAP server {self.upstream.imap}: {exc or type(exc).__name__}") from None
            except TemporaryFailure as exc:
                exc.stored = len(entries) - len(pending)  # type: ignore[attr-defined]
                raise
            except BaseException as exc:  # cancelled (stopping) or a bug, maybe mid-literal: the connection is done for
                exc.stored = len(entries) - len(pending)  # type: ignore[attr-defined]
                client, self.client = self.client, None
                if client is not None and client.protocol.transport is not None:
                    client.protocol.transport.close()
                raise

    async def stored(self, folder: str, refs: list[str]) -> set[str] | None:
        """Which of ``refs`` (``X-Mailwarden-Ref`` values) have a copy in ``folder`` already:
        asked before appending again a copy whose earlier APPEND may have gone through.
        None when the server cannot tell (it refuses such a SEARCH): it is not asked again."""
        if self._search_refused.get(folder):
            return None
        found: set[str] = set()
        async with self._lock:
            try:
                client = await self._connected()
                if (await _examine(client, folder)).result != "OK":
                    return found  # no such folder yet: nothing in it
                for ref in refs:
                    resp = await client.search("HEADER", "X-Mailwarden-Ref", f'"{ref}"', charset=None)
                    if resp.result != "OK":
                        log.warning("upstream cannot search %r for copies already there (%s): they are "
                                    "filed again, maybe twice", folder, _text(resp))
                        self._search_refused[folder] = True
                        break
                    if any(_SEARCH_HIT.match(bytes(line)) for line in resp.lines[:-1]
                           if isinstance(line, (bytes, bytearray))):
                        found.add(ref)
                await client.close()  # read-only: expunges nothing
            except (OSError, asyncio.TimeoutError, aioimaplib.Abort, aioimaplib.CommandTimeout) as exc:
                await self.close()  # not CLOSE first: after a timeout it would wait as long again
                raise TemporaryFailure(f"cannot reach the upstream IMAP server {self.upstream.imap}: {exc or type(exc).__name__}") from None
        return None if self._search_refused.get(folder) else found

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await _drop(client)


async def _examine(client: aioimaplib.IMAP4, folder: str) -> aioimaplib.Response:
    """EXAMINE (read-only SELECT); aioimaplib does not note the selected state for it."""
    resp = await client.examine(_quote(folder))
    if resp.result == "OK":
        client.protocol.state = aioimaplib.SELECTED
    return resp


async def _deselect(client: aioimaplib.IMAP4, folder: str) -> None:
    """Leave the selected folder without expunging anything: CLOSE after a SELECT would
    remove the messages someone marked \\Deleted in the company's folder; after EXAMINE it
    removes none (RFC 3501 6.4.2)."""
    if (await _examine(client, folder)).result == "OK":
        await client.close()


async def _starttls(client: aioimaplib.IMAP4, ctx: ssl.SSLContext, host: str) -> None:
    """STARTTLS on an aioimaplib connection (the library has no call for it)."""
    proto = client.protocol
    cmd = aioimaplib.Command("STARTTLS", proto.new_tag(), loop=proto.loop)
    resp = await proto.execute(cmd)
    if resp.result != "OK":
        raise TemporaryFailure(f"upstream IMAP refused STARTTLS: {_text(resp)}")
    loop = asyncio.get_running_loop()
    proto.transport = await loop.start_tls(proto.transport, proto, ctx, server_hostname=host)
    await proto.capability()


async def _append(client: aioimaplib.IMAP4, flow: _Flow, mailbox: str,
                  entries: list[tuple[str, Source]]) -> aioimaplib.Response:
    """``APPEND mailbox (flags) {size}`` for the first ``(flags, source)``, ``(flags) {size}`` for
    each further one (MULTIAPPEND), each literal sent from its ``source`` in pieces once the
    server has asked for it (``+``), each piece once the connection has taken the last.
    A server that answers NO or BAD instead of asking (TRYCREATE, too big) gets no literal:
    its answer is returned.  The command's timeout runs from the last piece written."""
    proto = client.protocol
    for _, source in entries:
        await source.open()
    flags0, first = entries[0]
    cmd = aioimaplib.Command("APPEND", proto.new_tag(), mailbox, flags0, f"{{{first.size}}}", loop=proto.loop,
                             timeout=client.timeout)
    asks: asyncio.Queue[bytes] = asyncio.Queue()

    def continuation(line: bytes) -> None:  # instead of aioimaplib's, which would write its own literal
        if proto.pending_sync_command is cmd:
            asks.put_nowait(line)
        else:
            type(proto)._continuation(proto, line)

    proto._continuation = continuation
    done = asyncio.ensure_future(proto.execute(cmd))
    in_step = True  # False while the command is half written
    asking: list[asyncio.Future[bytes]] = []
    try:
        for k, (flags, source) in enumerate(entries):
            if k:
                in_step = False
                proto.transport.write(f" {flags} {{{source.size}}}\r\n".encode("ascii"))
            ask = asyncio.ensure_future(asks.get())
            asking.append(ask)
            await asyncio.wait([done, ask], return_when=asyncio.FIRST_COMPLETED)
            if not ask.done():
                # Answered instead of asking for the literal: the command is over.  After a literal,
                # though, a server might not have read our last line as we meant it: the connection
                # is not trusted again.
                in_step = k == 0
                return await done
            sent, in_step = 0, False
            async for piece in source.chunks():
                if done.done():
                    break
                proto.transport.write(piece)
                sent += len(piece)
                del piece
                await flow.drain(client.timeout)
                cmd._reset_timer()
            if done.done():
                resp = await done  # a timeout raises; an answer in the middle of the literal:
                raise aioimaplib.Abort(f"upstream answered in the middle of the APPEND literal: {_text(resp)}")
            if sent != source.size:
                raise aioimaplib.Abort(f"APPEND literal cut short: {sent} of {source.size} bytes")
        proto.transport.write(b"\r\n")
        in_step = True
        return await done
    finally:
        del proto._continuation
        for ask in asking:
            ask.cancel()
        if not done.done():
            done.cancel()
            in_step = False
        if not in_step and proto.transport is not None:  # left mid-command or mid-literal: close it
            proto.transport.close()


class _Flow:
    """Write flow control for an aioimaplib protocol: the transport's pause and resume, and
    the connection's loss, become :meth:`drain` (as asyncio's streams have it)."""

    def __init__(self, proto: aioimaplib.IMAP4ClientProtocol) -> None:
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.lost = False
        proto.pause_writing = self._resumed.clear  # type: ignore[method-assign]
        proto.resume_writing = self._resumed.set  # type: ignore[method-assign]
        lost = proto.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            self.lost = True
            self._resumed.set()
            lost(exc)

        proto.connection_lost = connection_lost  # type: ignore[method-assign]

    async def drain(self, timeout: float | None) -> None:
        if not self._resumed.is_set():
            await asyncio.wait_for(self._resumed.wait(), timeout)
        if self.lost:
            raise ConnectionResetError("upstream IMAP connection lost")


async def _drop(client: aioimaplib.IMAP4) -> None:
    transport = getattr(client.protocol, "transport", None)
    if transport is not None and transport.is_closing():  # no LOGOUT to wait for on a closed connection
        return
    try:
        await asyncio.wait_for(client.logout(), 5)
    except Exception:  # logging out of a broken connection: nothing to save
        pass
    finally:
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()


def _text(resp: aioimaplib.Response) -> str:
    return " ".join(line.decode("utf-8", "replace") if isinstance(line, (bytes, bytearray)) else str(line)
                    for line in resp.lines)[:300]


def _quote(folder: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./-]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
