"""Connections to the company mailbox (the upstream), with the shared account.

Only the gateway knows the upstream password; it is revealed only to the
client libraries here and never logged.  SMTP is here, IMAP (APPEND) in
:mod:`.imap`; the message as it is streamed, and the failures, in :mod:`.source`.

A message goes out as a :class:`Source`, streamed from its spool file in pieces
of :data:`CHUNK` bytes, each written once the connection has taken the one
before: a large message is never held whole (the file is read, stuffed and
written piecewise; :class:`DotStuffer` does to each piece what :func:`stuffed`
does to the whole).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import MAX_RESPONSE_LENGTH, LINE_ENDINGS_REGEX, SMTPProtocol, normalize_message_line_endings
from aiosmtplib.response import SMTPResponse

from mailwarden.gateway.config import Upstream
from mailwarden.gateway.tls import client_context

from mailwarden.gateway.upstream.source import PermanentFailure, Source, TemporaryFailure

log = logging.getLogger(__name__)


@dataclass
class SendResult:
    refused: dict[str, tuple[int, str]]  # recipient → (code, text) for the ones the upstream refused


class SMTPConnection:
    """One reusable SMTP client connection to the upstream."""

    def __init__(self, upstream: Upstream, tls: ssl.SSLContext) -> None:
        self.upstream = upstream
        self.tls = tls
        self.client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        u = self.upstream
        client = aiosmtplib.SMTP(
            hostname=u.smtp.host, port=u.smtp.port, use_tls=u.smtp_tls == "implicit",
            start_tls=u.smtp_tls == "starttls", tls_context=self.tls, timeout=60,
        )
        try:
            await client.connect()
            await client.login(u.username, u.password.reveal())
        except BaseException:
            client.close()
            raise
        return client

    async def send(self, mail_from: str, rcpts: list[str], data: Source) -> SendResult:
        for attempt in (1, 2):
            try:
                if self.client is None or not self.client.is_connected:
                    try:
                        self.client = await self._connect()
                    except aiosmtplib.SMTPResponseException as exc:  # busy, greylisted: not the message's fault
                        raise TemporaryFailure(f"upstream SMTP refused the connection: {exc.code} {exc.message}") from None
                return await self._transaction(self.client, mail_from, rcpts, data)
            except aiosmtplib.SMTPServerDisconnected as exc:
                # A reused connection the server dropped while idle: one fresh try.
                await self.close()
                if attempt == 2:
                    raise TemporaryFailure(f"upstream SMTP disconnected: {exc}") from None
            except aiosmtplib.SMTPAuthenticationError as exc:
                await self.close()
                raise TemporaryFailure(f"upstream refused the shared account's login: {exc.code} {exc.message}") from None
            except aiosmtplib.SMTPResponseException as exc:
                await self.close()
                if exc.code >= 500:
                    raise PermanentFailure(f"{exc.code} {exc.message}") from None
                raise TemporaryFailure(f"{exc.code} {exc.message}") from None
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
                await self.close()
                raise TemporaryFailure(f"cannot reach the upstream SMTP server {self.upstream.smtp}: {exc or type(exc).__name__}") from None
            except Exception:  # never leave a half-finished transaction on a reused connection
                await self.close()
                raise
            except asyncio.CancelledError:  # stopping, maybe in the middle of DATA: drop the connection
                client, self.client = self.client, None
                if client is not None:
                    client.close()
                raise
        raise AssertionError("unreachable")

    async def _transaction(self, client: aiosmtplib.SMTP, mail_from: str, rcpts: list[str], data: Source) -> SendResult:
        if client.supports_extension("pipelining"):
            return await _pipelined(client, mail_from, rcpts, data)
        await client.mail(mail_from)
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in rcpts:
            try:
                await client.rcpt(rcpt)
            except aiosmtplib.SMTPRecipientRefused as exc:
                if _rcpt_refused(exc.code, exc.message):
                    refused[rcpt] = (exc.code, exc.message)
        if len(refused) == len(rcpts):
            await client.rset()
            return SendResult(refused)
        await _data(client, data)
        return SendResult(refused)

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        if client.is_connected:
            try:
                await asyncio.wait_for(client.quit(), 10)
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                pass
        client.close()  # also when the server dropped us: the transport must not leak


def stuffed(data: bytes) -> tuple[bytes, bytes]:
    """The message as DATA sends it (CRLF lines, leading dots doubled) and the end marker."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        # A lone CR or LF: make every line end in CRLF first, so "<CR>.<CR><LF>" tricks
        # (SMTP smuggling) cannot end the data early at a lenient upstream.
        data = normalize_message_line_endings(data)
    if data.startswith(b"."):
        data = b"." + data
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    return data, (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


class DotStuffer:
    """:func:`stuffed` a piece at a time: ``feed`` each piece of the message in turn, then
    ``end``; the bytes returned, joined, are ``stuffed(whole)``'s two parts joined.

    A CR that ends a piece is held back until the next piece shows whether an LF follows;
    a dot is doubled at the start of a piece when the piece before ended its line.
    """

    def __init__(self) -> None:
        self._cr = False        # a CR held back from the end of the last piece
        self._bol = True        # the next byte starts a line
        self._crlf_end = False  # what went out so far ends in CRLF

    def feed(self, piece: bytes) -> bytes:
        if self._cr:
            piece, self._cr = b"\r" + piece, False
        if piece.endswith(b"\r"):
            piece, self._cr = piece[:-1], True
        if not piece:
            return b""
        crlf = piece.count(b"\r\n")
        if piece.count(b"\n") != crlf or piece.count(b"\r") != crlf:
            piece = LINE_ENDINGS_REGEX.sub(b"\r\n", piece)  # lone CR or LF: see stuffed()
        if self._bol and piece.startswith(b"."):
            piece = b"." + piece
        if b"\n." in piece:
            piece = piece.replace(b"\n.", b"\n..")
        self._bol = self._crlf_end = piece.endswith(b"\n")  # every LF has its CR by now
        return piece

    def end(self) -> bytes:
        if self._cr:  # a lone CR last: a line end, as normalising makes it
            self._cr = False
            return b"\r\n.\r\n"
        return b".\r\n" if self._crlf_end else b"\r\n.\r\n"


async def _data(client: aiosmtplib.SMTP, source: Source) -> None:
    """DATA, then the message from ``source`` (:func:`_body`)."""
    proto = _protocol(client)
    async with proto._command_lock:
        proto._response_pending = True
        proto.write(b"DATA\r\n")
        start = await proto.read_response(timeout=client.timeout)
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        await _body(client, proto, source)


async def _body(client: aiosmtplib.SMTP, proto: SMTPProtocol, source: Source) -> None:
    """After the 354: the message streamed from ``source`` piece by piece, each dot-stuffed by
    :class:`DotStuffer` and written once the transport has taken the one before (its flow
    control: a TLS transport takes everything at once and buffers it otherwise), then the
    final reply.

    aiosmtplib's ``data()`` wants the whole message and copies it three times over.
    Uses aiosmtplib 5's protocol object.
    """
    stuffer = DotStuffer()
    proto._response_pending = True
    async for piece in source.chunks():
        piece = stuffer.feed(piece)
        if piece:
            proto.write(piece)
        del piece
        if proto._paused or proto._connection_lost:  # (wait_for costs a task even when nothing waits)
            await asyncio.wait_for(proto._drain_helper(), client.timeout)
    proto.write(stuffer.end())
    done = await proto.read_response(timeout=client.timeout)
    if done.code != 250:
        raise aiosmtplib.SMTPDataError(done.code, done.message)


def _protocol(client: aiosmtplib.SMTP) -> SMTPProtocol:
    proto = client.protocol
    if proto is None or proto._command_lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    return proto


def _rcpt_refused(code: int, message: str) -> bool:
    """Whether a RCPT reply refuses the recipient: 4xx or 5xx.  Any 2xx takes it (RFC 5321
    §4.2.1: act on the first digit; 252 "cannot verify, will try" included); anything else is
    not an answer to RCPT at all, and the transaction is given up."""
    if 200 <= code < 300:
        return False
    if 400 <= code < 600:
        return True
    raise aiosmtplib.SMTPResponseException(code, f"unexpected reply to RCPT: {message}")


@lru_cache(maxsize=1024)
def _quoted(address: str) -> bytes:
    """``<address>`` as aiosmtplib's ``mail()`` and ``rcpt()`` write it."""
    return quote_address(address).encode("ascii")


async def _pipelined(client: aiosmtplib.SMTP, mail_from: str, rcpts: list[str], source: Source) -> SendResult:
    """MAIL, the RCPTs and DATA in one write, their replies read together (RFC 2920
    PIPELINING): two round trips a message instead of three plus one per recipient.
    Raises as aiosmtplib's ``mail()`` and ``data()`` do; refused recipients are returned."""
    proto = _protocol(client)
    async with proto._command_lock:
        with _Replies(proto) as replies:
            proto.write(b"MAIL FROM:" + _quoted(mail_from) + b"\r\n"
                        + b"".join(b"RCPT TO:" + _quoted(r) + b"\r\n" for r in rcpts) + b"DATA\r\n")
            sender = await replies.read(client.timeout)
            try:
                answers = [await replies.read(client.timeout) for _ in rcpts]
                start = await replies.read(client.timeout)
            except aiosmtplib.SMTPServerDisconnected:
                if sender.code != 250:  # refused MAIL, then hung up: the refusal is the answer
                    raise aiosmtplib.SMTPSenderRefused(sender.code, sender.message, mail_from) from None
                raise
        if sender.code != 250:
            raise aiosmtplib.SMTPSenderRefused(sender.code, sender.message, mail_from)
        refused = {r: (a.code, a.message) for r, a in zip(rcpts, answers) if _rcpt_refused(a.code, a.message)}
        if start.code == 354 and len(refused) < len(rcpts):
            await _body(client, proto, source)
            return SendResult(refused)
        if start.code == 354:  # a server that lets DATA start without recipients: send nothing
            proto._response_pending = True
            proto.write(b".\r\n")
            await proto.read_response(timeout=client.timeout)
        elif len(refused) < len(rcpts):
            raise aiosmtplib.SMTPDataError(start.code, start.message)
    await client.rset()  # every recipient refused: end the transaction MAIL began
    return SendResult(refused)


class _Replies:
    """Reads the replies to pipelined commands off an aiosmtplib protocol, whose own reader
    keeps one reply and drops whatever arrives after it until that one is read."""

    def __init__(self, proto: SMTPProtocol) -> None:
        self.proto = proto
        self.more = asyncio.Event()

    def __enter__(self) -> _Replies:
        p = self.proto

        def data_received(data: bytes) -> None:
            p._buffer.extend(data)
            self.more.set()

        def connection_lost(exc: Exception | None) -> None:
            type(p).connection_lost(p, exc)
            self.more.set()

        def eof_received() -> bool:
            self.more.set()
            return type(p).eof_received(p)

        p.data_received = data_received  # type: ignore[method-assign]
        p.connection_lost = connection_lost  # type: ignore[method-assign]
        p.eof_received = eof_received  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for name in ("data_received", "connection_lost", "eof_received"):
            self.proto.__dict__.pop(name, None)

    async def read(self, timeout: float | None) -> SMTPResponse:
        while True:
            reply = self.proto._read_response_from_buffer()
            if reply is not None:
                return reply
            if self.proto.transport is None or self.proto.transport.is_closing():
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            if len(self.proto._buffer) > MAX_RESPONSE_LENGTH:
                raise aiosmtplib.SMTPResponseException(500, "Response too long")
            self.more.clear()
            try:
                await asyncio.wait_for(self.more.wait(), timeout)
            except asyncio.TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from None


def upstream_tls(upstream: Upstream) -> ssl.SSLContext:
    return client_context(upstream.ca_file, upstream.tls_verify)
