"""One IMAP connection over asyncio streams: commands out, the server's answers back.

The bytes are turned into events by :mod:`.imapresponse` and commands into bytes by
:mod:`.imapwire`; this module only moves them, with timeouts and flow control.

Literals are synchronising only: a command's literal goes out once the server has asked for
it (``+``), so a server that refuses the command (TRYCREATE, too big) gets none of its
bytes and can never read message bytes as commands (LITERAL+ could).  A literal from a
:class:`~.source.Source` is written piece by piece, each once the connection has taken the
last (``drain``); a server that answers in the middle of one is out of step, and so is a
connection left in the middle of a command (a timeout, a cancellation): both are closed.
The timeout runs from the last byte that went either way.

Untagged responses are collected for the command they came with (:class:`Reply`) and also
handed, as they arrive, to ``on_untagged`` (the sync's mailbox updates: EXISTS, EXPUNGE,
FETCH, VANISHED); :meth:`IMAPClient.next_event` reads on between commands (IDLE).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from mailwarden.gateway.upstream.imapresponse import NEED_DATA, ResponseParser
from mailwarden.gateway.upstream.imapwire import (
    Argument, Capability, Continuation, Event, ProtocolError, Status, Streamed, Untagged, argument, format_command)
from mailwarden.gateway.upstream.source import Source

TIMEOUT = 60.0  # seconds without a byte either way before a connection is given up
READ_SIZE = 256 * 1024


class Dropped(ConnectionError):
    """The connection is gone or out of step (closed, garbled, answered in mid-literal)."""


@dataclass(frozen=True)
class Reply:
    """A command's tagged status and the untagged responses that came with it."""

    status: Status
    untagged: tuple[Untagged | Status, ...]

    @property
    def ok(self) -> bool:
        return self.status.ok


