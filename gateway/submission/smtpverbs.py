"""The verbs of an SMTP submission session that the protocol answers on its own, without the
gateway: EHLO/HELO, STARTTLS, NOOP, QUIT, RSET, HELP, VRFY, EXPN.  A part of
:class:`.smtpwire.SubmissionWire` (its base), kept apart from the transaction's verbs (AUTH,
MAIL, RCPT, DATA), which become events for the gateway to answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from mailwarden.gateway.submission.sasl import MECHANISMS
from mailwarden.gateway.submission.smtpaddress import parse_path
from mailwarden.gateway.submission.smtpevents import Hangup, StartTLS

HELP: Final = {  # what HELP <verb> says
    "AUTH": "AUTH <mechanism>", "DATA": "DATA", "EHLO": "EHLO hostname", "HELO": "HELO hostname",
    "HELP": "HELP [command]", "MAIL": "MAIL FROM: <address>", "NOOP": "NOOP [ignored]", "QUIT": "QUIT",
    "RCPT": "RCPT TO: <address>", "RSET": "RSET", "STARTTLS": "STARTTLS", "VRFY": "VRFY <address>",
}


class SessionVerbs:
    """The session's own verbs; the state they read and the helpers they call are the wire's."""

    hostname: str
    size_limit: int | None
    offer_starttls: bool
    tls: bool
    helo: str | None
    extended: bool
    _in: bytearray

    if TYPE_CHECKING:  # the wire's own
        def reply(self, text: str) -> None: ...
        def _reset(self) -> None: ...
        def _hangup(self) -> Hangup: ...
        def _need_auth(self) -> bool: ...

    def _ehlo(self, arg: str) -> None:
        if not arg:
            self.reply("501 Syntax: EHLO hostname")
            return
        self._reset()
        self.helo, self.extended = arg, True
        lines = [self.hostname]
        if self.size_limit:
            lines.append(f"SIZE {self.size_limit}")
        lines += ["8BITMIME", "SMTPUTF8"]
        if self.offer_starttls and not self.tls:
            lines.append("STARTTLS")
        if self.tls:
            lines.append("AUTH " + " ".join(MECHANISMS))
        lines.append("HELP")
        for line in lines[:-1]:
            self.reply("250-" + line)
        self.reply("250 " + lines[-1])

    def _helo(self, arg: str) -> None:
        if not arg:
            self.reply("501 Syntax: HELO hostname")
            return
        self._reset()
        self.helo, self.extended = arg, False
        self.reply(f"250 {self.hostname}")

    def _starttls(self, arg: str) -> StartTLS | None:
        if arg:
            self.reply("501 Syntax: STARTTLS")
            return None
        if not self.offer_starttls or self.tls:
            self.reply("454 TLS not available")
            return None
        self.reply("220 Ready to start TLS")
        self._in.clear()  # nothing sent before the handshake may count as sent under TLS (RFC 3207 5)
        return StartTLS()

    def _noop(self, arg: str) -> None:
        self.reply("250 OK")

    def _quit(self, arg: str) -> Hangup | None:
        if arg:
            self.reply("501 Syntax: QUIT")
            return None
        self.reply("221 Bye")
        return self._hangup()

    def _rset(self, arg: str) -> None:
        if arg:
            self.reply("501 Syntax: RSET")
            return
        self._reset()
        self.reply("250 OK")

    def _help(self, arg: str) -> None:
        if self._need_auth():
            return
        offered = {verb: text for verb, text in HELP.items() if verb != "STARTTLS" or self.offer_starttls}
        text = offered.get(arg.upper()) if arg else None
        if text is not None:
            if self.extended and arg.upper() in ("MAIL", "RCPT"):
                text += " [SP <mail-parameters>]"
            self.reply("250 Syntax: " + text)
            return
        self.reply(f"{501 if arg else 250} Supported commands: {' '.join(sorted(offered))}")

    def _vrfy(self, arg: str) -> None:
        if self._need_auth():
            return
        if not arg:
            self.reply("501 Syntax: VRFY <address>")
        elif parse_path(arg)[0] is None:
            self.reply("502 Could not VRFY " + arg)
        else:
            self.reply("252 Cannot VRFY user, but will accept message and attempt delivery")

    def _expn(self, arg: str) -> None:
        self.reply("502 EXPN not implemented")
