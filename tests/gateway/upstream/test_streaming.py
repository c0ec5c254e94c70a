"""Streaming a spool file to the upstream: the piecewise dot-stuffer against the whole-buffer
one, the spool reader, the bounce's header read, and DATA on the wire (a recording sink)."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable

import pytest
from mailwarden.gateway.delivery import notices
from mailwarden.gateway.headers import split_headers
from mailwarden.gateway.upstream.smtpwire import DotStuffer, stuffed
from mailwarden.gateway.upstream import source
from mailwarden.gateway.upstream.source import Source

from tests.gateway.upstream.sink import Sink, connected

TRICKY = [
    b"",
    b".",
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\r\n",
    b"\n\r",
    b"..",
    b".\r\n",
    b"\r\n.\r\n",
    b"a\r\n.\r\nb",
    b"hi\r.\r\nMAIL FROM:<x@y>\r\n",  # smuggling: a lone CR before the dot
    b"hi\n.\nQUIT\n",
    b"Subject: x\r\n\r\nbody\r\n",
    b"Subject: x\r\n\r\nbody",  # no CRLF at the end
    b"Subject: x\n\nbody\n",  # LF only
    b"a\r\rb\n\nc\r\n\r\n.d\r.e\n.f",
    b".lead\r\n..two\r\n...three\r\n.\r\n\r\n.",
    b"x\r",  # a lone CR last
    b"\r\n\r\n\r\n",
    b"line\r\n" * 5 + b".",
    b"\r.\r.\n.\n\r.",
]


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def streamed(parts: list[bytes]) -> bytes:
    s = DotStuffer()
    return b"".join([s.feed(p) for p in parts] + [s.end()])


def whole(data: bytes) -> bytes:
    body, end = stuffed(data)
    return body + end


@pytest.mark.parametrize("data", TRICKY)
def test_every_single_cut_matches_the_whole_buffer(data):
    assert streamed([data]) == whole(data)
    for cut in range(len(data) + 1):
        assert streamed(pieces(data, [cut])) == whole(data), cut


@pytest.mark.parametrize("data", TRICKY)
def test_one_byte_pieces_and_empty_pieces(data):
    assert streamed([data[i:i + 1] for i in range(len(data))]) == whole(data)
    assert streamed([b"", *[data[i:i + 1] for i in range(len(data))], b"", b""]) == whole(data)


def test_random_messages_random_pieces():
    rng = random.Random(7)
    alphabet = [b"\r", b"\n", b".", b"a", b"\r\n", b"\r\n.", b" "]
    for _ in range(3000):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        cuts = [rng.randint(0, len(data)) for _ in range(rng.randint(0, 6))]
        assert streamed(pieces(data, cuts)) == whole(data), (data, cuts)


def test_smuggled_end_cannot_survive():
    wire = streamed(pieces(b"hi\r.\r\nMAIL FROM:<x@y>\r\n", [2, 3]))
    assert b"\r\n.\r\n" not in wire[:-5] and wire.endswith(b"\r\n.\r\n")


def test_clean_pieces_are_not_copied():
    s = DotStuffer()
    clean = b"Subject: x\r\n\r\nno dots here\r\n"
    assert s.feed(clean) is clean


# -- the spool reader ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 35])
@pytest.mark.parametrize("head", [b"", b"X-Tag: 1\r\n"])
async def test_source_reads_head_then_file_in_pieces(tmp_path, monkeypatch, size, head):
    monkeypatch.setattr(source, "CHUNK", 10)
    body = bytes(random.Random(size).randrange(256) for _ in range(size))
    path = tmp_path / "m.eml"
    path.write_bytes(body)
    src = Source(head, path)
    await src.open()
    assert src.size == len(head) + size
    for _ in range(2):  # a second attempt starts again from the beginning
        got = [p async for p in src.chunks()]
        assert b"".join(got) == head + body
        assert all(len(p) <= 10 + len(head) for p in got)
    src.close()


async def test_source_of_bytes_and_missing_file(tmp_path):
    src = Source(b"abc")
    assert [p async for p in src.chunks()] == [b"abc"] and src.size == 3
    with pytest.raises(FileNotFoundError):
        await Source(b"", tmp_path / "gone.eml").open()


# -- the bounce's header read ----------------------------------------------------------

HEADS = [
    b"Subject: s\r\nFrom: a@b\r\n\r\nbody\r\n",
    b"Subject: s\r\n folded\r\n\r\n" + b"x" * 300_000,
    b"no header here\r\n" + b"y" * 300_000,
    b"Subject: s\r\n" + b"X-Long: " + b"z" * 900 + b"\r\n" * 0 + b"\r\n" + b"X-A: 1\r\n" * 40_000 + b"\r\nbody",
    b"Subject: only headers\r\n",
    b"",
    b"\r\nbody first",
]


@pytest.mark.parametrize("data", HEADS)
@pytest.mark.parametrize("tags", [b"", b"X-Mailwarden-Operator: zhang\r\n"])
def test_head_reads_the_same_header_block_as_the_whole(tmp_path, data, tags):
    path = tmp_path / "m.eml"
    path.write_bytes(data)
    head = notices.read_head(path, tags)
    full = tags + data
    assert full.startswith(head)
    h, w = split_headers(head), split_headers(full)
    assert h.body_offset == w.body_offset and h.fields == w.fields


def test_head_does_not_read_a_large_body(tmp_path):
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: s\r\n\r\n" + b"b" * 5_000_000)
    assert len(notices.read_head(path, b"")) <= notices.HEAD_CHUNK


# -- DATA on the wire ------------------------------------------------------------------------


async def send_all(sink: Sink, messages: list[Source], watch: Callable[[asyncio.StreamWriter], None] | None = None,
                   monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    if watch is not None and monkeypatch is not None:
        write = asyncio.StreamWriter.write

        def watched(self: asyncio.StreamWriter, data: bytes) -> None:
            watch(self)
            write(self, data)

        monkeypatch.setattr(asyncio.StreamWriter, "write", watched)
    async with connected(sink) as conn:
        try:
            for m in messages:
                await conn.send("a@b.test", ["c@d.test"], m)
        finally:
            for m in messages:
                m.close()


@pytest.mark.parametrize("pipelining", [True, False])
async def test_data_on_the_wire_is_the_whole_buffer_stuffing(tmp_path, monkeypatch, pipelining):
    monkeypatch.setattr(source, "CHUNK", 7)
    sources, expected = [], []
    for i, data in enumerate(TRICKY):
        path = tmp_path / f"{i}.eml"
        path.write_bytes(data)
        for head in (b"", b"X-Tag: .1\r\n"):
            sources.append(Source(head, path))
            expected.append(whole(head + data))
    sink = Sink(pipelining=pipelining)
    await send_all(sink, sources)
    assert sink.bodies == expected


async def test_large_data_waits_for_the_transport(tmp_path, monkeypatch):
    rng = random.Random(1)
    lines = [b"." * rng.randint(0, 2) + bytes(rng.randrange(97, 123) for _ in range(rng.randint(0, 76)))
             + rng.choice([b"\r\n", b"\r\n", b"\n", b"\r"]) for _ in range(4000)]
    data = b"Subject: big\r\n\r\n" + b"".join(lines) * 40  # about 6 MB, lone CRs and LFs, leading dots
    path = tmp_path / "big.eml"
    path.write_bytes(data)
    sink = Sink(slow=True)
    buffered: list[int] = []  # how much the transport holds when the next piece comes
    await send_all(sink, [Source(b"X-Tag: 1\r\n", path)], lambda w: buffered.append(w.transport.get_write_buffer_size()),
                   monkeypatch)
    assert sink.bodies == [whole(b"X-Tag: 1\r\n" + data)]
    assert len(buffered) >= len(data) // source.CHUNK
    # each piece is written only once the transport has drained below its high-water mark
    assert max(buffered) <= 2 * source.CHUNK, max(buffered)
