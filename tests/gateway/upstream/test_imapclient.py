"""The IMAP client's edges that Dovecot does not show on demand, against a scripted server on
port 0: an answer in the middle of a literal, the timeout from the last piece written, a
cancellation mid-literal, data injected after STARTTLS, a wrong tag, BYE; and the untagged
responses that reach the caller.  What Dovecot does show is in tests/integration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from mailwarden.gateway.upstream.imapclient import Dropped, IMAPClient
from mailwarden.gateway.upstream.imapwire import Exists, Expunge, Raw, Status, Vanished
from mailwarden.gateway.upstream.source import Source

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[tuple[IMAPClient, list[bytes]]]:
    """A client connected to a server that greets, then runs ``script``; and what the
    server read once it is done (``got``)."""
    got: list[bytes] = []
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
            await script(reader, writer)
            got.append(await reader.read())  # whatever else comes, to the client's close
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        client = await IMAPClient.connect("127.0.0.1", server.sockets[0].getsockname()[1], tls=None, timeout=0.5)
        try:
            yield client, got
        finally:
            client.abort()
            await asyncio.wait_for(done.wait(), 5)


class Slow(Source):
    """A literal of ``n`` pieces of ``size`` bytes, one every ``pause`` seconds."""

    def __init__(self, n: int, size: int, pause: float) -> None:
        super().__init__(b"x" * (n * size))
        self.n, self.piece, self.pause = n, size, pause

    async def chunks(self) -> AsyncIterator[bytes]:
        for _ in range(self.n):
            await asyncio.sleep(self.pause)
            yield b"x" * self.piece


async def test_untagged_responses_reach_the_caller_and_the_listener():
    async def script(reader, writer):  # type: ignore[no-untyped-def]
        assert await reader.readline() == b"mw1 NOOP\r\n"
        writer.write(b"* 3 EXISTS\r\n* 1 EXPUNGE\r\n* VANISHED 5:6\r\nmw1 OK done\r\n")

    heard: list = []
    async with scripted(script) as (client, _):
        client.on_untagged = heard.append
        reply = await client.command("NOOP")
        assert reply.ok and reply.untagged == (Exists(3), Expunge(1), Vanished(False, ((5, 6),)))
        assert heard == list(reply.untagged) and client.capabilities == {"IMAP4REV1"}


async def test_an_answer_in_the_middle_of_a_literal_drops_the_connection():
    async def script(reader, writer):  # type: ignore[no-untyped-def]
        await reader.readline()
        writer.write(b"+ go\r\n")
        await reader.readexactly(1000)
        writer.write(b"mw1 NO [OVERQUOTA] full\r\n")

    async with scripted(script) as (client, got):
        with pytest.raises(Dropped, match="middle of a literal: NO \\[OVERQUOTA\\] full"):
            await client.command("APPEND", "Sent", Raw("()"), Slow(20, 1000, 0.01))
        assert client.closed
    assert len(got[0]) < 19 * 1000  # the rest of the literal was not sent


async def test_the_timeout_runs_from_the_last_piece_written():
    async def script(reader, writer):  # type: ignore[no-untyped-def]
        await reader.readline()
        writer.write(b"+ go\r\n")
        await reader.readexactly(8 * 100 + 2)
        writer.write(b"mw1 OK stored\r\n")
        assert await reader.readline() == b"mw2 NOOP\r\n"  # then falls silent

    async with scripted(script) as (client, _):
        # 8 pieces 0.2 s apart: 1.6 s in all, more than the 0.5 s timeout, never 0.5 s without a byte
        assert (await client.command("APPEND", "Sent", Raw("()"), Slow(8, 100, 0.2))).ok
        with pytest.raises(TimeoutError, match="silent for 0.5s"):
            await client.command("NOOP")
        assert client.closed


async def test_cancelled_in_the_middle_of_a_literal_closes_the_connection():
    async def script(reader, writer):  # type: ignore[no-untyped-def]
        await reader.readline()
        writer.write(b"+ go\r\n")

    async with scripted(script) as (client, got):
        task = asyncio.create_task(client.command("APPEND", "Sent", Raw("()"), Slow(50, 100, 0.02)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.closed
    assert 0 < len(got[0]) < 50 * 100


async def test_a_refusal_before_the_literal_sends_none_of_it():
    async def script(reader, writer):  # type: ignore[no-untyped-def]
        assert await reader.readline() == b"mw1 APPEND Sent () {5000}\r\n"
        writer.write(b"mw1 NO [TRYCREATE] no such folder\r\n")
        assert await reader.readline() == b"mw2 NOOP\r\n"  # the next command, not message bytes
        writer.write(b"mw2 OK\r\n")

    async with scripted(script) as (client, _):
        reply = await client.command("APPEND", "Sent", Raw("()"), Slow(5, 1000, 0))
        assert reply.status == Status("mw1", "NO", reply.status.code, "no such folder") and not client.closed
        assert (await client.command("NOOP")).ok


async def test_data_sent_with_the_starttls_answer_is_refused():
    """Bytes before the handshake could pass for answers over TLS (CVE-2011-0411 style)."""
    async def script(reader, writer):  # type: ignore[no-untyped-def]
        await reader.readline()
        writer.write(b"mw1 OK begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n")

    async with scripted(script) as (client, _):
        with pytest.raises(Dropped, match="after its STARTTLS answer"):
            await client.starttls(None, "localhost")  # type: ignore[arg-type]  # never reached
        assert client.closed


@pytest.mark.parametrize(("answer", "error"), [
    (b"mw7 OK not yours\r\n", "answered 'mw7', not 'mw1'"),
    (b"* BYE shutting down\r\n", "closed the connection \\(BYE shutting down\\)"),
    (b"mw1 OK [x\r\n", "unclosed response code"),
    (b"+ more?\r\n", "asked for more after NOOP"),
])
async def test_out_of_step_answers_drop_the_connection(answer, error):
    async def script(reader, writer):  # type: ignore[no-untyped-def]
        await reader.readline()
        writer.write(answer)
        if b"BYE" in answer:
            writer.close()

    async with scripted(script) as (client, _):
        with pytest.raises(Dropped, match=error):
            await client.command("NOOP")
        assert client.closed
