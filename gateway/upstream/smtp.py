"""SMTP to the company mailbox (the upstream), with the shared account: the relay's client.

Only the gateway knows the upstream password; it is revealed only to the login here and
never logged.  IMAP (APPEND) is in :mod:`.imap`; the message as it is streamed, and the
failures, in :mod:`.source`; the bytes on the wire (replies, commands, AUTH, dot-stuffing)
in :mod:`.smtpwire`, which this module only moves over asyncio streams.

A message goes out as a :class:`Source`, streamed from its spool file in pieces, each
dot-stuffed by :class:`DotStuffer` and written once the connection has taken the one before
(``drain``): a large message is never held whole.  When the server offers PIPELINING
(RFC 2920), MAIL, the RCPTs and DATA go in one write and their replies are read together:
two round trips a message instead of three plus one per recipient.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass

from mailwarden.gateway.config import Upstream
from mailwarden.gateway.tls import client_context
from mailwarden.gateway.upstream.smtpwire import (
    DATA, QUIT, RSET, STARTTLS, AuthRefused, DotStuffer, Extensions, Login, ProtocolError, Reply, ReplyReader,
    UnexpectedReply, ehlo_command, extensions, mail_command, mechanisms, needs_smtputf8, rcpt_command,
    rcpt_refused, stuffed,
)
from mailwarden.gateway.upstream.source import PermanentFailure, Source, TemporaryFailure

__all__ = ["DotStuffer", "SMTPConnection", "SendResult", "stuffed", "upstream_tls"]

log = logging.getLogger(__name__)

TIMEOUT = 60.0  # seconds for connecting, each reply, and the server to take each piece of DATA
QUIT_TIMEOUT = 10.0
READ_SIZE = 64 * 1024


@dataclass
class SendResult:
    refused: dict[str, tuple[int, str]]  # recipient → (code, text) for the ones the upstream refused


class _Dropped(Exception):
    """The server hung up, or the connection broke, in the middle of the conversation."""


class _Unusable(Exception):
    """The server cannot be used as configured (no STARTTLS, no AUTH we speak)."""


class _Refused(Exception):
    """A reply that ends the transaction; ``during`` says what it answered."""

    def __init__(self, reply: Reply, during: str = "transaction") -> None:
        super().__init__(str(reply))
        self.reply, self.during = reply, during


class _Wire:
    """One open connection: its streams, the replies read off it, what EHLO offered."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.replies = ReplyReader()
        self.ext = Extensions()
        self.in_step = False  # no command waits for its reply: QUIT may be sent

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def reply(self) -> Reply:
        while (reply := self.replies.next_reply()) is None:
            try:
                async with asyncio.timeout(TIMEOUT):
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError:
                raise TimeoutError(f"no reply within {TIMEOUT:.0f} s") from None
            except ConnectionError as exc:
                raise _Dropped(str(exc) or type(exc).__name__) from None
            if not data:
                raise _Dropped("the server closed the connection")
            self.replies.receive_data(data)
        return reply

    async def command(self, line: bytes) -> Reply:
        self.write(line)
        return await self.reply()

    async def drain(self) -> None:
        """Wait until the transport has taken what was written (down to its low-water mark)."""
        try:
            async with asyncio.timeout(TIMEOUT):
                await self.writer.drain()
        except TimeoutError:
            raise TimeoutError(f"the server took no data for {TIMEOUT:.0f} s") from None
        except ConnectionError as exc:
            raise _Dropped(str(exc) or type(exc).__name__) from None

    async def ehlo(self, hostname: str) -> None:
        reply = await self.command(ehlo_command(hostname))
        if reply.code != 250:
            raise _Refused(reply, "connect")
        self.ext = extensions(reply)

    async def stale(self) -> bool:
        """Whether the server spoke or hung up while the connection sat idle (an idle
        timeout's 421, then the close): then it is not used again.  Looks without waiting."""
        if self.replies.pending or self.reader.at_eof() or self.writer.is_closing():
            return True
        try:
            async with asyncio.timeout(0):  # read() returns at once only if something is there
                await self.reader.read(READ_SIZE)
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def abort(self) -> None:
        """Drop the connection now, nothing more sent (what is buffered is thrown away)."""
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(2):
                await self.writer.wait_closed()
        except (OSError, TimeoutError, ssl.SSLError):
            pass


_local_name: str | None = None


async def _hostname() -> str:
    """What EHLO says we are: this host's fully qualified name (looked up once)."""
    global _local_name
    if _local_name is None:
        name = await asyncio.to_thread(socket.getfqdn)
        _local_name = name if name.isascii() and name else "localhost"
    return _local_name


