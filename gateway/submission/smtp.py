"""SMTP submission: salespeople's clients send here with their own logins.

One :class:`SubmissionConnection` per client, over asyncio streams on the gateway's own event
loop; the protocol is :class:`.smtpwire.SubmissionWire` (sans-I/O), this module only moves
bytes and answers its events.  AUTH is offered only under TLS (STARTTLS on ``[listen] smtp``,
implicit TLS on ``[listen] smtps``); nothing is accepted without AUTH, so the gateway is never
an open relay.  The answer to DATA is given only after the message is committed to the spool.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import time
from typing import Any

from mailwarden.gateway import metrics
from mailwarden.gateway.auth import Authenticator, Identity, SessionRegistry, masked
from mailwarden.gateway.logsetup import limited_log
from mailwarden.gateway.submission.smtpevents import (
    NEED_DATA,
    AuthAttempt,
    Event,
    Hangup,
    MailFrom,
    Message,
    Oversized,
    RcptTo,
    StartTLS,
)
from mailwarden.gateway.submission.limits import ConnectionLimits
from mailwarden.gateway.submission.replies import say
from mailwarden.gateway.submission.smtpwire import SubmissionWire
from mailwarden.gateway.submission.submit import Submitter

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
REPEAT_WINDOW = 5.0  # seconds within which the same refused login, tried again at once, is not counted again
IDLE_TIMEOUT = 300.0  # seconds without a byte from the client before its connection is closed
LOGIN_TIMEOUT = 60.0  # seconds from connect to a successful AUTH, at most ([listen] login_timeout)
HANDSHAKE_TIMEOUT = 10.0  # seconds for the TLS handshake of an implicit-TLS connection
CLOSE_GRACE = 1.0  # seconds a closed TLS connection may take for its shutdown
READ_SIZE = 1024 * 1024  # more than a stream reader ever holds: one read takes all it has (see _starttls)
AUTH_REQUIRED = "530 5.7.0 Authentication required (请先登录)"
TEMPORARY = "451 4.3.0 Temporary problem in the gateway; please try again"
CUT = b"421 4.7.0 Your account was disabled or its password changed; closing\r\n"


class SubmissionConnection:
    """One client's connection: reads, feeds the protocol, answers its events, writes."""

    def __init__(self, handler: "SubmissionHandler", reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 wire: SubmissionWire, tls: ssl.SSLContext | None) -> None:
        self.handler = handler
        self.reader = reader
        self.writer = writer
        self.wire = wire
        self.tls = tls
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "?")
        self.identity: Identity | None = None
        self._refused: tuple[bytes, str, float] | None = None  # the last refused (login, password), reply, when
        self._waiting_since: float | None = None  # loop time the pending read began
        self._watchdog: asyncio.TimerHandle | None = None
        self._login_by = asyncio.get_running_loop().time() + handler.login_timeout  # loop time AUTH must be done by
        self.handshaking = False  # in the implicit-TLS handshake: nothing can be said yet

    @property
    def logged_in(self) -> bool:
        return self.identity is not None

    @property
    def operator(self) -> str:
        """Who is logged in on this connection, for log lines ("-" before AUTH)."""
        return self.identity.login if self.identity is not None else "-"

    async def serve(self) -> None:
        """The session, from the greeting to the end of the connection."""
        loop = asyncio.get_running_loop()
        # One timer per connection that looks at when the current read began, rather than a
        # timeout per read: a message takes several reads, and rescheduling costs each time.
        self._watchdog = loop.call_later(min(IDLE_TIMEOUT, max(0.0, self._login_by - loop.time())),
                                         self._check_idle, loop)
        try:
            while True:
                event = self.wire.next_event()
                if event is NEED_DATA:
                    await self._flush()
                    self._waiting_since = loop.time()
                    data = await self.reader.read(READ_SIZE)
                    self._waiting_since = None
                    if not data:
                        return  # the client went away (mid-message: nothing was accepted), or timed out
                    self.wire.receive_data(data)
                elif isinstance(event, Hangup):
                    await self._flush()
                    return
                elif isinstance(event, StartTLS):
                    await self._starttls()
                else:
                    await self._answer(event)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            limited_log(log, "connection lost", "connection lost peer=%s operator=%s: %s", self.peer, self.operator,
                        type(exc).__name__)
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()

    def _check_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        if self.identity is None and now >= self._login_by:
            # However busy it keeps the line (NOOPs before STARTTLS), a connection that does
            # not log in gives its descriptor back.
            limited_log(log, "login timeout", "login timeout peer=%s", self.peer)
            self.shut(f"421 4.7.0 No login within {self.handler.login_timeout:g} s; closing")
            return
        since = self._waiting_since
        idle = 0.0 if since is None else now - since
        if idle >= IDLE_TIMEOUT:
            limited_log(log, "idle timeout", "idle timeout peer=%s operator=%s", self.peer, self.operator)
            self.close()
            return
        wait = IDLE_TIMEOUT - idle
        if self.identity is None:
            wait = min(wait, self._login_by - now)
        self._watchdog = loop.call_later(wait, self._check_idle, loop)

    async def _flush(self) -> None:
        out = self.wire.data_to_send()
        if out:
            if self.writer.is_closing():  # closed under it (shutdown, giving way): a TLS
                raise ConnectionResetError("closed by the gateway")  # transport cannot take it
            self.writer.write(out)
            await self.writer.drain()

    async def _starttls(self) -> None:
        assert self.tls is not None
        # No await between the read that brought STARTTLS and the switch to TLS but the drain of
        # "220", and every read takes all the reader holds: nothing sent in the clear after
        # STARTTLS can be read as if it came through TLS (RFC 3207 5).
        self.writer.write(self.wire.data_to_send())
        await self.writer.start_tls(self.tls)
        self.wire.tls_started()

    async def _answer(self, event: Event) -> None:
        handler = self.handler
        try:
            if isinstance(event, MailFrom):
                reply = handler.mail(self)
            elif isinstance(event, RcptTo):
                reply = handler.rcpt(self, event)
            elif isinstance(event, Message):
                reply = await handler.data(self, event)
            elif isinstance(event, Oversized):
                reply = await handler.oversized(self, event)
            else:
                assert isinstance(event, AuthAttempt)
                await self._flush()
                reply = await self._login(event)
        except Exception as exc:  # the database away, a bug: the client hears only "try again"
            log.error("SMTP session error peer=%s operator=%s: %s: %s", self.peer, self.operator,
                      type(exc).__name__, exc, exc_info=exc)
            reply = TEMPORARY
        self.wire.respond(reply)

    async def _login(self, attempt: AuthAttempt) -> str:
        login = attempt.login.decode("utf-8", "replace")
        password = attempt.password.decode("utf-8", "surrogateescape")
        handler = self.handler
        # A client that at once tries the next mechanism with the same wrong password (Python's
        # smtplib does: PLAIN, then LOGIN) made one mistake, not two: it is counted and audited
        # once.  Only that one retry, within seconds: the same pair later is asked about again
        # (the account may have been enabled, or the password set to it, meanwhile).
        tried = handler.auth.pair_digest(login, password)
        last, self._refused = self._refused, None
        if last is not None and hmac.compare_digest(last[0], tried) and time.monotonic() - last[2] < REPEAT_WINDOW:
            return last[1]
        outcome = await handler.auth.check(login, password, self.peer)
        if outcome.identity is None:
            # A name that is no user's may be a password typed into the wrong field.
            who = login.strip().lower()[:64] if outcome.known else masked(login)
            await handler.audit("auth.failed", actor=who, peer=self.peer, mechanism=attempt.mechanism,
                                reason=outcome.reason, locked=outcome.locked)
            limited_log(log, "login failed", "login failed peer=%s login=%r reason=%s", self.peer, who, outcome.reason)
            if outcome.delay:
                await asyncio.sleep(outcome.delay)
            if outcome.locked:
                return f"454 4.7.0 {outcome.reason[:1].upper()}{outcome.reason[1:]} (登录失败次数过多，请稍后再试)"
            # The same answer for a disabled account: a different one would tell whoever tries
            # passwords that they found the right one (the audit event has the reason).
            reply = "535 5.7.8 Login or password wrong (登录名或密码错误)"
            self._refused = (tried, reply, time.monotonic())
            return reply
        self.identity = outcome.identity
        handler.registry.add(outcome.identity, id(self), self.cut)
        metrics.session_opened("smtp")
        await handler.audit("auth.login", actor=outcome.identity.login, peer=self.peer, mechanism=attempt.mechanism,
                            via="smtp")
        log.info("login peer=%s operator=%s", self.peer, outcome.identity.login)
        return "235 2.7.0 Authentication successful"

    def cut(self) -> None:
        """End this connection now (the user was disabled or their password changed)."""
        if not self.writer.is_closing():
            try:
                self.writer.write(CUT)
            except Exception:  # the peer may be gone already
                pass
            self.writer.close()

    def close(self) -> None:
        """Close the connection (on shutdown); :meth:`serve` then ends.  A TLS client that does
        not answer the close_notify at once (an idle one is not reading) is cut off shortly after."""
        if self.writer.is_closing():  # closing a TLS transport twice breaks it for its own cleanup
            return
        self.writer.close()
        asyncio.get_running_loop().call_later(CLOSE_GRACE, self.writer.transport.abort)

    def shut(self, reply: str) -> None:
        """Say ``reply`` (a 421) and close: the connection gives way to others, or took too long."""
        if not self.writer.is_closing() and not self.handshaking:
            try:
                self.writer.write(reply.encode() + b"\r\n")
            except Exception:  # the peer may be gone already, or the TLS handshake not done
                pass
        self.close()


