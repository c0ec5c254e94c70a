"""The IMAP wire form of strings, envelopes and body structures, and section ranges."""

from __future__ import annotations

import pytest

from mailwarden.gateway.imap.bodystructure import describe
from mailwarden.gateway.imap.sections import locate, partial, section_map
from mailwarden.gateway.imap.wire import nstring, nstring_nolf, render_body, render_bodystructure, \
    render_envelope, string_for_humans

from .corpus import msg


@pytest.mark.parametrize(("value", "wire"), [
    (None, b"NIL"),
    (b"", b'""'),
    (b"NIL", b'"NIL"'),
    (b"plain text", b'"plain text"'),
    (b'say "hi"', b'"say \\"hi\\""'),
    (b"a\\b", b'"a\\\\b"'),
    (b'""\\\\', b'"\\"\\"\\\\\\\\"'),  # four escapes: still quoted
    (b'"""""', b'{5}\r\n"""""'),  # the fifth makes a literal shorter
    (b"caf\xc3\xa9", b"{5}\r\ncaf\xc3\xa9"),
    (b"\xb1\xa8\xbc\xdb", b"{4}\r\n\xb1\xa8\xbc\xdb"),
    (b"two\r\nlines", b"{10}\r\ntwo\r\nlines"),
    (b"lf\nonly", b"{7}\r\nlf\nonly"),
])
def test_nstring_quotes_or_sends_a_literal(value, wire):
    assert nstring(value) == wire


@pytest.mark.parametrize(("form", "value", "wire"), [
    (nstring_nolf, b"Mon,\n 7 Dec 2026", b'"Mon, 7 Dec 2026"'),  # folding: the blank that follows stays
    (nstring_nolf, b"<a@b>\n<c@d>", b'"<a@b> <c@d>"'),  # a line break between words becomes a space
    (nstring_nolf, b"x\r\n", b'"x"'),
    # subjects and display names: blanks collapsed, quoted only when nothing had to change
    (string_for_humans, b"Quote request", b'"Quote request"'),
    (string_for_humans, b"", b'""'),
    (string_for_humans, b"   ", b'""'),
    (string_for_humans, b"two  spaces", b"{10}\r\ntwo spaces"),
    (string_for_humans, b" leading and trailing ", b"{20}\r\nleading and trailing"),
    (string_for_humans, b"folded\n\tsubject", b"{14}\r\nfolded subject"),
    (string_for_humans, b'a "quoted" word', b'{15}\r\na "quoted" word'),
    (string_for_humans, b"back\\slash", b"{10}\r\nback\\slash"),
    (string_for_humans, b"\xe6\x8a\xa5\xe4\xbb\xb7", b"{6}\r\n\xe6\x8a\xa5\xe4\xbb\xb7"),
    (string_for_humans, b"nul\x00here", b"{8}\r\nnul\x80here"),
])
def test_header_text_forms(form, value, wire):
    assert form(value) == wire


def test_envelope_wire_form():
    raw = msg("Date: Mon, 7 Dec 2026 09:00:00 +0800", 'From: "Wang, Li" <wang@buyer.test>',
              "Sender: agent@buyer.test", "To: team: a@x.test, b@x.test;, c@x.test",
              "Subject: =?UTF-8?B?5oql5Lu3?=", "In-Reply-To: <p@x>", "Message-ID: <m@x>", "", "x")
    assert render_envelope(describe(raw)) == (
        b'("Mon, 7 Dec 2026 09:00:00 +0800" "=?UTF-8?B?5oql5Lu3?=" (("Wang, Li" NIL "wang" "buyer.test")) '
        b'((NIL NIL "agent" "buyer.test")) (("Wang, Li" NIL "wang" "buyer.test")) '
        b'((NIL NIL "team" NIL)(NIL NIL "a" "x.test")(NIL NIL "b" "x.test")(NIL NIL NIL NIL)'
        b'(NIL NIL "c" "x.test")) NIL NIL "<p@x>" "<m@x>")')


