"""Commands on the wire: each argument an atom, a quoted string or a literal; mailbox names
in modified UTF-7; sets."""

from __future__ import annotations

import pytest
from mailwarden.gateway.upstream.imapwire import (
    ProtocolError, Raw, Streamed, decode_mailbox, encode_mailbox, format_command, parse_set)


@pytest.mark.parametrize(("arg", "wire"), [
    ("Sent", b"Sent"),
    ("INBOX.Sent-2024_a/b", b"INBOX.Sent-2024_a/b"),
    ("Sent Messages", b'"Sent Messages"'),
    ("", b'""'),
    ("NIL", b'"NIL"'),  # an atom NIL would read as no mailbox at all
    ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
    ("a%b*", b'"a%b*"'),  # list wildcards are never sent bare
    ("(x)", b'"(x)"'),
    ("{3}", b'"{3}"'),
    (17, b"17"),
    (Raw("(\\Seen $mw_op_zhang)"), b"(\\Seen $mw_op_zhang)"),
])
def test_arguments_on_one_line(arg, wire):
    assert format_command("mw1", "SELECT", arg) == [b"mw1 SELECT " + wire + b"\r\n"]


def test_what_only_a_literal_can_carry_goes_as_one():
    assert format_command("mw2", "LOGIN", "zhang", "pässwörd") == [
        b"mw2 LOGIN zhang {10}\r\n", "pässwörd".encode() + b"\r\n"]
    assert format_command("mw3", "X", "a\r\nb", b"raw", "c") == [b"mw3 X {4}\r\n", b"a\r\nb {3}\r\n", b"raw c\r\n"]


def test_streamed_literals_are_only_announced():
    assert format_command("mw4", "APPEND", "Sent", Raw("()"), Streamed(5), Raw("(\\Seen)"), Streamed(0)) == [
        b"mw4 APPEND Sent () {5}\r\n", b" (\\Seen) {0}\r\n", b"\r\n"]


@pytest.mark.parametrize("bad", ["x\r\nmw9 DELETE INBOX", "x\ny", "x\0"])
def test_a_raw_argument_cannot_smuggle_a_command(bad):
    with pytest.raises(ValueError):
        format_command("mw1", "STORE", Raw(bad))


@pytest.mark.parametrize(("name", "wire"), [
    ("已发送", "&XfJT0ZAB-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 5.1.3
    ("R&D 草稿", "R&-D &g0l6Pw-"),
])
def test_mailbox_names_beyond_ascii_in_modified_utf7(name, wire):
    assert encode_mailbox(name) == wire
    assert decode_mailbox(wire) == name


def test_ascii_names_are_sent_as_configured():
    assert encode_mailbox("Sent Messages") == "Sent Messages"
    assert encode_mailbox("&XfJT0ZAB-") == "&XfJT0ZAB-"  # already modified UTF-7 in the configuration
    assert decode_mailbox("a&-b") == "a&b"
    with pytest.raises(ProtocolError):
        decode_mailbox("&2D0-")  # half a surrogate pair


def test_sets():
    assert parse_set("2,10:12,15:13") == ((2, 2), (10, 12), (13, 15))
    assert parse_set(7) == ((7, 7),)
    with pytest.raises(ProtocolError):
        parse_set("1:*")
