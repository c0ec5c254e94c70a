"""Mailbox names: modified UTF-7, the canonical form, LIST patterns, names on the wire; and
the response helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwarden.gateway.imap.names import canonical, decode_mutf7, encode_mutf7, list_matcher, wire_name
from mailwarden.gateway.imap.respond import astring, flag_list, nstring, quoted, sequence_set


@pytest.mark.parametrize(("text", "wire"), [
    ("INBOX", b"INBOX"),
    ("R&D", b"R&-D"),
    ("Entwürfe", b"Entw&APw-rfe"),
    ("报价", b"&YqVO9w-"),
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("😀", b"&2D3eAA-"),
    ("", b""),
])
def test_mutf7_both_ways(text, wire):
    assert encode_mutf7(text) == wire
    assert decode_mutf7(wire) == text


@pytest.mark.parametrize(("wire", "reason"), [
    (b"a&b", '"&" at 1 is not closed'),
    (b"&YqVO9w", "not closed"),
    (b"&AGE-", "printable ASCII"),  # "a" encoded
    (b"&ACY-", "printable ASCII"),  # "&" encoded instead of "&-"
    (b"&YqU-&Tvc-", "side by side"),
    (b"&YqVO9x-", "zero bits"),
    (b"&YqVO9wA-", "a character too many"),
    (b"&2D0-", "lone surrogate"),
    (b"&Yq/O9w-", "not modified base64"),
    (b"caf\xc3\xa9", "byte 0xc3"),
    (b"tab\there", "byte 0x09"),
])
def test_mutf7_refuses_what_is_not_the_one_encoding(wire, reason):
    with pytest.raises(ValueError, match=reason):
        decode_mutf7(wire)


@given(st.text())
def test_mutf7_round_trips_any_text(text):
    assert decode_mutf7(encode_mutf7(text)) == text


@pytest.mark.parametrize(("raw", "utf8", "name"), [
    (b"inbox", False, "INBOX"),
    (b"InBoX/Sub", False, "INBOX/Sub"),
    (b"INBOXES", False, "INBOXES"),
    (b"Sent/", False, "Sent"),
    (b"Entw&APw-rfe", False, "Entwürfe"),
    ("Entwu\u0308rfe".encode(), True, "Entwürfe"),  # NFD from a Mac is the same mailbox
    ("R&D".encode(), True, "R&D"),  # with UTF8=ACCEPT "&" is itself
    ("报价/2026".encode(), True, "报价/2026"),
])
def test_canonical_names(raw, utf8, name):
    assert canonical(raw, utf8=utf8) == name


@pytest.mark.parametrize(("raw", "utf8", "reason"), [
    (b"", False, "empty"),
    (b"/Sent", False, "starts with the delimiter"),
    (b"a//b", False, "empty level"),
    (b"a//", False, "empty level"),
    (b"a\x00b", True, "control character U\\+0000"),
    (b"a\rb", True, "control character U\\+000D"),
    ("a\u0085b".encode(), True, "control character U\\+0085"),
    (b"\xff", True, "not UTF-8"),
    (b"a&b", False, "not closed"),
])
def test_canonical_refuses(raw, utf8, reason):
    with pytest.raises(ValueError, match=reason):
        canonical(raw, utf8=utf8)


def test_canonical_with_another_delimiter():
    assert canonical(b"inbox.Sub.", delimiter=".") == "INBOX.Sub"


NAMES = ["INBOX", "INBOX/Quotes", "INBOX/Quotes/2026", "Sent", "Sent/Old", "Inbound", "报价"]


@pytest.mark.parametrize(("reference", "pattern", "matched"), [
    ("", "*", NAMES),
    ("", "%", ["INBOX", "Sent", "Inbound", "报价"]),
    ("", "inbox", ["INBOX"]),
    ("", "Inbox/%", ["INBOX/Quotes"]),
    ("", "In%", ["INBOX", "Inbound"]),
    ("", "in%", ["INBOX"]),
    ("Sent/", "%", ["Sent/Old"]),
    ("Sent/", "/%", ["Sent/Old"]),
    ("Sent", "*", ["Sent", "Sent/Old"]),
    ("", "INBOX/*", ["INBOX/Quotes", "INBOX/Quotes/2026"]),
    ("", "报*", ["报价"]),
    ("", "", []),
    ("", "a.b", []),  # regex characters are themselves
])
def test_list_matcher(reference, pattern, matched):
    match = list_matcher(reference, pattern)
    assert [n for n in NAMES if match(n)] == matched


def test_wire_names():
    assert wire_name("报价") == b'"&YqVO9w-"'
    assert wire_name("报价", utf8=True) == '"报价"'.encode()
    assert wire_name('say "hi"') == b'"say \\"hi\\""'
    assert wire_name("R&D") == b'"R&-D"'


@pytest.mark.parametrize(("value", "wire"), [
    (b"", b'""'),
    ("plain", b'"plain"'),
    (b'a"b\\c', b'"a\\"b\\\\c"'),
    (b"two\r\nlines", b"{10}\r\ntwo\r\nlines"),
    (b"nul\x00", b"{4}\r\nnul\x00"),
    ("报".encode(), b"{3}\r\n" + "报".encode()),
])
def test_quoted(value, wire):
    assert quoted(value) == wire


def test_quoted_utf8_only_when_accepted_and_valid():
    assert quoted("报", utf8=True) == '"报"'.encode()
    assert quoted(b"\xff", utf8=True) == b"{1}\r\n\xff"


def test_astring_nstring_flags():
    assert astring(b"INBOX") == b"INBOX"
    assert astring(b"a]b") == b"a]b"
    assert astring(b"NIL") == b'"NIL"'
    assert astring(b"two words") == b'"two words"'
    assert astring(b"") == b'""'
    assert nstring(None) == b"NIL"
    assert nstring(b"x") == b'"x"'
    assert flag_list(["\\Seen", "$Forwarded"]) == b"(\\Seen $Forwarded)"
    assert flag_list([]) == b"()"


@pytest.mark.parametrize(("numbers", "text"), [
    ([], ""),
    ([5], "5"),
    ([3, 1, 2, 7], "1:3,7"),
    ([1, 1, 2, 4, 5, 6, 9], "1:2,4:6,9"),
])
def test_sequence_set(numbers, text):
    assert sequence_set(numbers) == text
