"""The SMTP submission protocol, sans-I/O: sessions fed whole, one byte at a time and
pipelined, with trailing bytes; every refusal the protocol gives on its own."""

from __future__ import annotations

import base64

import pytest
from mailwarden.gateway.submission.smtpevents import (NEED_DATA, AuthAttempt, Hangup, MailFrom, Message, Oversized, RcptTo,
                                                      StartTLS)
from mailwarden.gateway.submission.smtpwire import COMMAND_LIMIT, LINE_CAP, LINE_TOO_LONG, SubmissionWire

GOOD = b"right"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Client:
    """Drives a :class:`SubmissionWire` the way the asyncio server does, answering its events."""

    def __init__(self, *, tls: bool = True, size_limit: int | None = 10_000) -> None:
        self.wire = SubmissionWire(hostname="gw.test", size_limit=size_limit, offer_starttls=not tls, tls=tls)
        self.events: list[object] = []
        self.messages: list[bytes] = []
        self.hung_up = False

    def feed(self, data: bytes, step: int | None = None) -> list[str]:
        """Send ``data`` (in pieces of ``step`` bytes); the reply lines it got."""
        chunks = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
        for chunk in chunks:
            self.wire.receive_data(chunk)
            self._drain()
        return self.replies()

    def replies(self) -> list[str]:
        return self.wire.data_to_send().decode("utf-8").splitlines()

    def _drain(self) -> None:
        while (event := self.wire.next_event()) is not NEED_DATA:
            self.events.append(event)
            if isinstance(event, AuthAttempt):
                ok = event.password == GOOD
                self.wire.respond("235 2.7.0 Authentication successful" if ok else "535 5.7.8 wrong")
            elif isinstance(event, MailFrom):
                self.wire.respond("250 2.1.0 OK")
            elif isinstance(event, RcptTo):
                self.wire.respond("250 2.1.5 OK")
            elif isinstance(event, Message):
                self.messages.append(event.take())
                self.wire.respond("250 2.0.0 Queued")
            elif isinstance(event, Oversized):
                self.wire.respond(event.default_reply)
            elif isinstance(event, StartTLS):
                self.wire.tls_started()
            elif isinstance(event, Hangup):
                self.hung_up = True


def logged_in(**kw) -> Client:  # type: ignore[no-untyped-def]
    c = Client(**kw)
    c.feed(b"EHLO me\r\nAUTH PLAIN " + b64(b"\0zhang\0right").encode() + b"\r\n")
    return c


SESSION = (b"EHLO client.test\r\n"
           b"AUTH PLAIN " + b64(b"\0zhang\0right").encode() + b"\r\n"
           b"MAIL FROM:<zhang@company.test> SIZE=40 BODY=8BITMIME\r\n"
           b"RCPT TO:<max@buyer.test>\r\n"
           b"RCPT TO:<\"Anna B\"@buyer.test>\r\n"
           b"DATA\r\n"
           b"Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n"
           b"QUIT\r\n")
REPLIES = ["220 gw.test mailwarden ESMTP", "250-gw.test", "250-SIZE 10000", "250-8BITMIME", "250-SMTPUTF8",
           "250-AUTH LOGIN PLAIN", "250 HELP", "235 2.7.0 Authentication successful", "250 2.1.0 OK",
           "250 2.1.5 OK", "250 2.1.5 OK", "354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Queued", "221 Bye"]


@pytest.mark.parametrize("step", [None, 1, 2, 7, 64])
def test_a_whole_session_whole_in_pieces_and_pipelined(step):
    c = Client()
    assert c.feed(SESSION, step) == REPLIES
    assert c.messages == [b"Subject: x\r\n\r\n.dot\r\nend\r\n"]
    mail, rcpt1, rcpt2 = [e for e in c.events if isinstance(e, (MailFrom, RcptTo))]
    assert mail == MailFrom("zhang@company.test", ("SIZE=40", "BODY=8BITMIME"))
    assert (rcpt1.address, rcpt1.count, rcpt2.address, rcpt2.count) == ("max@buyer.test", 0, '"Anna B"@buyer.test', 1)
    assert c.hung_up and c.wire.closed


def test_trailing_bytes_after_quit_are_ignored():
    c = Client()
    assert c.feed(SESSION + b"NOOP\r\nRSET\r\n")[-1] == "221 Bye"
    assert c.feed(b"NOOP\r\n") == []


