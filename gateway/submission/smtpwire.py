"""The SMTP submission server's side of the protocol, sans-I/O: bytes in, events out.

:class:`SubmissionWire` knows no sockets.  Feed it what the client sent with
:meth:`~SubmissionWire.receive_data`, take :meth:`~SubmissionWire.next_event` until it
says :data:`NEED_DATA`, and send :meth:`~SubmissionWire.data_to_send` to the client.
It answers everything the protocol alone decides (syntax, order of commands, TLS before
AUTH, AUTH before MAIL, limits); what the gateway decides comes out as an event, and
the caller answers it with :meth:`~SubmissionWire.respond` before asking for the next one:

* :class:`AuthAttempt` — a login and password to check (a 2xx answer logs the client in);
* :class:`MailFrom`, :class:`RcptTo` — a 2xx answer takes the sender / recipient;
* :class:`Message` — the body of DATA, dot-stuffing undone (read by :class:`.DataReader`);
* :class:`StartTLS` — send what is pending, start TLS, then call ``tls_started()``;
* :class:`Hangup` — send what is pending, then close the connection.

Commands may come several at once (RFC 2920 pipelining): each is answered in order.
The verbs the protocol answers on its own (EHLO, HELP, …) are in :mod:`.smtpverbs`.
"""

from __future__ import annotations

import re
from typing import Final

from mailwarden.gateway.submission.data import DataReader
from mailwarden.gateway.submission.smtpaddress import mail_params_refusal, parse_params, parse_path
from mailwarden.gateway.submission.sasl import MECHANISMS, SaslExchange
from mailwarden.gateway.submission.replies import bilingual
from mailwarden.gateway.submission.smtpverbs import HELP, SessionVerbs
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
    NeedData,
)

COMMAND_LIMIT: Final = 512   # characters of a command line, without CRLF (RFC 5321 4.5.3.1.4)
MAIL_EXTRA: Final = 26 + 10  # what SIZE= (RFC 1870) and SMTPUTF8 (RFC 6531) add to MAIL
LINE_CAP: Final = 1001       # a line longer than this is dropped unread, then refused
BOGUS_LIMIT: Final = 5       # unknown commands before the connection is closed
BEFORE_STARTTLS: Final = frozenset({"NOOP", "EHLO", "STARTTLS", "QUIT"})  # RFC 3207 4

_UNPRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
AUTH_NEEDED: Final = "530 5.7.0 Authentication required"
LINE_TOO_LONG: Final = bilingual("line_too_long")