class IMAPClient:
    """A connection to an IMAP server (:meth:`connect`), one command at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, peer: str,
                 timeout: float = TIMEOUT, on_untagged: Callable[[Untagged | Status], None] | None = None) -> None:
        self.reader, self.writer = reader, writer
        self.peer, self.timeout, self.on_untagged = peer, timeout, on_untagged
        self.capabilities: frozenset[str] = frozenset()
        self.broken = False
        self._parser = ResponseParser()
        self._tags = itertools.count(1)
        self._loop = asyncio.get_running_loop()
        self._active = self._loop.time()  # when the last byte went either way
        self._bye: Status | None = None

    @classmethod
    async def connect(cls, host: str, port: int, *, tls: ssl.SSLContext | None, timeout: float = TIMEOUT,
                      on_untagged: Callable[[Untagged | Status], None] | None = None) -> IMAPClient:
        """Connect (TLS from the start when ``tls`` is given) and read the greeting."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            host, port, ssl=tls, server_hostname=host if tls is not None else None, limit=READ_SIZE), timeout)
        client = cls(reader, writer, peer=f"{host}:{port}", timeout=timeout, on_untagged=on_untagged)
        try:
            greeting = await client.next_event()
            if not isinstance(greeting, Status) or greeting.tag is not None or greeting.status not in ("OK", "PREAUTH"):
                raise Dropped(f"upstream IMAP {client.peer} greeted with {greeting}")
            client._note(greeting)
        except BaseException:
            client.abort()
            raise
        return client

    @property
    def closed(self) -> bool:
        return self.broken or self.writer.is_closing()

    def new_tag(self) -> str:
        return f"mw{next(self._tags)}"

    async def starttls(self, tls: ssl.SSLContext, host: str) -> Reply:
        """STARTTLS; on OK the connection continues in TLS and capabilities must be asked again."""
        reply = await self.command("STARTTLS")
        if reply.ok:
            if self._parser.pending:  # bytes sent before the handshake must not count as protected
                self.abort()
                raise Dropped(f"upstream IMAP {self.peer} sent data after its STARTTLS answer")
            await asyncio.wait_for(self.writer.start_tls(tls, server_hostname=host), self.timeout)
            self.capabilities = frozenset()
        return reply

    async def capability(self) -> frozenset[str]:
        """Ask for the capabilities (they change after STARTTLS and LOGIN); none if refused."""
        reply = await self.command("CAPABILITY")
        self.capabilities = next((c.names for c in reply.untagged if isinstance(c, Capability)), frozenset()) \
            if reply.ok else frozenset()
        return self.capabilities

    async def command(self, name: str, *args: Argument | Source) -> Reply:
        """Send ``name args...`` and wait for its tagged status.  A ``bytes`` argument and a
        string only a literal can carry go as literals, a :class:`Source` is streamed from
        its file; each once the server has asked for it.  A server that answers instead of
        asking gets no literal: its answer is the reply (and after an earlier literal the
        connection is closed: a server that stopped half-way may not have read our last
        line as we meant it)."""
        for a in args:
            if isinstance(a, Source):
                await a.open()
        tag = self.new_tag()
        pieces = format_command(tag, name, *(Streamed(a.size) if isinstance(a, Source) else a for a in args))
        # Each literal's source, in order; None where the literal's bytes begin the next piece.
        literals = [a if isinstance(a, Source) else None for a in args
                    if isinstance(a, Source) or argument(a)[1] is not None]
        collected: list[Untagged | Status] = []
        in_step = False
        turn: asyncio.Future[Continuation | Status] | None = None
        try:
            for i, piece in enumerate(pieces):
                self.send(piece)
                await self.drain()
                ev = await (turn if turn is not None else self.wait(tag, collected))
                turn = None
                if isinstance(ev, Status):  # the answer; before the last piece: instead of asking for a literal
                    in_step = i == 0 or i == len(pieces) - 1
                    return Reply(ev, tuple(collected))
                if i == len(pieces) - 1:
                    raise Dropped(f"upstream IMAP {self.peer} asked for more after {name}")
                source = literals[i]
                if source is not None:
                    turn = await self._stream(source, tag, collected)
            raise AssertionError("unreachable")  # the last piece always ends in a status or raises
        finally:
            if turn is not None and not turn.done():
                turn.cancel()
            elif turn is not None and not turn.cancelled():
                turn.exception()  # retrieved: raised or reported above
            if not in_step:
                self.abort()

    async def _stream(self, source: Source, tag: str,
                      collected: list[Untagged | Status]) -> asyncio.Future[Continuation | Status] | None:
        """Write ``source`` as a literal, piece by piece.  From the second piece on, a reader
        waits for the server meanwhile (its next turn, returned): an answer that comes before
        the literal is complete means the server is out of step."""
        sent = 0
        turn: asyncio.Future[Continuation | Status] | None = None
        try:
            async with contextlib.aclosing(source.chunks()) as chunks:  # type: ignore[type-var]
                async for piece in chunks:
                    if sent:
                        if turn is None:
                            turn = asyncio.ensure_future(self.wait(tag, collected))
                            await asyncio.sleep(0)  # let it read what came with the first piece
                        if turn.done():
                            answer = turn.result()  # a timeout or a dropped connection raises
                            raise Dropped(f"upstream IMAP {self.peer} answered in the middle of a literal: {answer}")
                    self.send(piece)
                    sent += len(piece)
                    del piece
                    await self.drain()
            if turn is not None and turn.done():
                answer = turn.result()
                raise Dropped(f"upstream IMAP {self.peer} answered in the middle of a literal: {answer}")
            if sent != source.size:
                raise Dropped(f"literal cut short: {sent} of {source.size} bytes")
        except BaseException:
            if turn is not None:
                turn.cancel()
            raise
        return turn

    async def wait(self, tag: str, collected: list[Untagged | Status]) -> Continuation | Status:
        """Read until the server asks for more (``+``) or answers ``tag``; untagged responses
        on the way go to ``collected`` (and ``on_untagged``)."""
        while True:
            ev = await self.next_event()
            if isinstance(ev, Continuation):
                return ev
            if isinstance(ev, Status) and ev.tag is not None:
                if ev.tag != tag:
                    self.broken = True
                    raise Dropped(f"upstream IMAP {self.peer} answered {ev.tag!r}, not {tag!r}")
                self._note(ev)
                return ev
            self._note(ev)
            collected.append(ev)
            if self.on_untagged is not None:
                self.on_untagged(ev)

    async def next_event(self) -> Event:
        """The server's next response (between commands: what IDLE brings)."""
        while True:
            try:
                ev = self._parser.next_event()
            except ProtocolError as exc:
                self.abort()
                raise Dropped(f"upstream IMAP {self.peer}: {exc}") from None
            if ev is not NEED_DATA:
                if isinstance(ev, Status) and ev.status == "BYE":
                    self._bye = ev
                return ev
            data = await self._read()
            if not data:
                self.broken = True
                raise Dropped(f"upstream IMAP {self.peer} closed the connection"
                              + (f" ({self._bye})" if self._bye else ""))
            self._parser.feed(data)

    async def _read(self) -> bytes:
        while True:
            try:
                async with asyncio.timeout_at(self._active + self.timeout):
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError:
                if self._loop.time() < self._active + self.timeout:
                    continue  # a piece went out meanwhile: the wait starts again from it
                self.broken = True
                raise TimeoutError(f"upstream IMAP {self.peer} silent for {self.timeout:g}s") from None
            self._active = self._loop.time()
            return data

    def send(self, data: bytes) -> None:
        self.writer.write(data)
        self._active = self._loop.time()

    async def drain(self) -> None:
        """Wait until the connection has taken what was written (flow control)."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.writer.drain()
        except TimeoutError:
            self.broken = True
            raise
        self._active = self._loop.time()

    def _note(self, ev: Event) -> None:
        if isinstance(ev, Capability):
            self.capabilities = ev.names
        elif isinstance(ev, Status) and ev.code is not None and ev.code.name == "CAPABILITY":
            self.capabilities = frozenset(str(a).upper() for a in ev.code.args)

    def abort(self) -> None:
        """Close at once: the connection is out of step or no longer wanted."""
        self.broken = True
        self.writer.close()

    async def logout(self, timeout: float = 5) -> None:
        """LOGOUT (when the connection is still in step), then close."""
        try:
            if not self.closed:
                await asyncio.wait_for(self.command("LOGOUT"), timeout)
        except Exception:  # logging out of a broken connection: nothing to save
            pass
        finally:
            self.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), timeout)

