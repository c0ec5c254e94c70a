"""The IMAP listeners: salespeople's clients read their own view of the company mailbox here.

One :class:`ImapConnection` per client, on the gateway's event loop.  It only moves bytes: the
command codec (:mod:`.reader`) turns them into commands, the session (:mod:`.session`) answers
them, and the store's work runs in worker threads.  Port 143 offers STARTTLS and refuses any
login before it (LOGINDISABLED); port 993 is TLS from the first byte.  IDLE waits on the
:class:`ViewWatch`, one task for all sessions that looks at the store's view epoch and the
selected boxes a few times a second, so new mail and changes made on another device reach an
idling client at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from contextlib import suppress

from mailwarden.store import StoreHandle
from mailwarden.store.views import changes
from sqlmodel import Session

from mailwarden.gateway import metrics
from mailwarden.gateway.auth import Authenticator, Identity, SessionRegistry
from mailwarden.gateway.logsetup import limited_log
from mailwarden.gateway.submission.limits import ConnectionLimits

from . import commands as c
from .reader import CommandReader
from .session import Closing, ImapSession, Settings

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
LOGIN_TIMEOUT = 60.0  # seconds from connect to login
IDLE_TIMEOUT = 30 * 60.0  # RFC 3501 5.4: at least 30 minutes of silence before an autologout
IDLE_REFRESH = 29 * 60.0  # an IDLE is ended by the server before proxies and NATs forget it
HANDSHAKE_TIMEOUT = 10.0
PRE_AUTH_LITERAL = 8 * 1024  # bytes of one literal before login
WATCH_INTERVAL = 0.25  # seconds between looks at the view epoch
IDLE_LOOK = 30.0  # an idling session looks at its box this often even when nothing woke it


TLS_READ_BUFFER = 4 * 1024  # bytes asyncio's TLS layer reads into per connection (its own: 256 KB)


def small_tls_buffer(writer: asyncio.StreamWriter) -> None:
    """Give the connection's TLS layer a 4 KB socket read buffer instead of asyncio's 256 KB
    one: an IMAP client sends short commands (an APPEND's literal just takes more reads), and a
    thousand idle connections would otherwise hold 250 MB.  A Python whose TLS layer looks
    different keeps its own buffer."""
    proto = getattr(writer.transport, "_ssl_protocol", None)
    if proto is None or not isinstance(getattr(proto, "_ssl_buffer", None), bytearray) \
            or not hasattr(proto, "_ssl_buffer_view") or getattr(proto, "max_size", 0) <= TLS_READ_BUFFER:
        return
    proto.max_size = TLS_READ_BUFFER
    proto._ssl_buffer = bytearray(TLS_READ_BUFFER)
    proto._ssl_buffer_view = memoryview(proto._ssl_buffer)


class ViewWatch:
    """Wakes idling sessions when whose mail is whose (the view epoch), or anything in any box
    (its HIGHESTMODSEQ: flags, new drafts, expunges), changed in the store."""

    def __init__(self, store: StoreHandle, interval: float = WATCH_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.waiters = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="imap-view-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _epoch(self) -> tuple[int, int]:
        with Session(self.store.engine) as s:
            return changes(s)

    async def _run(self) -> None:
        last = None
        while True:
            await asyncio.sleep(self.interval)
            if not self.waiters:
                continue
            try:
                now = await asyncio.to_thread(self._epoch)
            except Exception:  # the next round tries again
                log.exception("view watch round failed")
                continue
            if last is not None and now != last:
                self.poke()
            last = now

    def poke(self) -> None:
        """Wake every idling session (each looks whether its box changed)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._changed
        self.waiters += 1
        try:
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            self.waiters -= 1


class ImapConnection:
    def __init__(self, server: "ImapServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 *, implicit: bool) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.implicit = implicit
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "?")
        # Before login a literal is a login name or a password: a stranger cannot make the
        # gateway hold an APPEND's worth of bytes per connection.
        self.codec = CommandReader(max_literal=PRE_AUTH_LITERAL)
        self.session = ImapSession(server.store, server.auth, server.settings, peer=self.peer, write=self.send,
                                   read_line=self.read_line, tls=implicit, on_login=self._logged_in)
        self._closing = False
        self._identity: Identity | None = None

    # --- what the limits and the registry need -------------------------------------------------

    @property
    def logged_in(self) -> bool:
        return self._identity is not None

    def shut(self, reply: str) -> None:
        """Close with a BYE (the limits make room, a user is disabled)."""
        if self._closing:
            return
        self._closing = True
        text = reply.split(" ", 2)[-1] if reply[:3].isdigit() else reply
        with suppress(Exception):
            self.writer.write(f"* BYE {text}\r\n".encode())
        self.writer.close()

    def _logged_in(self, ident: Identity) -> None:
        self._identity = ident
        self.codec.max_literal = self.server.settings.max_append
        metrics.session_opened("imap")
        self.server.registry.add(ident, id(self), lambda: self.shut("Your account was disabled or its password "
                                                                    "changed (账号已停用或密码已更改)"))

    # --- bytes ---------------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise ConnectionResetError("closed")
        self.writer.write(data)
        await self.writer.drain()

    async def _read(self, timeout: float) -> bytes:
        data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
        if not data:
            raise ConnectionResetError("client went away")
        return data

    def _timeout(self) -> float:
        return IDLE_TIMEOUT if self.logged_in else LOGIN_TIMEOUT

    async def next_event(self) -> c.Event:
        while True:
            event = self.codec.next_event()
            if event is not None:
                return event
            self.codec.feed(await self._read(self._timeout()))

    async def read_line(self) -> bytes | None:
        self.codec.line_mode()
        event = await self.next_event()
        return event.data if isinstance(event, c.Line) else None

    # --- the session ---------------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            if self.implicit:
                await self.writer.start_tls(self.server.tls, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
                small_tls_buffer(self.writer)
            await self.send(f"* OK [CAPABILITY {self.session.capabilities()}] mailwarden ready\r\n".encode())
            while not self._closing:
                event = await self.next_event()
                if isinstance(event, c.Continue):
                    if event.refused:
                        await self.send(f"{event.tag or '*'} NO [TOOBIG] {event.refused}\r\n".encode())
                    else:
                        await self.send(b"+ OK\r\n")
                    continue
                if isinstance(event, c.Bad):
                    await self.send(f"{event.tag or '*'} BAD {event.text}\r\n".encode())
                    if event.fatal:
                        await self.send(b"* BYE Cannot follow the command stream any more\r\n")
                        return
                    continue
                if isinstance(event, c.Line):
                    await self.send(b"* BAD Expected a command\r\n")
                    continue
                assert isinstance(event, c.Command)
                if event.name == "STARTTLS":
                    await self.starttls(event)
                elif event.name == "IDLE" and self.session.identity is not None:
                    await self.idle(event)
                else:
                    await self.session.handle(event)
        except Closing:
            pass
        except asyncio.TimeoutError:
            with suppress(Exception):
                await self.send(b"* BYE Autologout; idle for too long\r\n")
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            limited_log(log, "imap connection lost", "IMAP connection lost peer=%s: %s", self.peer, type(exc).__name__)
        except Exception:
            log.exception("IMAP session error peer=%s", self.peer)
            with suppress(Exception):
                await self.send(b"* BYE Internal error in the gateway; please reconnect\r\n")
        finally:
            if self._identity is not None:
                self.server.registry.remove(self._identity.login, id(self))
                metrics.session_closed("imap")
            self.writer.close()
            with suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 1)

    async def starttls(self, cmd: c.Command) -> None:
        if self.session.tls:
            await self.send(f"{cmd.tag} BAD TLS is on already\r\n".encode())
            return
        if self.codec.pending():
            # Bytes after STARTTLS in the same packet would be read as if they came through TLS.
            await self.send(f"{cmd.tag} BAD Nothing may follow STARTTLS before the handshake\r\n".encode())
            raise Closing
        await self.send(f"{cmd.tag} OK Begin TLS now\r\n".encode())
        await self.writer.start_tls(self.server.tls, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        small_tls_buffer(self.writer)
        self.session.tls = True

    async def idle(self, cmd: c.Command) -> None:
        """IDLE: tell what changes until the client says DONE."""
        await self.session.catch_up(expunge=True)
        await self.send(b"+ idling\r\n")
        self.codec.line_mode()
        loop = asyncio.get_running_loop()
        ends = loop.time() + IDLE_REFRESH
        read = asyncio.ensure_future(self.next_event())
        try:
            while True:
                waker = asyncio.ensure_future(self.server.watch.wait(IDLE_LOOK))
                done, _ = await asyncio.wait({read, waker}, return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    waker.cancel()
                    event = read.result()
                    if isinstance(event, c.Line) and event.data.strip().upper() == b"DONE":
                        await self.send(f"{cmd.tag} OK IDLE done\r\n".encode())
                    else:
                        await self.send(f"{cmd.tag} BAD Expected DONE\r\n".encode())
                    return
                await self.session.catch_up(expunge=True)
                if loop.time() >= ends:
                    await self.send(b"* BYE IDLE for too long; please reconnect\r\n")
                    raise Closing
        finally:
            if not read.done():
                read.cancel()
                with suppress(BaseException):
                    await read


class ImapServer:
    """Both listeners, the connections, and the watcher they share."""

    def __init__(self, store: StoreHandle, auth: Authenticator, registry: SessionRegistry, tls: ssl.SSLContext,
                 limits: ConnectionLimits, settings: Settings) -> None:
        self.store, self.auth, self.registry, self.tls = store, auth, registry, tls
        self.limits = limits
        self.settings = settings
        self.watch = ViewWatch(store)
        self.connections: set[ImapConnection] = set()
        self.servers: list[asyncio.base_events.Server] = []

    async def listen(self, host: str, port: int, *, implicit: bool) -> asyncio.base_events.Server:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = ImapConnection(self, reader, writer, implicit=implicit)
            refused = self.limits.admit(conn)
            if refused is not None:
                if not implicit:
                    writer.write(b"* BYE Too many connections to the gateway; try again later "
                                 b"(\xe8\xbf\x9e\xe6\x8e\xa5\xe8\xbf\x87\xe5\xa4\x9a)\r\n")
                writer.close()
                return
            self.connections.add(conn)
            try:
                await conn.serve()
            finally:
                self.connections.discard(conn)
                self.limits.release(conn)

        if not self.servers:
            self.watch.start()
        server = await asyncio.start_server(connected, host, port, reuse_address=True, backlog=511)
        self.servers.append(server)
        return server

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            conn.shut("The gateway is shutting down")
        await self.watch.stop()