class SubmissionWire(SessionVerbs):
    """One SMTP submission session's protocol state (see the module docstring).

    ``offer_starttls``: the port offers STARTTLS and requires it before anything else
    (``[listen] smtp``); ``tls``: the connection is already encrypted (``[listen] smtps``).
    """

    def __init__(self, *, hostname: str, size_limit: int | None, offer_starttls: bool, tls: bool,
                 ident: str = "mailwarden ESMTP") -> None:
        self.hostname = hostname
        self.size_limit = size_limit
        self.offer_starttls = offer_starttls
        self.tls = tls
        self.helo: str | None = None      # the client's name once it said HELO/EHLO
        self.extended = False             # EHLO rather than HELO
        self.authenticated = False
        self.closed = False
        self.mail_from: str | None = None
        self.rcpts: list[str] = []
        self._in = bytearray()
        self._out: list[bytes] = []
        self._overlong = False            # dropping the rest of a line longer than LINE_CAP
        self._data: DataReader | None = None
        self._auth: SaslExchange | None = None  # while a 334 challenge waits for its answer
        self._pending: Event | None = None
        self._bogus = BOGUS_LIMIT
        self.reply(f"220 {hostname} {ident}")

    # --- bytes in, bytes out -------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Take what the client sent."""
        if self.closed:
            return
        if self._data is not None and not self._in:
            self._feed_data(data)  # the DATA body goes to the reader as it comes, never copied here
        else:
            self._in += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet taken by a command (a line never grows past LINE_CAP)."""
        return len(self._in)

    def data_to_send(self) -> bytes:
        """The replies pending, to send now."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def reply(self, text: str) -> None:
        """Queue one reply line (the text without CRLF).  What a reply quotes of the client's
        bytes (a verb, a VRFY argument) cannot break the line: controls and bytes that are not
        UTF-8 become "?"."""
        if not text.isprintable():
            text = _UNPRINTABLE.sub("?", text)
        self._out.append(text.encode("utf-8", "replace") + b"\r\n")

    # --- events --------------------------------------------------------------------------

    def next_event(self) -> Event | NeedData:
        """The next thing the caller must act on, or :data:`NEED_DATA`."""
        if self._pending is not None:
            raise RuntimeError(f"answer {self._pending!r} with respond() first")
        while not self.closed:
            if self._data is not None:
                if self._in:
                    data, self._in = bytes(self._in), bytearray()
                    self._feed_data(data)
                event = self._data_event()
                if event is NEED_DATA:
                    return NEED_DATA
            else:
                line = self._next_line()
                if line is None:
                    return Hangup() if self.closed else NEED_DATA
                event = self._auth_line(line) if self._auth is not None else self._command(line)
            if event is not None:
                if not isinstance(event, (StartTLS, Hangup)):
                    self._pending = event
                return event
        return NEED_DATA

    def respond(self, reply: str) -> None:
        """Answer the pending event; a 2xx reply means it was accepted."""
        event, self._pending = self._pending, None
        if event is None:
            raise RuntimeError("no event to answer")
        ok = reply.startswith("2")
        if isinstance(event, AuthAttempt):
            self.authenticated = ok
        elif isinstance(event, MailFrom) and ok:
            self.mail_from = event.address
        elif isinstance(event, RcptTo) and ok:
            self.rcpts.append(event.address)
        elif isinstance(event, Message):
            self._reset()
        self.reply(reply)

    def tls_started(self) -> None:
        """The TLS handshake after STARTTLS is done: the session starts over (RFC 3207 4.2)."""
        self.tls = True
        self.helo = None
        self.extended = False
        self._reset()

    # --- lines ---------------------------------------------------------------------------

    def _next_line(self) -> bytes | None:
        while True:
            end = self._in.find(b"\n")
            if end < 0:
                if len(self._in) > LINE_CAP:
                    if not self.authenticated:
                        self._in += b"\n"  # no need to wait for its end: refused at once (below)
                        continue
                    self._overlong = True
                    self._in.clear()
                return None
            line = bytes(self._in[:end]).rstrip(b"\r\n")
            del self._in[:end + 1]
            if self._overlong or len(line) > LINE_CAP:
                self._overlong = False
                self._auth = None
                if not self.authenticated:
                    # Before login nothing legitimate is that long (an AUTH answer is a few
                    # hundred bytes): what follows it is not read as commands.
                    self.reply("500 5.5.2 Line too long; closing the connection")
                    self.closed = True
                    self._in.clear()
                    return None
                self.reply("500 Command line too long")
                continue
            return line

    def _command(self, line: bytes) -> Event | None:
        if not line:
            self.reply("500 Error: bad syntax")
            return None
        verb_bytes, _, arg_bytes = line.partition(b" ")
        try:
            verb = verb_bytes.upper().decode("ascii")
        except UnicodeDecodeError:
            self.reply("500 Error: bad syntax")
            return None
        arg = arg_bytes.strip().decode("utf-8", "surrogateescape")
        limit = COMMAND_LIMIT + (MAIL_EXTRA if verb == "MAIL" and self.extended else 0)
        if len(line) > limit:
            self.reply("500 Command line too long")
            return None
        if self.offer_starttls and not self.tls and verb not in BEFORE_STARTTLS:
            self.reply("530 Must issue a STARTTLS command first")
            return None
        method = _VERBS.get(verb)
        if method is None:
            self._bogus -= 1
            if self._bogus < 1:
                self.reply("502 5.5.1 Too many unrecognized commands, goodbye.")
                return self._hangup()
            self.reply(f'500 Error: command "{verb}" not recognized')
            return None
        return method(self, arg)

    def _hangup(self) -> Hangup:
        self.closed = True
        return Hangup()

    def _reset(self) -> None:
        self.mail_from = None
        self.rcpts = []

    def _need_helo(self, verb: str = "HELO") -> bool:
        if self.helo is None:
            self.reply(f"503 Error: send {verb} first")
            return True
        return False

    def _need_auth(self) -> bool:
        if not self.authenticated:
            self.reply(AUTH_NEEDED)
            return True
        return False

    # --- the transaction's verbs (the session's own are in SessionVerbs) ---------------

    def _path(self, arg: str, keyword: str, syntax: str) -> tuple[str, str] | None:
        """The address of MAIL/RCPT and the parameters' text, or None once refused."""
        if arg[:len(keyword)].upper() != keyword:
            self.reply(syntax)
            return None
        address, rest = parse_path(arg[len(keyword):])
        if address is None:
            self.reply("553 5.1.3 Error: malformed address")
            return None
        if not address or (rest.strip() and not self.extended):
            self.reply(syntax)
            return None
        return address, rest

    def _syntax(self, verb: str) -> str:
        return f"501 Syntax: {HELP[verb]}" + (" [SP <mail-parameters>]" if self.extended else "")

    def _mail(self, arg: str) -> MailFrom | None:
        if self._need_helo() or self._need_auth():
            return None
        syntax = self._syntax("MAIL")
        parsed = self._path(arg, "FROM:", syntax)
        if parsed is None:
            return None
        address, rest = parsed
        if self.mail_from is not None:
            self.reply("503 Error: nested MAIL command")
            return None
        refusal = mail_params_refusal(rest, size_limit=self.size_limit, syntax=syntax)
        if refusal is not None:
            self.reply(refusal)
            return None
        return MailFrom(address, tuple(rest.upper().split()))

    def _rcpt(self, arg: str) -> RcptTo | None:
        if self._need_helo() or self._need_auth():
            return None
        if self.mail_from is None:
            self.reply("503 Error: need MAIL command")
            return None
        syntax = self._syntax("RCPT")
        parsed = self._path(arg, "TO:", syntax)
        if parsed is None:
            return None
        address, rest = parsed
        params = parse_params(rest)
        if params is None:
            self.reply(syntax)
            return None
        if params:
            self.reply("555 RCPT TO parameters not recognized or not implemented")
            return None
        return RcptTo(address, tuple(rest.upper().split()), len(self.rcpts))

    def _data_cmd(self, arg: str) -> None:
        if self._need_helo() or self._need_auth():
            return
        if not self.rcpts:
            self.reply("503 5.5.1 Need RCPT first")
            return
        if arg:
            self.reply("501 5.5.4 Syntax: DATA")
            return
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        self._data = DataReader(size_limit=self.size_limit or None)

    def _auth_cmd(self, arg: str) -> AuthAttempt | None:
        if self._need_helo("EHLO"):
            return None
        if not self.extended:
            self.reply("500 Error: command 'AUTH' not recognized")
        elif not self.tls:
            self.reply("538 5.7.11 Encryption required for requested authentication mechanism")
        elif self.authenticated:
            self.reply("503 Already authenticated")
        elif not arg:
            self.reply("501 Not enough value")
        elif len(args := arg.split()) > 2:
            self.reply("501 Too many values")
        elif args[0] not in MECHANISMS:
            self.reply("504 5.5.4 Unrecognized authentication type")
        else:
            exchange = SaslExchange(args[0])
            return self._sasl(exchange, exchange.start(args[1] if len(args) > 1 else None))
        return None

    def _auth_line(self, line: bytes) -> AuthAttempt | None:
        """The client's answer to a 334 challenge."""
        assert self._auth is not None
        exchange, self._auth = self._auth, None
        return self._sasl(exchange, exchange.step(line))

    def _sasl(self, exchange: SaslExchange, out: str | AuthAttempt) -> AuthAttempt | None:
        if isinstance(out, AuthAttempt):
            return out
        self.reply(out)
        if out.startswith("334"):
            self._auth = exchange
        return None

    # --- DATA ----------------------------------------------------------------------------

    def _feed_data(self, data: bytes) -> None:
        assert self._data is not None
        self._data.feed(data)

    def _data_event(self) -> Message | Oversized | NeedData:
        """The message once the reader has seen its end (:class:`Oversized`: refused), or NEED_DATA."""
        reader = self._data
        assert reader is not None
        if not reader.done:
            return NEED_DATA
        self._data = None
        self._in[:0] = reader.leftover  # the next commands, pipelined behind the message
        if reader.problem is not None:
            rcpts = tuple(self.rcpts)
            self._reset()
            return Oversized(rcpts, self.size_limit, not reader.too_big)
        return Message(tuple(self.rcpts), reader.message())


_VERBS = {
    "EHLO": SubmissionWire._ehlo, "HELO": SubmissionWire._helo, "STARTTLS": SubmissionWire._starttls,
    "AUTH": SubmissionWire._auth_cmd, "MAIL": SubmissionWire._mail, "RCPT": SubmissionWire._rcpt,
    "DATA": SubmissionWire._data_cmd, "RSET": SubmissionWire._rset, "NOOP": SubmissionWire._noop,
    "QUIT": SubmissionWire._quit, "VRFY": SubmissionWire._vrfy, "HELP": SubmissionWire._help,
    "EXPN": SubmissionWire._expn,
}
assert set(HELP) <= set(_VERBS)