class SMTPConnection:
    """One reusable SMTP client connection to the upstream.

    :meth:`send` connects (and logs in) when needed, and once more when the connection it
    had was dropped; it raises :class:`TemporaryFailure` or :class:`PermanentFailure`.
    :attr:`connects` counts the connections opened."""

    def __init__(self, upstream: Upstream, tls: ssl.SSLContext) -> None:
        self.upstream = upstream
        self.tls = tls
        self.connects = 0
        self._wire: _Wire | None = None

    @property
    def connected(self) -> bool:
        return self._wire is not None

    async def send(self, mail_from: str, rcpts: list[str], data: Source) -> SendResult:
        """Send ``data`` from ``mail_from`` to ``rcpts``; the recipients the upstream refused
        are in the result (4xx or 5xx each), the others got the message."""
        for attempt in (1, 2):
            try:
                if self._wire is not None and await self._wire.stale():
                    self._drop()
                if self._wire is None:
                    self._wire = await self._connect()
                return await self._transaction(self._wire, mail_from, rcpts, data)
            except _Dropped as exc:
                # Dropped mid-conversation (an idle one dropped is seen by stale()): one fresh try.
                self._drop()
                if attempt == 2:
                    raise TemporaryFailure(f"upstream SMTP disconnected: {exc}") from None
            except _Refused as exc:
                await self.close()
                reply = exc.reply
                if exc.during == "login":
                    raise TemporaryFailure(f"upstream refused the shared account's login: {reply}") from None
                if exc.during == "connect":  # busy, greylisted: not the message's fault
                    raise TemporaryFailure(f"upstream SMTP refused the connection: {reply}") from None
                raise (PermanentFailure if reply.code >= 500 else TemporaryFailure)(str(reply)) from None
            except UnexpectedReply as exc:
                self._drop()
                raise (PermanentFailure if exc.reply.code >= 500 else TemporaryFailure)(str(exc)) from None
            except ProtocolError as exc:
                self._drop()
                raise TemporaryFailure(f"upstream SMTP server {self.upstream.smtp} broke the protocol: {exc}") from None
            except (_Unusable, OSError) as exc:  # timeouts included
                self._drop()
                raise TemporaryFailure(f"cannot reach the upstream SMTP server {self.upstream.smtp}: "
                                       f"{exc or type(exc).__name__}") from None
            except Exception:  # never leave a half-finished transaction on a reused connection
                if self._wire is not None and not self._wire.in_step:
                    self._drop()
                raise
            except asyncio.CancelledError:  # stopping, maybe in the middle of DATA: drop the connection
                self._drop()
                raise
        raise AssertionError("unreachable")

    async def login(self) -> None:
        """Connect and log in now, without sending (``mailwarden check``, and ``serve`` at
        start); raises :class:`TemporaryFailure` saying what failed."""
        try:
            if self._wire is None:
                self._wire = await self._connect()
        except _Refused as exc:
            what = "refused the shared account's login" if exc.during == "login" else "refused the connection"
            raise TemporaryFailure(f"upstream SMTP server {self.upstream.smtp} {what}: {exc.reply}") from None
        except ProtocolError as exc:
            raise TemporaryFailure(f"upstream SMTP server {self.upstream.smtp} broke the protocol: {exc}") from None
        except (_Unusable, _Dropped, OSError) as exc:
            raise TemporaryFailure(f"cannot reach the upstream SMTP server {self.upstream.smtp}: "
                                   f"{exc or type(exc).__name__}") from None

    async def close(self) -> None:
        """QUIT (when the conversation is in step) and close."""
        wire, self._wire = self._wire, None
        if wire is None:
            return
        if wire.in_step and not wire.writer.is_closing():
            try:
                async with asyncio.timeout(QUIT_TIMEOUT):
                    await wire.command(QUIT)
            except (_Dropped, ProtocolError, OSError):
                pass
        else:
            wire.abort()
        await wire.close()  # also when the server dropped us: the transport must not leak

    def _drop(self) -> None:
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.abort()

    async def _connect(self) -> _Wire:
        """A new connection, greeted, TLS as configured, logged in."""
        u = self.upstream
        implicit = u.smtp_tls == "implicit"
        name = await _hostname()
        try:
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection(
                    u.smtp.host, u.smtp.port, ssl=self.tls if implicit else None,
                    server_hostname=u.smtp.host if implicit else None)
        except TimeoutError:
            raise TimeoutError(f"no connection within {TIMEOUT:.0f} s") from None
        self.connects += 1
        wire = _Wire(reader, writer)
        try:
            try:
                greeting = await wire.reply()
            except _Dropped as exc:  # turned away at the door: nothing to retry on a new connection
                raise ConnectionError(f"closed before its greeting ({exc})") from None
            if greeting.code != 220:
                raise _Refused(greeting, "connect")
            await wire.ehlo(name)
            if u.smtp_tls == "starttls":
                if not wire.ext.starttls:
                    raise _Unusable("the server does not offer STARTTLS ([upstream] smtp_tls)")
                reply = await wire.command(STARTTLS)
                if reply.code != 220:
                    raise _Refused(reply, "connect")
                if wire.replies.pending:  # said before TLS, read as if after it: a response injection
                    raise ProtocolError("bytes after the answer to STARTTLS")
                await writer.start_tls(self.tls, server_hostname=u.smtp.host, ssl_handshake_timeout=TIMEOUT)
                await wire.ehlo(name)  # what was offered before TLS no longer counts (RFC 3207)
            await self._login(wire)
        except BaseException:
            wire.abort()
            raise
        wire.in_step = True
        log.debug("connected to the upstream SMTP server %s as %s (pipelining: %s)",
                  u.smtp, u.username, wire.ext.pipelining)
        return wire

    async def _login(self, wire: _Wire) -> None:
        """AUTH with the first mechanism both sides speak; on to the next only when the server
        says that one cannot be used (a wrong password is not tried again)."""
        u = self.upstream
        offered = mechanisms(wire.ext.auth)
        if not offered:
            raise _Unusable(f"the server offers no AUTH mechanism this client speaks "
                            f"(offered: {' '.join(wire.ext.auth) or 'none'})")
        for k, mechanism in enumerate(offered):
            login = Login(mechanism, u.username, u.password.reveal())
            try:
                reply = await wire.command(login.start())
                while (line := login.answer(reply)) is not None:
                    reply = await wire.command(line)
                return
            except AuthRefused as exc:
                code = exc.reply.code
                if code == 535 or code < 500 or k == len(offered) - 1:
                    raise _Refused(exc.reply, "login") from None

    async def _transaction(self, wire: _Wire, mail_from: str, rcpts: list[str], source: Source) -> SendResult:
        utf8 = wire.ext.smtputf8 and needs_smtputf8(mail_from, *rcpts)
        mail = mail_command(mail_from, smtputf8=utf8)  # an address that cannot go out raises here, in step
        lines = [rcpt_command(r, smtputf8=utf8) for r in rcpts]
        wire.in_step = False
        if wire.ext.pipelining:
            result = await _pipelined(wire, mail, rcpts, lines, source)
        else:
            result = await _stepwise(wire, mail, rcpts, lines, source)
        wire.in_step = True
        return result