def test_commands_behind_a_message_are_answered_after_it():
    c = logged_in()
    c.replies()
    body = b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\nhello\r\n.\r\nRSET\r\nNOOP\r\n"
    assert c.feed(body) == ["250 2.1.0 OK", "250 2.1.5 OK", "354 End data with <CR><LF>.<CR><LF>",
                            "250 2.0.0 Queued", "250 OK", "250 OK"]
    assert c.wire.mail_from is None and c.wire.rcpts == []


def test_starttls_first_then_auth_is_offered_and_plaintext_sent_behind_it_is_dropped():
    c = Client(tls=False)
    got = c.feed(b"EHLO me\r\nMAIL FROM:<a@b>\r\nHELO me\r\nNOOP\r\nAUTH PLAIN x\r\n")
    assert "250-STARTTLS" in got and not any("AUTH" in r for r in got)
    assert got[-4:] == ["530 Must issue a STARTTLS command first", "530 Must issue a STARTTLS command first",
                        "250 OK", "530 Must issue a STARTTLS command first"]
    assert c.feed(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n") == ["220 Ready to start TLS"]
    assert c.wire.tls and c.wire.helo is None
    assert c.feed(b"MAIL FROM:<a@b>\r\nEHLO me\r\n")[:2] == ["503 Error: send HELO first", "250-gw.test"]
    assert "250-AUTH LOGIN PLAIN" in c.feed(b"EHLO me\r\n")
    assert c.feed(b"STARTTLS\r\nSTARTTLS x\r\n") == ["454 TLS not available", "501 Syntax: STARTTLS"]
    assert not any(isinstance(e, MailFrom) for e in c.events)


def test_implicit_tls_offers_auth_and_no_starttls():
    c = Client(tls=True)
    got = c.feed(b"EHLO me\r\nSTARTTLS\r\n")
    assert "250-AUTH LOGIN PLAIN" in got and "250-STARTTLS" not in got and got[-1] == "454 TLS not available"


@pytest.mark.parametrize("step", [None, 1])
def test_auth_with_challenges(step):
    c = Client()
    c.feed(b"EHLO me\r\n")
    c.replies()
    assert c.feed(b"AUTH PLAIN\r\n" + b64(b"\0li\0right").encode() + b"\r\n", step) == [
        "334 ", "235 2.7.0 Authentication successful"]
    assert c.events[-1] == AuthAttempt("PLAIN", b"li", b"right") and "right" not in repr(c.events[-1])
    c = Client()
    c.feed(b"EHLO me\r\n")
    c.replies()
    got = c.feed(b"AUTH LOGIN\r\n" + b64(b"li").encode() + b"\r\n" + b64(b"wrong").encode() + b"\r\n", step)
    assert got == ["334 VXNlciBOYW1lAA==", "334 UGFzc3dvcmQA", "535 5.7.8 wrong"]
    assert not c.wire.authenticated
    got = c.feed(b"AUTH LOGIN " + b64(b"li").encode() + b"\r\n" + b64(b"right").encode() + b"\r\n", step)
    assert got == ["334 UGFzc3dvcmQA", "235 2.7.0 Authentication successful"] and c.wire.authenticated
    assert c.feed(b"AUTH PLAIN x\r\n") == ["503 Already authenticated"]


@pytest.mark.parametrize(("wire", "reply"), [
    (b"AUTH\r\n", "501 Not enough value"),
    (b"AUTH PLAIN a b\r\n", "501 Too many values"),
    (b"AUTH plain\r\n", "504 5.5.4 Unrecognized authentication type"),
    (b"AUTH CRAM-MD5\r\n", "504 5.5.4 Unrecognized authentication type"),
    (b"AUTH PLAIN !!!\r\n", "501 5.5.2 Can't decode base64"),
    (b"AUTH PLAIN =\r\n", "501 5.5.2 Can't decode base64"),
    (b"AUTH PLAIN " + b64(b"no-nul").encode() + b"\r\n", "501 5.5.2 Can't split auth value"),
    (b"AUTH PLAIN\r\n*\r\n", "501 5.7.0 Auth aborted"),
    (b"AUTH PLAIN\r\n!!\r\n", "501 5.5.2 Can't decode base64"),
    (b"AUTH LOGIN\r\n*\r\n", "501 5.7.0 Auth aborted"),
    (b"AUTH LOGIN " + b64(b"li").encode() + b"\r\n*\r\n", "501 5.7.0 Auth aborted"),
])
def test_auth_refusals(wire, reply):
    c = Client()
    c.feed(b"EHLO me\r\n")
    c.replies()
    assert c.feed(wire)[-1] == reply
    assert not c.wire.authenticated and not c.events
    assert c.feed(b"NOOP\r\n") == ["250 OK"]  # back to commands


def test_auth_needs_ehlo_and_tls():
    c = Client()
    assert c.feed(b"AUTH PLAIN x\r\nHELO me\r\nAUTH PLAIN x\r\n")[1:] == [
        "503 Error: send EHLO first", "250 gw.test", "500 Error: command 'AUTH' not recognized"]
    plain = SubmissionWire(hostname="gw.test", size_limit=None, offer_starttls=False, tls=False)
    plain.receive_data(b"EHLO me\r\nAUTH PLAIN x\r\n")
    assert plain.next_event() is NEED_DATA
    assert plain.data_to_send().decode().splitlines()[-1] == (
        "538 5.7.11 Encryption required for requested authentication mechanism")


def test_nothing_before_ehlo_and_auth():
    c = Client()
    assert c.feed(b"MAIL FROM:<a@b>\r\nEHLO me\r\n")[1] == "503 Error: send HELO first"
    c.replies()
    assert c.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nDATA\r\nHELP\r\nVRFY a\r\n") == [
        "530 5.7.0 Authentication required"] * 5
    assert not c.events