class SubmissionHandler:
    """What the gateway decides in a submission session; accepting a message is :class:`Submitter`'s."""

    def __init__(self, submitter: Submitter, auth: Authenticator, registry: SessionRegistry,
                 limits: ConnectionLimits, login_timeout: float = LOGIN_TIMEOUT) -> None:
        self.submitter = submitter
        self.auth = auth
        self.registry = registry
        self.limits = limits
        self.login_timeout = login_timeout
        self.connections: set[SubmissionConnection] = set()

    def close_all(self) -> None:
        """Close every open connection (on shutdown)."""
        for conn in list(self.connections):
            conn.close()

    async def audit(self, action: str, *, actor: str, peer: str | None, **detail: Any) -> None:
        await self.submitter.audit(action, actor=actor, peer=peer, **detail)

    def _logged_in(self, conn: SubmissionConnection) -> Identity | None:
        ident = conn.identity
        return ident if ident is not None and ident.login in self.registry.sessions else None

    def mail(self, conn: SubmissionConnection) -> str:
        return "250 2.1.0 OK" if self._logged_in(conn) else AUTH_REQUIRED

    def rcpt(self, conn: SubmissionConnection, rcpt: RcptTo) -> str:
        address = rcpt.address
        if conn.identity is None:
            return AUTH_REQUIRED
        if rcpt.count >= MAX_RECIPIENTS:
            return f"452 4.5.3 Too many recipients (at most {MAX_RECIPIENTS} per message)"
        if "@" not in address or any(c <= " " or c == "\x7f" for c in address):
            return "553 5.1.3 Bad recipient address syntax"
        if not address.isascii():
            # The relay speaks plain (ASCII) SMTP to the company mailbox.
            return say("non_ascii", self.submitter.lang_of(conn.identity))
        return "250 2.1.5 OK"

    async def oversized(self, conn: SubmissionConnection, event: Oversized) -> str:
        """A message refused unread (too big, a line too long): told in the sender's language,
        counted and audited like any other refusal."""
        ident = conn.identity
        if ident is None:
            return event.default_reply
        lang = self.submitter.lang_of(ident)
        reply = say("line_too_long", lang) if event.line else say("too_big", lang, mb=(event.limit or 0) / (1024 * 1024))
        metrics.message("refused")
        await self.audit("send.refused", actor=ident.login, peer=conn.peer, reason=reply, rcpts=list(event.rcpts),
                         **({"line_limit": 1000} if event.line else {"size_limit": event.limit}))
        log.info("refused peer=%s operator=%s: %s", conn.peer, ident.login,
                 "a line too long" if event.line else "larger than the size limit")
        return reply

    async def data(self, conn: SubmissionConnection, message: Message) -> str:
        ident = self._logged_in(conn)
        if ident is None:
            return AUTH_REQUIRED
        # Handed over, not kept: the submitter frees the original once the signed copy exists.
        return await self.submitter.submit(ident, list(message.rcpts), message.take(), peer=conn.peer)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, hostname: str,
                    tls: ssl.SSLContext, implicit: bool, size_limit: int) -> None:
        """One connection, start to end (an ``asyncio.start_server`` callback)."""
        wire = SubmissionWire(hostname=hostname, size_limit=size_limit, offer_starttls=not implicit, tls=implicit)
        conn = SubmissionConnection(self, reader, writer, wire, None if implicit else tls)
        refusal = self.limits.admit(conn)
        if refusal is not None:
            limited_log(log, "connection refused", "connection refused peer=%s: %d open, none of them waiting for "
                        "a login", conn.peer, len(self.limits))
            if not implicit:  # on the implicit-TLS port nothing can be said before the handshake
                writer.write(refusal.encode() + b"\r\n")
            writer.close()
            return
        self.connections.add(conn)
        try:
            if implicit:
                # The handshake happens here, not in the listener, so that a connection still in
                # it counts against the limits and can be made to give way like any other.
                conn.handshaking = True
                try:
                    await writer.start_tls(tls, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
                    conn.handshaking = False
                except (ConnectionError, ssl.SSLError, OSError, asyncio.TimeoutError) as exc:
                    limited_log(log, "TLS handshake failed", "TLS handshake failed peer=%s: %s", conn.peer,
                                type(exc).__name__)
                    return
            await conn.serve()
        finally:
            self.limits.release(conn)
            self.connections.discard(conn)
            if conn.identity is not None:
                self.registry.remove(conn.identity.login, id(conn))
                metrics.session_closed("smtp")
            if not writer.is_closing():
                writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError, OSError):
                pass


async def listen(handler: SubmissionHandler, host: str, port: int, *, hostname: str, tls: ssl.SSLContext,
                 implicit: bool, size_limit: int) -> asyncio.Server:
    """A submission listener: implicit TLS (``implicit``, port 465) or STARTTLS (port 587)."""

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handler.serve(reader, writer, hostname=hostname, tls=tls, implicit=implicit, size_limit=size_limit)

    # TLS of the implicit port is started by the connection itself (see SubmissionHandler.serve).
    return await asyncio.start_server(connected, host, port, reuse_address=True, backlog=511)