async def _stepwise(wire: _Wire, mail: bytes, rcpts: list[str], lines: list[bytes], source: Source) -> SendResult:
    """One command, one reply."""
    sender = await wire.command(mail)
    if sender.code != 250:
        raise _Refused(sender)
    refused: dict[str, tuple[int, str]] = {}
    for rcpt, line in zip(rcpts, lines):
        answer = await wire.command(line)
        if rcpt_refused(answer):
            refused[rcpt] = (answer.code, answer.text)
    if len(refused) == len(rcpts):
        await _rset(wire)
        return SendResult(refused)
    start = await wire.command(DATA)
    if start.code != 354:
        raise _Refused(start)
    await _body(wire, source)
    return SendResult(refused)


async def _pipelined(wire: _Wire, mail: bytes, rcpts: list[str], lines: list[bytes], source: Source) -> SendResult:
    """MAIL, the RCPTs and DATA in one write, their replies read together (RFC 2920)."""
    wire.write(mail + b"".join(lines) + DATA)
    sender = await wire.reply()
    try:
        answers = [await wire.reply() for _ in rcpts]
        start = await wire.reply()
    except _Dropped:
        if sender.code != 250:  # refused MAIL, then hung up: the refusal is the answer
            raise _Refused(sender) from None
        raise
    if sender.code != 250:
        raise _Refused(sender)
    refused = {r: (a.code, a.text) for r, a in zip(rcpts, answers) if rcpt_refused(a)}
    if start.code == 354 and len(refused) < len(rcpts):
        await _body(wire, source)
        return SendResult(refused)
    if start.code == 354:  # a server that lets DATA start without recipients: send nothing
        await wire.command(b".\r\n")
    elif len(refused) < len(rcpts):
        raise _Refused(start)
    await _rset(wire)  # every recipient refused: end the transaction MAIL began
    return SendResult(refused)


async def _rset(wire: _Wire) -> None:
    reply = await wire.command(RSET)
    if reply.code != 250:
        raise _Refused(reply)


async def _body(wire: _Wire, source: Source) -> None:
    """After the 354: the message streamed from ``source`` piece by piece, each dot-stuffed
    and written once the transport has taken the one before, then the final reply."""
    stuffer = DotStuffer()
    async for piece in source.chunks():
        piece = stuffer.feed(piece)
        if piece:
            wire.write(piece)
        del piece
        await wire.drain()
    wire.write(stuffer.end())
    done = await wire.reply()
    if done.code != 250:
        raise _Refused(done)


def upstream_tls(upstream: Upstream) -> ssl.SSLContext:
    return client_context(upstream.ca_file, upstream.tls_verify)
