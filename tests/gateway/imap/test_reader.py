"""CommandReader: framing of lines and literals, the limits, and the same events however the
bytes are cut."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwarden.gateway.imap.commands import Append, Bad, Continue, Line, Login, Simple
from mailwarden.gateway.imap.reader import CommandReader


def events(reader: CommandReader) -> list:
    out = []
    while (event := reader.next_event()) is not None:
        out.append(event)
    return out


def fed(data: bytes, how: str, **limits: int) -> list:
    """The events of *data* fed whole, one byte at a time, or in two halves."""
    reader = CommandReader(**limits)
    if how == "whole":
        reader.feed(data)
        return events(reader)
    if how == "bytes":
        out = []
        for i in range(len(data)):
            reader.feed(data[i:i + 1])
            out += events(reader)
        return out
    half = len(data) // 2
    reader.feed(data[:half])
    out = events(reader)
    reader.feed(data[half:])
    return out + events(reader)


HOW = ["whole", "bytes", "halves"]


@pytest.mark.parametrize("how", HOW)
def test_a_command_and_the_next_one_trailing_in_the_same_chunk(how):
    assert fed(b"a1 NOOP\r\na2 CAPABILITY\r\na3 LOG", how) == [Simple("a1", "NOOP"), Simple("a2", "CAPABILITY")]


@pytest.mark.parametrize("how", HOW)
def test_synchronising_literal_asks_for_continuation(how):
    data = b"a1 LOGIN {4}\r\nuser {3}\r\npwd\r\na2 NOOP\r\n"
    assert fed(data, how) == [Continue(4, tag="a1"), Continue(3, tag="a1"),
                              Login("a1", "LOGIN", user=b"user", password=b"pwd"), Simple("a2", "NOOP")]


@pytest.mark.parametrize("how", HOW)
def test_literal_plus_and_literal8_ask_nothing(how):
    data = b"a1 APPEND INBOX {5+}\r\nhe\r\nl\r\na2 APPEND Sent ~{3+}\r\n\x00\x01\x02\r\n"
    assert fed(data, how) == [Append("a1", "APPEND", mailbox=b"INBOX", message=b"he\r\nl"),
                              Append("a2", "APPEND", mailbox=b"Sent", message=b"\x00\x01\x02", binary=True)]


@pytest.mark.parametrize("how", HOW)
def test_empty_lines_between_commands_pass_and_bare_lf_ends_a_line(how):
    assert fed(b"\r\n\r\na1 NOOP\n\na2 NOOP\r\n", how) == [Simple("a1", "NOOP"), Simple("a2", "NOOP")]


@pytest.mark.parametrize("how", HOW)
def test_a_bad_command_is_skipped_with_its_literals(how):
    data = b"a1 FROB {3}\r\nabc {2+}\r\nxy\r\na2 NOOP\r\n"
    assert fed(data, how) == [Continue(3, tag="a1"), Bad("a1", "unknown command FROB"), Simple("a2", "NOOP")]


@pytest.mark.parametrize("how", HOW)
def test_too_large_synchronising_literal_is_refused_and_the_reader_stays_in_sync(how):
    data = b"a1 APPEND INBOX {101}\r\na2 NOOP\r\n"
    got = fed(data, how, max_literal=100)
    assert got == [Continue(101, refused="literal of 101 bytes is larger than the limit of 100", tag="a1"),
                   Simple("a2", "NOOP")]


@pytest.mark.parametrize("how", HOW)
def test_too_large_literal_plus_is_fatal(how):
    data = b"a1 APPEND INBOX {101+}\r\n" + b"a2 NOOP\r\n" * 20
    assert fed(data, how, max_literal=100) == [
        Bad("a1", "literal of 101 bytes is larger than the limit of 100", fatal=True)]


@pytest.mark.parametrize("how", HOW)
def test_literals_past_the_command_limit_are_refused(how):
    data = b"a1 LOGIN {60}\r\n" + b"u" * 60 + b" {60}\r\na2 NOOP\r\n"
    got = fed(data, how, max_command=100)
    assert got[0] == Continue(60, tag="a1")
    assert got[1] == Continue(60, refused="command of 142 bytes with its literals is larger than the limit of 100",
                              tag="a1")
    assert got[2:] == [Simple("a2", "NOOP")]


@pytest.mark.parametrize("how", HOW)
def test_line_past_the_limit_is_fatal_without_waiting_for_its_end(how):
    got = fed(b"a1 SEARCH " + b"1," * 100, how, max_line=50)
    assert got == [Bad("a1", "line too long", fatal=True)]


def test_line_exactly_at_the_limit_is_read():
    line = b"a1 FETCH " + b"1," * 20 + b"1 FLAGS"
    assert fed(line + b"\r\n", "bytes", max_line=len(line))[0].name == "FETCH"
    assert fed(line + b"\r\n", "bytes", max_line=len(line) - 1)[0].fatal


def test_nothing_is_read_after_a_fatal_error():
    reader = CommandReader(max_line=10)
    reader.feed(b"a1 NOOP NOOP NOOP\r\na2 NOOP\r\n")
    assert events(reader) == [Bad("a1", "line too long", fatal=True)]
    reader.feed(b"a3 NOOP\r\n")
    assert events(reader) == [] and reader.closed


@pytest.mark.parametrize("how", HOW)
def test_line_mode_gives_one_raw_line(how):
    reader = CommandReader()
    reader.feed(b"a1 IDLE\r\n")
    assert events(reader) == [Simple("a1", "IDLE")]
    reader.line_mode()
    reader.feed(b"DONE\r\na2 NOOP\r\n")
    assert events(reader) == [Line(b"DONE"), Simple("a2", "NOOP")]


def test_utf8_quoted_strings_only_after_enable():
    data = 'a1 CREATE "报价"\r\n'.encode()
    reader = CommandReader()
    reader.feed(data)
    assert events(reader) == [Bad("a1", "CREATE: 8-bit characters in a quoted string (send a literal)")]
    reader.utf8 = True
    reader.feed(data)
    assert events(reader)[0].mailbox == "报价".encode()


def test_a_large_literal_in_small_chunks_is_fast():
    size = 50 * 2**20
    reader = CommandReader()
    reader.feed(b"a1 APPEND INBOX {%d}\r\n" % size)
    assert events(reader) == [Continue(size, tag="a1")]
    chunk = b"x" * 65536
    start = time.perf_counter()
    for _ in range(size // len(chunk)):
        reader.feed(chunk)
        assert reader.next_event() is None
    reader.feed(b"\r\n")
    (event,) = events(reader)
    assert len(event.message) == size
    assert time.perf_counter() - start < 5


def test_a_long_line_in_small_chunks_is_not_scanned_again():
    reader = CommandReader(max_line=2**22)
    line = b"a1 FETCH " + b"1," * 2**20 + b"1 FLAGS\r\n"
    start = time.perf_counter()
    for i in range(0, len(line), 64):
        reader.feed(line[i:i + 64])
        reader.next_event()
    assert time.perf_counter() - start < 5


STREAM = (b"a1 LOGIN {4}\r\nuser {2+}\r\npw\r\n\r\na2 SELECT INBOX (CONDSTORE)\r\n"
          b"a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)]<0.512>) (CHANGEDSINCE 7 VANISHED)\r\n"
          b"a4 FROB {3}\r\nabc\r\na5 APPEND Sent (\\Seen) ~{5}\r\nhe\x00lo\r\n"
          b"a6 SEARCH CHARSET UTF-8 OR SUBJECT {6+}\r\n\xe6\x8a\xa5\xe4\xbb\xb7 NOT 1:3\r\na7 IDLE\r\n")


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_events_do_not_depend_on_where_the_bytes_are_cut(cuts):
    whole = fed(STREAM, "whole")
    reader = CommandReader()
    got = []
    points = [0, *sorted(cuts), len(STREAM)]
    for start, end in zip(points, points[1:]):
        reader.feed(STREAM[start:end])
        got += events(reader)
    assert got == whole
    assert [type(e).__name__ for e in whole] == ["Continue", "Login", "Select", "Fetch", "Continue", "Bad",
                                                 "Continue", "Append", "Search", "Simple"]


@pytest.mark.parametrize(("data", "bad"), [
    (b"+x NOOP\r\n", Bad(None, "missing or invalid tag")),
    (b"a(1 NOOP\r\n", Bad(None, "missing or invalid tag")),
    (b"a1 LOGIN {3}\r\nabc\r\n", Bad("a1", "LOGIN: missing arguments")),
    (b"a1 LOGIN {3}\r\nabc {1}x\r\n", Bad("a1", "LOGIN: a literal's header must end the line")),
])
def test_bad_commands_keep_their_tag(data, bad):
    assert [e for e in fed(data, "whole") if isinstance(e, Bad)] == [bad]