def test_envelope_of_a_message_without_envelope_fields():
    assert render_envelope(describe(b"\r\nbody")) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_bodystructure_and_body_wire_form():
    raw = msg("MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=b", "", "--b",
              "Content-Type: text/plain; charset=utf-8", "Content-Language: en", "", "hi", "there", "--b",
              "Content-Type: image/png; name=a.png", "Content-ID: <i@x>", "Content-Transfer-Encoding: base64",
              "Content-Disposition: inline; filename=a.png", "", "iVBORw0K", "--b--")
    facts = describe(raw)
    assert render_bodystructure(facts) == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 9 1 NIL NIL ("en") NIL)'
        b'("image" "png" ("name" "a.png") "<i@x>" NIL "base64" 8 NIL ("inline" ("filename" "a.png")) NIL NIL)'
        b' "mixed" ("boundary" "b") NIL NIL NIL)')
    assert render_body(facts) == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 9 1)'
        b'("image" "png" ("name" "a.png") "<i@x>" NIL "base64" 8) "mixed")')
    assert facts.root.children[1].binary_size == 6


def test_multipart_without_parts_is_one_empty_text_part():
    facts = describe(msg("Content-Type: multipart/mixed; boundary=none", "", "no parts at all"))
    assert render_body(facts) == b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")'


SINGLE = msg("Subject: one part", "", "line 1", "line 2")
FORWARD = msg("Content-Type: multipart/mixed; boundary=o", "", "--o", "", "cover", "--o",
              "Content-Type: message/rfc822", "", "Subject: inner", "Content-Type: multipart/alternative; boundary=i",
              "", "--i", "", "plain", "--i", "Content-Type: text/html", "", "<p>html</p>", "--i--", "--o--")


@pytest.mark.parametrize(("raw", "section", "expected"), [
    (SINGLE, "", SINGLE),
    (SINGLE, "header", b"Subject: one part\r\n\r\n"),
    (SINGLE, "TEXT", b"line 1\r\nline 2\r\n"),
    (SINGLE, "1", b"line 1\r\nline 2\r\n"),  # part 1 of a single-part message is its body
    (SINGLE, "1.MIME", b"Subject: one part\r\n\r\n"),
    (SINGLE, "1.1", None),
    (SINGLE, "2", None),
    (SINGLE, "MIME", None),
    (SINGLE, "1.HEADER", None),  # HEADER after a number needs a message/rfc822 part
    (FORWARD, "1", b"cover"),
    (FORWARD, "1.1", b"cover"),  # a leaf's part 1 is the leaf itself
    (FORWARD, "2.HEADER", b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"),
    (FORWARD, "2.1", b"plain"),
    (FORWARD, "2.2", b"<p>html</p>"),
    (FORWARD, "2.2.MIME", b"Content-Type: text/html\r\n\r\n"),
    (FORWARD, "2.3", None),
    (FORWARD, "2.MIME", b"Content-Type: message/rfc822\r\n\r\n"),
    (FORWARD, "x.1", None),
    (FORWARD, "1.TEXT.1", None),
])
def test_locate_follows_section_numbers(raw, section, expected):
    span = locate(describe(raw), section)
    assert (None if span is None else raw[span[0]:span[1]]) == expected


def test_section_map_names_every_part():
    facts = describe(FORWARD)
    assert sorted(section_map(facts)) == sorted([
        "", "HEADER", "TEXT", "1", "1.MIME", "2", "2.MIME", "2.HEADER", "2.TEXT",
        "2.1", "2.1.MIME", "2.2", "2.2.MIME"])


@pytest.mark.parametrize(("offset", "count", "expected"), [
    (0, 4, (10, 14)), (5, None, (15, 20)), (8, 100, (18, 20)), (30, 5, (20, 20)), (0, 0, (10, 10)),
])
def test_partial_clamps_to_the_section(offset, count, expected):
    assert partial((10, 20), offset, count) == expected
