"""DATA body reading, fed whole, one byte at a time, and with trailing bytes (h11-style)."""

import pytest
from mailwarden.gateway.submission.data import DataReader

WIRE = b"Subject: x\r\n\r\nline one\r\n..leading dot\r\n.\r\n"
BODY = b"Subject: x\r\n\r\nline one\r\n.leading dot\r\n"


def read(wire: bytes, step: int | None = None, **kw) -> DataReader:
    r = DataReader(size_limit=kw.pop("size_limit", 10_000), **kw)
    chunks = [wire] if step is None else [wire[i:i + step] for i in range(0, len(wire), step)]
    for c in chunks:
        if r.feed(c):
            pass
    return r


@pytest.mark.parametrize("step", [None, 1, 2, 3, 5, 7])
def test_whole_and_in_pieces(step):
    r = read(WIRE, step)
    assert r.done and r.problem is None and r.message() == BODY and r.leftover == b""


def test_terminator_split_at_every_position():
    for cut in range(1, len(WIRE)):
        r = DataReader(size_limit=None)
        r.feed(WIRE[:cut])
        r.feed(WIRE[cut:])
        assert r.done and r.message() == BODY, cut


def test_trailing_bytes_are_kept_for_the_next_command():
    r = read(WIRE + b"QUIT\r\n")
    assert r.message() == BODY and r.leftover == b"QUIT\r\n"
    r = read(WIRE + b"QUIT\r\n", step=1)
    assert r.message() == BODY and r.leftover == b"QUIT\r\n"


def test_empty_message_and_lone_dot_start():
    assert read(b".\r\n").message() == b""
    assert read(b"..x\r\n.\r\n").message() == b".x\r\n"


def test_not_done_without_terminator():
    r = read(b"Subject: x\r\n\r\nbody\r\n")
    assert not r.done


def test_size_limit_keeps_reading_to_the_end():
    r = read(b"x" * 50 + b"\r\n" + b"y" * 50 + b"\r\n.\r\nNOOP\r\n", step=7, size_limit=60)
    assert r.done and r.problem == "too-big" and r.leftover == b"NOOP\r\n"


@pytest.mark.parametrize("step", [None, 1, 64])
def test_line_limit(step):
    ok = b"a" * 999 + b"\r\n.\r\n"
    assert read(ok, step).problem is None
    long = b"a" * 1000 + b"\r\n.\r\n"
    assert read(long, step).problem == "line-too-long"
    huge = b"short\r\n" + b"b" * 2_000_000 + b"\r\n.\r\n"
    assert read(huge, 65536, size_limit=None).problem == "line-too-long"


def test_relay_stuffing_and_smuggling_guard():
    from mailwarden.gateway.upstream.smtp import stuffed

    assert stuffed(b"a\r\n.b\r\n") == (b"a\r\n..b\r\n", b".\r\n")
    assert stuffed(b".x") == (b"..x", b"\r\n.\r\n")
    clean = b"Subject: s\r\n\r\nbody\r\n"
    assert stuffed(clean)[0] is clean  # the common case costs no copy
    # a lone CR before a dot must not let an upstream see an early end of data
    smuggled, _ = stuffed(b"hi\r.\r\nMAIL FROM:<x@y>\r\n")
    assert b"\r.\r\n" not in smuggled and b"\r\n..\r\n" in smuggled


def test_a_large_message_is_held_once_not_copied_at_the_end():
    """message() hands over the buffer the chunks went into: no second copy, even for a moment."""
    import tracemalloc

    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n"
    body = line * (8_000_000 // len(line))
    wire = body + b".\r\n"
    tracemalloc.start()
    try:
        r = DataReader(size_limit=None)
        for i in range(0, len(wire), 65536):
            r.feed(wire[i:i + 65536])
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        msg = r.message()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert msg == body
    assert peak < len(body) * 0.1  # bytes(buffer) would have been a second 8 MB


def test_long_line_scan_says_what_the_regex_says():
    import random
    import re

    from mailwarden.gateway.submission.data import has_run_without_lf

    rng = random.Random(5321)
    for _ in range(4000):
        n = rng.randint(1, 12)
        data = bytes(rng.choice(b"ab\n\r") if rng.random() < 0.9 else 10 for _ in range(rng.randint(0, 80)))
        start = rng.randint(0, len(data))
        assert has_run_without_lf(data, start, n) == bool(re.compile(rb"[^\n]{%d}" % n).search(data, start)), \
            (data, start, n)