@pytest.mark.parametrize(("command", "reply"), [
    (b"MAIL", "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
    (b"MAIL FROM", "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
    (b"MAIL FROM:", "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
    (b"MAIL FROM:<a@@b>", "553 5.1.3 Error: malformed address"),
    (b"MAIL FROM:<a@b.>", "553 5.1.3 Error: malformed address"),
    (b"MAIL FROM:<a@b> SIZE=abc", "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
    (b"MAIL FROM:<a@b> SIZE", "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
    (b"MAIL FROM:<a@b> =x", "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
    (b"MAIL FROM:<a@b> BODY=", "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"),
    (b"MAIL FROM:<a@b> SIZE=10001", "552 Error: message size exceeds fixed maximum message size"),
    (b"MAIL FROM:<a@b> BODY=BINARYMIME", "501 Error: BODY can only be one of 7BIT, 8BITMIME"),
    (b"MAIL FROM:<a@b> SMTPUTF8=x", "501 Error: SMTPUTF8 takes no arguments"),
    (b"MAIL FROM:<a@b> FOO=bar", "555 MAIL FROM parameters not recognized or not implemented"),
    (b"MAIL FROM:<a@b>x", "555 MAIL FROM parameters not recognized or not implemented"),
    (b"RCPT TO:<a@b>", "503 Error: need MAIL command"),
    (b"DATA", "503 5.5.1 Need RCPT first"),
    (b"RSET x", "501 Syntax: RSET"),
    (b"QUIT x", "501 Syntax: QUIT"),
    (b"EHLO", "501 Syntax: EHLO hostname"),
    (b"HELO", "501 Syntax: HELO hostname"),
    (b"VRFY", "501 Syntax: VRFY <address>"),
    (b"VRFY <<<", "502 Could not VRFY <<<"),
    (b"VRFY <a@b>", "252 Cannot VRFY user, but will accept message and attempt delivery"),
    (b"EXPN staff", "502 EXPN not implemented"),
    (b"", "500 Error: bad syntax"),
    (b"\xff\xfe", "500 Error: bad syntax"),
    (b"NOOP anything", "250 OK"),
    (b"FOO", '500 Error: command "FOO" not recognized'),
])
def test_refusals_after_login(command, reply):
    c = logged_in()
    c.replies()
    assert c.feed(command + b"\r\n") == [reply]
    assert not any(isinstance(e, MailFrom) for e in c.events)


@pytest.mark.parametrize(("command", "reply"), [
    (b"MAIL FROM:<c@d>", "503 Error: nested MAIL command"),
    (b"RCPT", "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]"),
    (b"RCPT TO:", "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]"),
    (b"RCPT TO:<a@b> NOTIFY=NEVER", "555 RCPT TO parameters not recognized or not implemented"),
    (b"RCPT TO:<a b@c>", "553 5.1.3 Error: malformed address"),
    (b"DATA", "503 5.5.1 Need RCPT first"),
])
def test_refusals_in_a_transaction(command, reply):
    c = logged_in()
    c.feed(b"MAIL FROM:<a@b>\r\n")
    assert c.feed(command + b"\r\n") == [reply]


def test_helo_session_takes_no_parameters_and_resets_the_transaction():
    c = logged_in()
    c.feed(b"MAIL FROM:<a@b>\r\n")
    assert c.feed(b"HELO me\r\nMAIL FROM:<a@b> SIZE=1\r\nMAIL FROM:<a@b>\r\nHELP MAIL\r\n") == [
        "250 gw.test", "501 Syntax: MAIL FROM: <address>", "250 2.1.0 OK", "250 Syntax: MAIL FROM: <address>"]


def test_help():
    c = logged_in()
    c.replies()
    assert c.feed(b"HELP\r\nHELP mail\r\nHELP BOGUS\r\nHELP STARTTLS\r\n") == [
        "250 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY",
        "250 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
        "501 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY",
        "501 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY"]
    c = Client(tls=False)
    c.feed(b"STARTTLS\r\n")
    c.feed(b"EHLO me\r\nAUTH PLAIN " + b64(b"\0a\0right").encode() + b"\r\n")
    c.replies()
    assert c.feed(b"HELP\r\n") == [
        "250 Supported commands: AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY"]


@pytest.mark.parametrize("step", [None, 1, 100])
def test_command_line_limits(step):
    c = logged_in()
    c.replies()
    mail = b"MAIL FROM:<" + b"a" * (COMMAND_LIMIT + 20) + b"@b>"  # within MAIL's allowance for SIZE and SMTPUTF8
    got = c.feed(b"NOOP " + b"x" * COMMAND_LIMIT + b"\r\n" + mail + b"\r\n" + b"y" * (LINE_CAP * 3) + b"\r\nNOOP\r\n",
                 step)
    assert got == ["500 Command line too long", "250 2.1.0 OK", "500 Command line too long", "250 OK"]
    assert c.feed(b"NOOP " + b"x" * (COMMAND_LIMIT - 5) + b"\r\n") == ["250 OK"]


def test_a_huge_line_without_end_is_not_kept():
    c = logged_in()
    c.replies()
    for _ in range(100):
        c.feed(b"z" * 10_000)
        assert c.wire.buffered <= LINE_CAP + 10_000
    assert c.feed(b"\r\nNOOP\r\n") == ["500 Command line too long", "250 OK"]


@pytest.mark.parametrize("step", [None, 1, 1000])
def test_data_too_long_line_and_too_big(step):
    c = logged_in(size_limit=5000)
    c.replies()
    head = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
    assert c.feed(head + b"x" * 1200 + b"\r\n.\r\nNOOP\r\n", step)[-2:] == [LINE_TOO_LONG, "250 OK"]
    got = c.feed(head + (b"y" * 70 + b"\r\n") * 100 + b".\r\nNOOP\r\n", step)
    assert got[-2:] == ["552 5.3.4 The message is larger than the 0.00476837 MB limit; it was not sent "
                        "(邮件超过 0.00476837 MB 的大小上限，未发送)", "250 OK"]
    assert c.messages == [] and c.wire.rcpts == []
    refused = [e for e in c.events if isinstance(e, Oversized)]
    assert [(e.rcpts, e.limit, e.line) for e in refused] == [(("c@d",), 5000, True), (("c@d",), 5000, False)]
    assert c.feed(b"RCPT TO:<c@d>\r\n") == ["503 Error: need MAIL command"]


def test_too_many_unknown_commands_end_the_session():
    c = logged_in()
    c.replies()
    got = c.feed(b"FOO1\r\nfoo2\r\nFOO3\r\nFOO4\r\nFOO5\r\nNOOP\r\n")
    assert got == ['500 Error: command "FOO1" not recognized', '500 Error: command "FOO2" not recognized',
                   '500 Error: command "FOO3" not recognized', '500 Error: command "FOO4" not recognized',
                   "502 5.5.1 Too many unrecognized commands, goodbye."]
    assert c.hung_up


def test_a_refused_recipient_is_not_taken_and_an_event_must_be_answered():
    w = SubmissionWire(hostname="gw.test", size_limit=None, offer_starttls=False, tls=True)
    w.receive_data(b"EHLO me\r\nAUTH PLAIN " + b64(b"\0a\0b").encode() + b"\r\nMAIL FROM:<>\r\nRCPT TO:<x@y>\r\n")
    assert isinstance(w.next_event(), AuthAttempt)
    with pytest.raises(RuntimeError):
        w.next_event()
    w.respond("235 ok")
    assert w.next_event() == MailFrom("<>", ())
    w.respond("250 ok")
    assert isinstance(w.next_event(), RcptTo)
    w.respond("452 4.5.3 Too many recipients")
    assert w.next_event() is NEED_DATA and w.rcpts == [] and w.mail_from == "<>"
    with pytest.raises(RuntimeError):
        w.respond("250 ok")


def test_a_message_is_handed_over_once():
    m = Message(("a@b",), b"body")
    assert m.take() == b"body" and m.take() == b""
