"""Connections to the company mailbox (the upstream), with the shared account.

Only the gateway knows the upstream password; it is revealed only to the
client libraries here and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from dataclasses import dataclass

import aioimaplib
import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings

from .config import Upstream
from .tls import client_context

log = logging.getLogger(__name__)


class TemporaryFailure(Exception):
    """Try again later (4xx, connection trouble, timeouts)."""


class PermanentFailure(Exception):
    """Give up and bounce (5xx)."""


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

    async def send(self, mail_from: str, rcpts: list[str], data: bytes) -> SendResult:
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
        raise AssertionError("unreachable")

    async def _transaction(self, client: aiosmtplib.SMTP, mail_from: str, rcpts: list[str], data: bytes) -> SendResult:
        await client.mail(mail_from)
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in rcpts:
            try:
                await client.rcpt(rcpt)
            except aiosmtplib.SMTPRecipientRefused as exc:
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


async def _data(client: aiosmtplib.SMTP, data: bytes) -> None:
    """DATA with the dot-stuffing done by ``bytes.replace``.

    aiosmtplib's ``data()`` runs two regular expressions over the whole message and copies it
    three times; for a spool file (CRLF lines already) one ``replace`` — and no copy at all
    when no line starts with a dot — does the same.  Uses aiosmtplib 5's protocol object.
    """
    proto = client.protocol
    if proto is None or proto._command_lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    data, ending = stuffed(data)
    async with proto._command_lock:
        proto._response_pending = True
        proto.write(b"DATA\r\n")
        start = await proto.read_response(timeout=client.timeout)
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        proto._response_pending = True
        proto.write(data)
        proto.write(ending)
        del data
        done = await proto.read_response(timeout=client.timeout)
        if done.code != 250:
            raise aiosmtplib.SMTPDataError(done.code, done.message)


PERMANENTFLAGS = re.compile(rb"PERMANENTFLAGS \(([^)]*)\)")


class IMAPConnection:
    """One IMAP connection to the upstream, used for APPEND (Sent copies, bounces)."""

    def __init__(self, upstream: Upstream, tls: ssl.SSLContext) -> None:
        self.upstream = upstream
        self.tls = tls
        self.client: aioimaplib.IMAP4 | None = None
        self._lock = asyncio.Lock()
        self._keywords_ok: dict[str, bool] = {}

    async def _connect(self) -> aioimaplib.IMAP4:
        u = self.upstream
        if u.imap_tls == "implicit":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(host=u.imap.host, port=u.imap.port, ssl_context=self.tls, timeout=60)
        else:
            client = aioimaplib.IMAP4(host=u.imap.host, port=u.imap.port, timeout=60)
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
        return client

    async def keywords_allowed(self, folder: str) -> bool:
        """Whether ``folder`` accepts new keywords (PERMANENTFLAGS has ``\\*``).
        Exchange allows none; Dovecot and most others do."""
        if folder not in self._keywords_ok:
            assert self.client is not None
            # SELECT, not EXAMINE: a read-only mailbox reports no permanent flags.
            resp = await self.client.select(_quote(folder))
            if resp.result != "OK":
                raise TemporaryFailure(f"cannot open upstream folder {folder!r}: {_text(resp)}")
            flags = b" ".join(m.group(1) for line in resp.lines if isinstance(line, (bytes, bytearray))
                              for m in [PERMANENTFLAGS.search(bytes(line))] if m)
            self._keywords_ok[folder] = b"\\*" in flags
            await self.client.close()
        return self._keywords_ok[folder]

    async def append(self, folder: str, data: bytes, flags: list[str], keywords: list[str]) -> None:
        async with self._lock:
            for attempt in (1, 2):
                try:
                    if self.client is None:
                        self.client = await asyncio.wait_for(self._connect(), 60)
                    allowed = keywords if keywords and await self.keywords_allowed(folder) else []
                    resp = await self.client.append(data, mailbox=_quote(folder), flags="(" + " ".join(flags + allowed) + ")")
                    if resp.result == "OK":
                        return
                    text = _text(resp)
                    if "TRYCREATE" in text.upper() and attempt == 1:
                        await self.client.create(_quote(folder))
                        continue
                    raise TemporaryFailure(f"upstream refused APPEND to {folder!r}: {text}")
                except (OSError, asyncio.TimeoutError, aioimaplib.Abort, aioimaplib.CommandTimeout) as exc:
                    await self.close()
                    if attempt == 2:
                        raise TemporaryFailure(f"cannot reach the upstream IMAP server {self.upstream.imap}: {exc or type(exc).__name__}") from None

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await _drop(client)


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


async def _drop(client: aioimaplib.IMAP4) -> None:
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


def upstream_tls(upstream: Upstream) -> ssl.SSLContext:
    return client_context(upstream.ca_file, upstream.tls_verify)
