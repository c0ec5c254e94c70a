"""Streaming a spool file to the upstream: the piecewise dot-stuffer against the whole-buffer
one, the spool reader, the bounce's header read, and DATA on the wire (a fake SMTP server)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random

import aiosmtplib
import pytest
from mailwarden.gateway.delivery import notices
from mailwarden.gateway.upstream import smtp as upstream
from mailwarden.gateway.headers import split_headers
from mailwarden.gateway.upstream.smtp import DotStuffer, _data, stuffed
from mailwarden.gateway.upstream import source
from mailwarden.gateway.upstream.source import Source

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


# -- DATA on the wire --------------------------------------------------------------------


class FakeSMTP:
    """Just enough of an SMTP server: records each DATA body as received (stuffed, with its
    terminator), reading slowly so that the client has to wait for its transport."""

    def __init__(self, slow: bool = False) -> None:
        self.bodies: list[bytes] = []
        self.slow = slow

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-fake\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go\r\n")
                await writer.drain()
                buf = bytearray()
                while not buf.endswith(b"\r\n.\r\n"):
                    piece = await reader.read(65536)
                    if not piece:
                        return
                    buf += piece
                    if self.slow:
                        await asyncio.sleep(0.001)
                self.bodies.append(bytes(buf))
                writer.write(b"250 ok\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()


async def run_data(server: FakeSMTP, messages: list[Source]) -> list[int]:
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    buffered: list[int] = []
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await client.connect()
        proto = client.protocol
        write = proto.write

        def watched(data: bytes) -> None:  # how much the transport holds when the next piece comes
            buffered.append(proto.transport.get_write_buffer_size())
            write(data)

        proto.write = watched
        for m in messages:
            await client.mail("a@b.test")
            await client.rcpt("c@d.test")
            await _data(client, m)
        await client.quit()
    finally:
        for m in messages:
            m.close()
        srv.close()
        await srv.wait_closed()
    return buffered


async def test_data_on_the_wire_is_the_whole_buffer_stuffing(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "CHUNK", 7)
    server = FakeSMTP()
    sources, expected = [], []
    for i, data in enumerate(TRICKY):
        path = tmp_path / f"{i}.eml"
        path.write_bytes(data)
        for head in (b"", b"X-Tag: .1\r\n"):
            sources.append(Source(head, path))
            expected.append(whole(head + data))
    await run_data(server, sources)
    assert server.bodies == expected


async def test_large_data_waits_for_the_transport(tmp_path):
    rng = random.Random(1)
    lines = [b"." * rng.randint(0, 2) + bytes(rng.randrange(97, 123) for _ in range(rng.randint(0, 76)))
             + rng.choice([b"\r\n", b"\r\n", b"\n", b"\r"]) for _ in range(4000)]
    data = b"Subject: big\r\n\r\n" + b"".join(lines) * 40  # about 6 MB, lone CRs and LFs, leading dots
    path = tmp_path / "big.eml"
    path.write_bytes(data)
    server = FakeSMTP(slow=True)
    buffered = await run_data(server, [Source(b"X-Tag: 1\r\n", path)])
    assert server.bodies == [whole(b"X-Tag: 1\r\n" + data)]
    # each piece is written only once the transport has drained below its high-water mark
    assert max(buffered) <= 2 * source.CHUNK, max(buffered)


@pytest.mark.parametrize(("code", "refused"), [(250, False), (251, False), (252, False), (450, True), (550, True)])
def test_rcpt_replies_by_their_first_digit(code, refused):
    assert upstream._rcpt_refused(code, "x") is refused


@pytest.mark.parametrize("code", [354, 150, 600])
def test_a_reply_that_is_no_answer_to_rcpt_ends_the_transaction(code):
    with pytest.raises(aiosmtplib.SMTPResponseException):
        upstream._rcpt_refused(code, "x")


class PipeliningSMTP:
    """Offers PIPELINING and answers from a script: MAIL's reply (then, with ``hang_up``, closes),
    one reply per RCPT, then DATA; records what each transaction got."""

    def __init__(self, mail: bytes = b"250 ok", rcpt: tuple[bytes, ...] = (b"250 ok",), hang_up: bool = False) -> None:
        self.mail, self.rcpt, self.hang_up = mail, list(rcpt), hang_up
        self.bodies: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"220 fake\r\n")
        rcpts = 0
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-fake\r\n250 PIPELINING\r\n")
            elif verb == b"MAIL":
                writer.write(self.mail + b"\r\n")
                if self.hang_up:
                    await writer.drain()
                    break
            elif verb == b"RCPT":
                reply = self.rcpt[rcpts]
                rcpts += 1
                writer.write(reply + b"\r\n")
            elif verb == b"DATA":
                if not any(r.startswith(b"2") for r in self.rcpt):
                    writer.write(b"554 no valid recipients\r\n")
                else:
                    writer.write(b"354 go\r\n")
                    await writer.drain()
                    self.bodies.append(await reader.readuntil(b"\r\n.\r\n"))
                    writer.write(b"250 ok\r\n")
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()


async def pipelined(server: PipeliningSMTP, rcpts: list[str]):  # type: ignore[no-untyped-def]
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=srv.sockets[0].getsockname()[1], start_tls=False, timeout=10)
    try:
        await client.connect()
        await client.ehlo()
        assert client.supports_extension("pipelining")
        return await upstream._pipelined(client, "a@b.test", rcpts, Source(b"Subject: x\r\n\r\nhi\r\n"))
    finally:
        client.close()
        srv.close()
        for w in server.writers:
            w.close()
            with contextlib.suppress(OSError):
                await w.wait_closed()
        await srv.wait_closed()


async def test_pipelined_252_takes_the_recipient():
    server = PipeliningSMTP(rcpt=(b"252 cannot verify, will try", b"550 no such user"))
    result = await pipelined(server, ["x@d.test", "y@d.test"])
    assert list(result.refused) == ["y@d.test"] and server.bodies == [b"Subject: x\r\n\r\nhi\r\n.\r\n"]


async def test_pipelined_mail_refused_then_hang_up_is_the_refusal():
    """A server that refuses MAIL and closes: the refusal (5xx: a bounce), not a lost connection (a retry)."""
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
        await pipelined(PipeliningSMTP(mail=b"550 5.7.1 sender not allowed", hang_up=True), ["x@d.test"])
    assert refused.value.code == 550
