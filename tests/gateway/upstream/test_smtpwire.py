"""The SMTP client's wire codec, sans-I/O: replies fed whole, one byte at a time and with
trailing bytes; EHLO extensions; commands and address quoting; AUTH encodings."""

from __future__ import annotations

import base64
import hmac

import pytest
from mailwarden.gateway.upstream.smtpwire import (
    AuthRefused, Login, ProtocolError, Reply, ReplyReader, UnexpectedReply, extensions, mail_command, mechanisms,
    normalised, quote_address, rcpt_command, rcpt_refused,
)

EHLO = (b"250-mail.example.test Hello\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-STARTTLS\r\n"
        b"250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN CRAM-MD5\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
        b"250 SMTPUTF8\r\n")
WIRE = b"220 mail.example.test ESMTP\r\n" + EHLO + b"550-5.1.1 no such user\r\n550 5.1.1 try another\r\n"
REPLIES = [
    Reply(220, "mail.example.test ESMTP"),
    Reply(250, "mail.example.test Hello\nPIPELINING\nSIZE 104857600\nSTARTTLS\nAUTH PLAIN LOGIN\n"
               "AUTH=PLAIN LOGIN CRAM-MD5\nENHANCEDSTATUSCODES\n8BITMIME\nSMTPUTF8"),
    Reply(550, "5.1.1 no such user\n5.1.1 try another"),
]


def read_all(wire: bytes, step: int | None) -> tuple[list[Reply], ReplyReader]:
    reader, got = ReplyReader(), []
    for i in range(0, len(wire), step or len(wire) or 1):
        reader.receive_data(wire[i:i + (step or len(wire))])
        while (reply := reader.next_reply()) is not None:
            got.append(reply)
    return got, reader


@pytest.mark.parametrize("step", [None, 1, 2, 3, 7, 64])
def test_replies_whole_and_in_pieces(step):
    got, reader = read_all(WIRE, step)
    assert got == REPLIES and not reader.pending


def test_every_single_cut():
    for cut in range(len(WIRE) + 1):
        reader, got = ReplyReader(), []
        for part in (WIRE[:cut], WIRE[cut:]):
            reader.receive_data(part)
            while (reply := reader.next_reply()) is not None:
                got.append(reply)
        assert got == REPLIES, cut


def test_trailing_bytes_wait_for_the_rest_of_their_reply():
    got, reader = read_all(WIRE + b"250-more to", 1)
    assert got == REPLIES and reader.pending and reader.next_reply() is None
    reader.receive_data(b" come\r\n250 done\r\n")
    assert reader.next_reply() == Reply(250, "more to come\ndone") and not reader.pending


def test_bare_lf_and_a_code_alone():
    got, _ = read_all(b"250\r\n354 go ahead\n221\n", None)
    assert got == [Reply(250, ""), Reply(354, "go ahead"), Reply(221, "")]


def test_non_utf8_text_survives():
    got, _ = read_all(b"550 \xc4\xe3\xba\xc3\r\n", 1)
    assert got[0].text.encode("utf-8", "surrogateescape") == b"\xc4\xe3\xba\xc3"


@pytest.mark.parametrize("line", [b"hello\r\n", b"25 ok\r\n", b"2500ok\r\n", b"abc ok\r\n", b"\r\n"])
def test_a_line_that_is_no_reply_is_a_protocol_error(line):
    reader = ReplyReader()
    reader.receive_data(line)
    with pytest.raises(ProtocolError):
        reader.next_reply()


@pytest.mark.parametrize("step", [None, 1000])
def test_a_reply_over_the_limit_is_a_protocol_error(step):
    reader = ReplyReader(max_size=4096)
    wire = b"250-" + b"x" * 100 + b"\r\n"
    with pytest.raises(ProtocolError, match="longer than 4096"):  # many continuation lines
        for _ in range(100):
            reader.receive_data(wire)
            assert reader.next_reply() is None
    reader = ReplyReader(max_size=4096)
    with pytest.raises(ProtocolError):  # one line without its end
        for i in range(0, 10_000, step or 10_000):
            reader.receive_data(b"2" * (step or 10_000))
            assert reader.next_reply() is None


def test_a_reply_just_within_the_limit():
    line = b"250 " + b"x" * (4096 - 6) + b"\r\n"
    reader = ReplyReader(max_size=4096)
    reader.receive_data(line)
    assert reader.next_reply() == Reply(250, "x" * 4090)


def test_extensions():
    ext = extensions(REPLIES[1])
    assert ext.pipelining and ext.starttls and ext.eight_bit_mime and ext.smtputf8
    assert ext.size == 104857600 and ext.auth == ("PLAIN", "LOGIN", "CRAM-MD5")
    bare = extensions(Reply(250, "mail.example.test"))
    assert not (bare.pipelining or bare.starttls or bare.smtputf8) and bare.size is None and bare.auth == ()
    assert extensions(Reply(250, "x\nSIZE\nauth login xoauth2")).size is None
    assert extensions(Reply(250, "x\nauth login xoauth2")).auth == ("LOGIN", "XOAUTH2")


