"""SMTP submission: salespeople's clients send here with their own logins.

One aiosmtpd ``SMTP`` protocol per connection, served from the gateway's own
event loop.  AUTH is offered only under TLS (STARTTLS on ``[listen] smtp``,
implicit TLS on ``[listen] smtps``); nothing is accepted without AUTH, so the
gateway is never an open relay.  The answer to DATA is given only after the
message is committed to the spool.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import time
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from functools import lru_cache
from typing import Any, AnyStr

from aiosmtpd.smtp import (
    MISSING,
    SMTP,
    AuthResult,
    Envelope,
    LoginPassword,
    Session,
    syntax,
)

from mailwarden.gateway.auth import Authenticator, Identity, SessionRegistry
from mailwarden.gateway.submission.data import DataReader
from mailwarden.gateway.submission.submit import Submitter

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
REPEAT_WINDOW = 5.0  # seconds within which the same refused login, tried again at once, is not counted again
DATA_CHUNK = 256 * 1024
_PENDING = AuthResult(success=False, handled=True)


@lru_cache(maxsize=4096)
def _parse_address(arg: str, local_part_limit: int) -> tuple[str | None, str | None]:
    """aiosmtpd's ``SMTP._getaddr``, remembered: the same few senders and customers come back
    all day, and each parse cost ~0.1 ms (the email package's address grammar, and a class
    aiosmtpd defines on every call)."""
    if not arg:
        return "", ""
    try:
        if arg.lstrip().startswith("<"):
            address, rest = get_angle_addr(arg)
        else:
            address, rest = get_addr_spec(arg)
    except HeaderParseError:
        return None, None
    addr = address.addr_spec
    localpart = addr.rpartition("@")[0]
    if local_part_limit and len(localpart) > local_part_limit:
        return None, None
    return addr, rest


def _peer_ip(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "?")


class SubmissionSMTP(SMTP):
    """aiosmtpd's protocol with asynchronous, throttled, audited logins."""

    def __init__(self, handler: "SubmissionHandler", *, implicit_tls: bool, **kw: Any) -> None:
        super().__init__(handler, **kw)
        self._implicit_tls = implicit_tls
        self._credentials: LoginPassword | None = None
        self._refused: tuple[bytes, str, float] | None = None  # the last refused (login, password), reply, when
        self.mw_handler = handler
        self.identity: Identity | None = None

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        return _parse_address(arg, self.local_part_limit)

    # Implicit TLS (port 465): the connection is encrypted from the start, so
    # AUTH may be offered at once.  aiosmtpd only knows STARTTLS; tell it.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.mw_handler.connections.add(self)
        if self._implicit_tls and self._tls_protocol is None:
            self._tls_protocol = transport  # type: ignore[assignment]
            self.session.ssl = transport.get_extra_info("ssl_object")

    def connection_lost(self, error: Exception | None) -> None:
        self.mw_handler.connections.discard(self)
        if self.identity is not None:
            self.mw_handler.registry.remove(self.identity.login, id(self))
        # After STARTTLS aiosmtpd drops its TLS transport without closing it
        # (it closes only the socket underneath): close it so nothing leaks.
        if self._original_transport is not None and self.transport is not None:
            self.transport.close()
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        """aiosmtpd's own refusals, reworded so a salesperson's mail client shows something useful."""
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if text.startswith("500 Line too long"):
            text = ("552 5.3.4 The message has a line longer than 1000 characters (RFC 5321); "
                    "it was not sent (邮件中有超长行，未发送)")
        elif text.startswith("552 Error: Too much mail data"):
            mb = (self.data_size_limit or 0) / (1024 * 1024)
            text = f"552 5.3.4 The message is larger than the {mb:g} MB limit; it was not sent (邮件过大，未发送)"
        await super().push(text)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """DATA read in chunks (see :mod:`.data`) instead of aiosmtpd's line-by-line loop."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Need RCPT first")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = DataReader(size_limit=self.data_size_limit or None, line_limit=self.line_length_limit - 2)
        while not reader.done:
            chunk = await self._reader.read(DATA_CHUNK)
            if not chunk:  # the client went away mid-message: nothing was accepted
                return
            reader.feed(chunk)
        if reader.leftover:  # a client that pipelines without being offered PIPELINING
            self._reader._buffer[:0] = reader.leftover  # type: ignore[attr-defined]
        if reader.problem is not None:
            self._set_post_data_state()
            await self.push("552 Error: Too much mail data" if reader.too_big else "500 Line too long")
            return
        content = reader.message()
        del reader
        self.envelope.content = self.envelope.original_content = content
        del content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        # aiosmtpd's parsers call this synchronously; park the credentials and
        # check them asynchronously in _finish_auth (argon2 and the throttle
        # delays must not block the event loop).
        self._credentials = auth_data
        return _PENDING

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._finish_auth("PLAIN", await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._finish_auth("LOGIN", await super().auth_LOGIN(_, args))

    async def _finish_auth(self, mechanism: str, parsed: AuthResult) -> AuthResult:
        if parsed is not _PENDING or self._credentials is None:
            return parsed
        creds, self._credentials = self._credentials, None
        login = creds.login.decode("utf-8", "replace")
        password = creds.password.decode("utf-8", "surrogateescape")
        ip = _peer_ip(self.session)
        handler = self.mw_handler
        # A client that at once tries the next mechanism with the same wrong password (Python's
        # smtplib does: PLAIN, then LOGIN) made one mistake, not two: it is counted and audited
        # once.  Only that one retry, within seconds: the same pair later is asked about again
        # (the account may have been enabled, or the password set to it, meanwhile).
        tried = handler.auth.pair_digest(login, password)
        last, self._refused = self._refused, None
        if last is not None and hmac.compare_digest(last[0], tried) and time.monotonic() - last[2] < REPEAT_WINDOW:
            return AuthResult(success=False, handled=False, message=last[1])
        outcome = await handler.auth.check(login, password, ip)
        if outcome.identity is None:
            await handler.audit("auth.failed", actor=login[:64] or "?", peer=ip, mechanism=mechanism,
                                reason=outcome.reason, locked=outcome.locked)
            log.info("login failed peer=%s login=%r reason=%s", ip, login[:64], outcome.reason)
            if outcome.delay:
                await asyncio.sleep(outcome.delay)
            if outcome.locked:
                return AuthResult(success=False, handled=False,
                                  message=f"454 4.7.0 Too many failed logins: {outcome.reason}")
            # The same answer for a disabled account: a different one would tell whoever tries
            # passwords that they found the right one (the audit event has the reason).
            reply = "535 5.7.8 Login or password wrong (登录名或密码错误)"
            self._refused = (tried, reply, time.monotonic())
            return AuthResult(success=False, handled=False, message=reply)
        self.identity = outcome.identity
        handler.registry.add(outcome.identity, id(self), self._cut)
        await handler.audit("auth.login", actor=outcome.identity.login, peer=ip, mechanism=mechanism, via="smtp")
        log.info("login peer=%s operator=%s", ip, outcome.identity.login)
        return AuthResult(success=True, handled=False, auth_data=outcome.identity)

    def _cut(self) -> None:
        """End this connection now (the user was disabled or their password changed)."""
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.write(b"421 4.7.0 Your account was disabled or its password changed; closing\r\n")
            except Exception:  # the peer may be gone already
                pass
            self.transport.close()


class SubmissionHandler:
    """aiosmtpd handler hooks; the work of accepting a message is in :class:`Submitter`."""

    def __init__(self, submitter: Submitter, auth: Authenticator, registry: SessionRegistry) -> None:
        self.submitter = submitter
        self.auth = auth
        self.registry = registry
        self.connections: set[SubmissionSMTP] = set()

    async def handle_exception(self, error: Exception) -> str:
        """An unexpected error (the database away, a bug): logged here, and a reply that tells
        the client to try again without telling it what broke (aiosmtpd's own names it)."""
        log.error("SMTP session error: %s: %s", type(error).__name__, error, exc_info=error)
        return "451 4.3.0 Temporary problem in the gateway; please try again"

    def close_all(self) -> None:
        """Close every open connection (on shutdown)."""
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()

    async def audit(self, action: str, *, actor: str, peer: str | None, **detail: Any) -> None:
        await self.submitter.audit(action, actor=actor, peer=peer, **detail)

    async def handle_MAIL(self, server: SubmissionSMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        ident = server.identity
        if ident is None or ident.login not in self.registry.sessions:
            return "530 5.7.0 Authentication required (请先登录)"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: SubmissionSMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if server.identity is None:
            return "530 5.7.0 Authentication required (请先登录)"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return f"452 4.5.3 Too many recipients (at most {MAX_RECIPIENTS} per message)"
        if "@" not in address or any(c <= " " or c == "\x7f" for c in address):
            return "553 5.1.3 Bad recipient address syntax"
        if not address.isascii():
            # The relay speaks plain (ASCII) SMTP to the company mailbox.
            return "553 5.6.7 Addresses with non-ASCII characters are not supported (不支持含中文等非ASCII字符的地址)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SubmissionSMTP, session: Session, envelope: Envelope) -> str:
        ident = server.identity
        if ident is None or ident.login not in self.registry.sessions:
            return "530 5.7.0 Authentication required (请先登录)"
        # Handed over, not kept: the submitter frees the original once the signed copy exists.
        return await self.submitter.submit(ident, envelope.rcpt_tos, _take_content(envelope), peer=_peer_ip(session))


def _take_content(envelope: Envelope) -> bytes:
    content = envelope.original_content or b""
    envelope.content = envelope.original_content = None
    return content


def make_factory(handler: SubmissionHandler, *, hostname: str, tls: ssl.SSLContext, implicit: bool,
                 size_limit: int) -> Any:
    """A protocol factory for ``loop.create_server``."""

    def factory() -> SubmissionSMTP:
        return SubmissionSMTP(
            handler,
            implicit_tls=implicit,
            hostname=hostname,
            ident="mailwarden ESMTP",
            tls_context=None if implicit else tls,
            require_starttls=not implicit,
            auth_required=True,
            auth_require_tls=True,
            auth_exclude_mechanism=[],
            data_size_limit=size_limit,
            decode_data=False,
            enable_SMTPUTF8=True,
            timeout=300,
        )

    return factory