def test_mechanisms_in_our_order_among_those_offered():
    assert mechanisms(("XOAUTH2", "CRAM-MD5", "LOGIN", "PLAIN")) == ["PLAIN", "LOGIN", "CRAM-MD5"]
    assert mechanisms(("LOGIN",)) == ["LOGIN"] and mechanisms(("GSSAPI",)) == []


@pytest.mark.parametrize(("address", "quoted"), [
    ("a@b.test", "<a@b.test>"), ("<a@b.test>", "<a@b.test>"), (" a@b.test ", "<a@b.test>"), ("", "<>"),
    ('"john doe"@b.test', '<"john doe"@b.test>'), ("zhang.san+quote@b.test", "<zhang.san+quote@b.test>"),
])
def test_address_quoting(address, quoted):
    assert quote_address(address) == quoted


@pytest.mark.parametrize("address", ["a@b.test> SIZE=1", "a@b.test\r\nRCPT TO:<x@y>", "a b@c.test", "a@b<c",
                                     'a"@b.test', "a\x00@b.test"])
def test_an_address_cannot_smuggle_parameters_or_commands(address):
    with pytest.raises(ValueError):
        quote_address(address)


def test_commands():
    assert mail_command("a@b.test") == b"MAIL FROM:<a@b.test>\r\n"
    assert mail_command("") == b"MAIL FROM:<>\r\n"
    assert rcpt_command("c@d.test") == b"RCPT TO:<c@d.test>\r\n"
    assert mail_command("张@b.test", smtputf8=True) == "MAIL FROM:<张@b.test> SMTPUTF8\r\n".encode()
    assert rcpt_command("张@b.test", smtputf8=True) == "RCPT TO:<张@b.test>\r\n".encode()
    with pytest.raises(UnicodeEncodeError):  # without SMTPUTF8 a non-ASCII address cannot go out
        rcpt_command("张@b.test")


@pytest.mark.parametrize(("code", "refused"), [(250, False), (251, False), (252, False), (450, True), (550, True)])
def test_rcpt_replies_by_their_first_digit(code, refused):
    assert rcpt_refused(Reply(code, "x")) is refused


@pytest.mark.parametrize("code", [354, 150, 600])
def test_a_reply_that_is_no_answer_to_rcpt_ends_the_transaction(code):
    with pytest.raises(UnexpectedReply, match=f"{code} unexpected reply to RCPT: x"):
        rcpt_refused(Reply(code, "x"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_auth_plain():
    login = Login("PLAIN", "sales@company.test", "pässword")
    assert login.start() == b"AUTH PLAIN " + b64(b"\0sales@company.test\0p\xc3\xa4ssword").encode() + b"\r\n"
    assert login.answer(Reply(235, "2.7.0 ok")) is None
    with pytest.raises(AuthRefused) as refused:
        Login("PLAIN", "u", "p").answer(Reply(535, "5.7.8 bad"))
    assert refused.value.reply.code == 535


def test_auth_login():
    login = Login("LOGIN", "sales@company.test", "secret")
    assert login.start() == b"AUTH LOGIN " + b64(b"sales@company.test").encode() + b"\r\n"
    assert login.answer(Reply(334, b64(b"Password:"))) == b64(b"secret").encode() + b"\r\n"
    assert login.answer(Reply(235, "ok")) is None
    again = Login("LOGIN", "u", "p")
    again.answer(Reply(334, "UGFzc3dvcmQ6"))
    with pytest.raises(AuthRefused):  # a third prompt is not part of LOGIN
        again.answer(Reply(334, "UGFzc3dvcmQ6"))


def test_auth_cram_md5():
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"  # RFC 2195's example
    login = Login("CRAM-MD5", "tim", "tanstaaftanstaaf")
    assert login.start() == b"AUTH CRAM-MD5\r\n"
    answer = base64.b64decode(login.answer(Reply(334, b64(challenge))).strip())
    assert answer == b"tim " + hmac.new(b"tanstaaftanstaaf", challenge, "md5").hexdigest().encode()
    assert answer == b"tim b913a602c7eda7a495b4e6e7334d3890"
    with pytest.raises(AuthRefused):
        Login("CRAM-MD5", "u", "p").answer(Reply(334, "not base64!"))


def test_unknown_mechanism():
    with pytest.raises(ValueError):
        Login("XOAUTH2", "u", "p")


def test_line_ends_normalised():
    assert normalised(b"a\rb\nc\r\nd") == b"a\r\nb\r\nc\r\nd\r\n"
    assert normalised(b"a\r\r\n\n\r") == b"a\r\n\r\n\r\n\r\n"
    assert normalised(b"") == b"\r\n"
