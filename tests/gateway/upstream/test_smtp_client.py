"""The relay's SMTP client against a small recording sink that answers from a script: what it
writes, how each answer is classified (temporary, permanent, a refused recipient), pipelined
and stepwise, DATA streamed with flow control.  Against the real Postfix: tests/integration."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from mailwarden.gateway.config import Upstream
from mailwarden.gateway.confread import HostPort, Secret
from mailwarden.gateway.upstream import source
from mailwarden.gateway.upstream.smtp import SMTPConnection, stuffed
from mailwarden.gateway.upstream.source import PermanentFailure, Source, TemporaryFailure

from tests.gateway.upstream.test_streaming import TRICKY, whole

PASSWORD = "sink-secret"


@dataclass
class Sink:
    """Just enough of an SMTP server, answering from a script; records every command line and
    each DATA body as received (stuffed, with its terminator).

    ``replies`` maps a verb to the reply lines it gets, one list item per time it is sent
    (the last one repeats).  ``hang_up_after`` closes the connection once that verb was
    answered; ``slow`` reads DATA slowly, so that the client has to wait for its transport."""

    pipelining: bool = True
    auth: str = "PLAIN LOGIN"
    greeting: bytes = b"220 sink ESMTP"
    replies: dict[bytes, list[bytes]] = field(default_factory=dict)
    hang_up_after: bytes | None = None
    slow: bool = False
    commands: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    data_started: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def reply(self, verb: bytes, default: bytes) -> bytes:
        script = self.replies.get(verb)
        if not script:
            return default
        return script.pop(0) if len(script) > 1 else script[0]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        if self.slow:  # a small window, so that the kernel cannot take the whole message either
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(self.greeting + b"\r\n")
        accepted, challenged = 0, False
        while line := await reader.readline():
            self.commands.append(line.rstrip(b"\r\n"))
            verb = line[:4].upper()
            if challenged:  # the answer to a 334
                challenged = False
                writer.write(b"235 2.7.0 ok\r\n")
            elif verb == b"EHLO":
                offers = [b"sink", b"8BITMIME", *([b"PIPELINING"] if self.pipelining else []),
                          *([b"AUTH " + self.auth.encode()] if self.auth else [])]
                text = b"".join(b"250-" + o + b"\r\n" for o in offers[:-1]) + b"250 " + offers[-1]
                writer.write(self.reply(verb, text) + b"\r\n")
            elif verb == b"AUTH":
                answer = self.reply(verb, b"235 2.7.0 ok")
                challenged = answer.startswith(b"334")
                writer.write(answer + b"\r\n")
            elif verb == b"MAIL":
                accepted = 0
                writer.write(self.reply(verb, b"250 2.1.0 ok") + b"\r\n")
            elif verb == b"RCPT":
                answer = self.reply(verb, b"250 2.1.5 ok")
                accepted += answer.startswith(b"2")
                writer.write(answer + b"\r\n")
            elif verb == b"DATA":
                start = self.reply(verb, b"354 go" if accepted else b"554 5.5.1 no valid recipients")
                writer.write(start + b"\r\n")
                if start.startswith(b"354"):
                    await writer.drain()
                    self.data_started.set()
                    self.bodies.append(await self._body(reader))
                    writer.write(self.reply(b"DOT", b"250 2.0.0 queued") + b"\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(self.reply(verb, b"250 ok") + b"\r\n")
            await writer.drain()
            if verb == self.hang_up_after:
                return

    async def _body(self, reader: asyncio.StreamReader) -> bytes:
        buf = bytearray()
        while not (buf.endswith(b"\r\n.\r\n") or buf == b".\r\n"):
            piece = await reader.read(65536)
            if not piece:
                raise ConnectionResetError
            buf += piece
            if self.slow:
                await asyncio.sleep(0.001)
        return bytes(buf)


def upstream_at(port: int, tls: str = "none") -> Upstream:
    return Upstream(imap=HostPort("127.0.0.1", 1), imap_tls="none", smtp=HostPort("127.0.0.1", port),
                    smtp_tls=tls, username="sales@company.test", password=Secret(PASSWORD), ca_file=None,
                    tls_verify=True, sent_folder="Sent", inbox_folder="INBOX")


@contextlib.asynccontextmanager
async def connected(sink: Sink) -> AsyncIterator[SMTPConnection]:
    srv = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    conn = SMTPConnection(upstream_at(srv.sockets[0].getsockname()[1]), None)  # type: ignore[arg-type]
    try:
        yield conn
    finally:
        await conn.close()
        srv.close()
        for w in sink.writers:
            w.close()
            with contextlib.suppress(OSError):
                await w.wait_closed()
        await srv.wait_closed()


def msg(text: str = "hi") -> Source:
    return Source(f"Subject: x\r\n\r\n{text}\r\n".encode())


def verbs(sink: Sink) -> list[bytes]:
    return [c.split(b" ", 1)[0].split(b":", 1)[0].upper() for c in sink.commands]


# -- the conversation ------------------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_message_goes_out_and_the_connection_is_reused(pipelining):
    sink = Sink(pipelining=pipelining)
    async with connected(sink) as conn:
        first = await conn.send("sales@company.test", ["a@buyer.test", "b@buyer.test"], msg("one"))
        second = await conn.send("sales@company.test", ["a@buyer.test"], msg("two"))
    assert first.refused == {} and second.refused == {} and conn.connects == 1 and sink.connections == 1
    assert sink.bodies == [b"Subject: x\r\n\r\none\r\n.\r\n", b"Subject: x\r\n\r\ntwo\r\n.\r\n"]
    assert verbs(sink) == [b"EHLO", b"AUTH", b"MAIL", b"RCPT", b"RCPT", b"DATA", b"MAIL", b"RCPT", b"DATA", b"QUIT"]
    assert sink.commands[2:5] == [b"MAIL FROM:<sales@company.test>", b"RCPT TO:<a@buyer.test>", b"RCPT TO:<b@buyer.test>"]


async def test_pipelined_commands_go_in_one_write_stepwise_one_at_a_time(monkeypatch):
    writes: list[bytes] = []
    write = asyncio.StreamWriter.write
    monkeypatch.setattr(asyncio.StreamWriter, "write", lambda self, data: (writes.append(bytes(data)), write(self, data))[1])
    for pipelining in (True, False):
        writes.clear()
        async with connected(Sink(pipelining=pipelining)) as conn:
            await conn.send("s@company.test", ["a@buyer.test", "b@buyer.test"], msg())
        batch = b"MAIL FROM:<s@company.test>\r\nRCPT TO:<a@buyer.test>\r\nRCPT TO:<b@buyer.test>\r\nDATA\r\n"
        assert (batch in writes) is pipelining
        assert (b"RCPT TO:<a@buyer.test>\r\n" in writes) is not pipelining


@pytest.mark.parametrize("pipelining", [True, False])
async def test_refused_recipients_are_reported_252_takes_one(pipelining):
    sink = Sink(pipelining=pipelining, replies={b"RCPT": [b"252 2.1.5 cannot verify, will try", b"550 5.1.1 no such user",
                                                          b"451 4.3.0 try later"]})
    async with connected(sink) as conn:
        result = await conn.send("s@company.test", ["x@d.test", "y@d.test", "z@d.test"], msg())
    assert result.refused == {"y@d.test": (550, "5.1.1 no such user"), "z@d.test": (451, "4.3.0 try later")}
    assert sink.bodies == [b"Subject: x\r\n\r\nhi\r\n.\r\n"]


@pytest.mark.parametrize("pipelining", [True, False])
async def test_every_recipient_refused_sends_nothing_and_resets(pipelining):
    sink = Sink(pipelining=pipelining, replies={b"RCPT": [b"550 5.1.1 no such user"]})
    async with connected(sink) as conn:
        result = await conn.send("s@company.test", ["x@d.test", "y@d.test"], msg())
        assert conn.connected  # in step: kept for the next message
    assert list(result.refused) == ["x@d.test", "y@d.test"] and sink.bodies == []
    assert verbs(sink)[-2:] == [b"RSET", b"QUIT"]


async def test_a_server_that_lets_data_start_without_recipients_gets_an_empty_end():
    sink = Sink(replies={b"RCPT": [b"550 5.1.1 no such user"], b"DATA": [b"354 go"], b"DOT": [b"554 no recipients"]})
    async with connected(sink) as conn:
        result = await conn.send("s@company.test", ["x@d.test"], msg())
    assert list(result.refused) == ["x@d.test"] and sink.bodies == [b".\r\n"]
    assert verbs(sink)[-2:] == [b"RSET", b"QUIT"]


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize(("verb", "code", "failure"), [
    (b"MAIL", 550, PermanentFailure), (b"MAIL", 451, TemporaryFailure),
    (b"DOT", 552, PermanentFailure), (b"DOT", 451, TemporaryFailure),
    (b"DATA", 554, PermanentFailure), (b"DATA", 421, TemporaryFailure),
])
async def test_refusals_are_permanent_or_temporary_by_their_code(pipelining, verb, code, failure):
    sink = Sink(pipelining=pipelining, replies={verb: [f"{code} {code // 100}.0.0 said no".encode()]})
    async with connected(sink) as conn:
        with pytest.raises(failure, match=f"^{code} {code // 100}.0.0 said no$"):
            await conn.send("s@company.test", ["x@d.test"], msg())
        assert not conn.connected


@pytest.mark.parametrize("code", [354, 150, 600])
async def test_a_reply_that_is_no_answer_to_rcpt_ends_the_transaction(code):
    sink = Sink(replies={b"RCPT": [f"{code} what".encode()]})
    async with connected(sink) as conn:
        with pytest.raises(PermanentFailure if code >= 500 else TemporaryFailure, match=f"unexpected reply to RCPT"):
            await conn.send("s@company.test", ["x@d.test"], msg())
        assert not conn.connected


async def test_pipelined_mail_refused_then_hang_up_is_the_refusal():
    """A server that refuses MAIL and closes: the refusal (5xx: a bounce), not a lost connection (a retry)."""
    sink = Sink(replies={b"MAIL": [b"550 5.7.1 sender not allowed"]}, hang_up_after=b"MAIL")
    async with connected(sink) as conn:
        with pytest.raises(PermanentFailure, match="550 5.7.1 sender not allowed"):
            await conn.send("s@company.test", ["x@d.test"], msg())
    assert sink.connections == 1


# -- connections -----------------------------------------------------------------------------


async def test_a_reused_connection_the_server_dropped_while_idle_is_replaced():
    sink = Sink()
    async with connected(sink) as conn:
        await conn.send("s@company.test", ["x@d.test"], msg("one"))
        for w in sink.writers:  # an idle timeout: 421, then the close
            w.write(b"421 4.4.2 idle too long\r\n")
            w.close()
        await sink.closed.wait()
        await asyncio.sleep(0.05)
        result = await conn.send("s@company.test", ["x@d.test"], msg("two"))
    assert result.refused == {} and conn.connects == 2 and len(sink.bodies) == 2


async def test_dropped_mid_transaction_is_tried_once_more_on_a_new_connection():
    sink = Sink(hang_up_after=b"RCPT", pipelining=False)
    async with connected(sink) as conn:
        with pytest.raises(TemporaryFailure, match="^upstream SMTP disconnected: "):
            await conn.send("s@company.test", ["x@d.test"], msg())
    assert sink.connections == 2


async def test_a_busy_greeting_is_temporary():
    async with connected(Sink(greeting=b"554 5.3.2 too busy")) as conn:
        with pytest.raises(TemporaryFailure, match="^upstream SMTP refused the connection: 554 5.3.2 too busy$"):
            await conn.send("s@company.test", ["x@d.test"], msg())


async def test_a_wrong_password_is_temporary_and_tried_with_one_mechanism_only():
    sink = Sink(replies={b"AUTH": [b"535 5.7.8 authentication failed"]})
    async with connected(sink) as conn:
        with pytest.raises(TemporaryFailure, match="^upstream refused the shared account's login: 535 5.7.8"):
            await conn.send("s@company.test", ["x@d.test"], msg())
    assert verbs(sink).count(b"AUTH") == 1 and PASSWORD.encode() not in b"".join(sink.commands)


async def test_a_mechanism_the_server_cannot_use_moves_on_to_the_next():
    sink = Sink(replies={b"AUTH": [b"504 5.5.4 not today", b"334 UGFzc3dvcmQ6"]})
    async with connected(sink) as conn:
        await conn.send("s@company.test", ["x@d.test"], msg())
    auth = [c for c in sink.commands if c.startswith(b"AUTH")]
    assert [a.split()[1] for a in auth] == [b"PLAIN", b"LOGIN"] and len(sink.bodies) == 1


async def test_no_auth_offered_cannot_reach():
    async with connected(Sink(auth="")) as conn:
        with pytest.raises(TemporaryFailure, match="offers no AUTH mechanism"):
            await conn.send("s@company.test", ["x@d.test"], msg())


async def test_starttls_required_but_not_offered():
    sink = Sink()
    srv = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    async with srv:
        conn = SMTPConnection(upstream_at(srv.sockets[0].getsockname()[1], "starttls"), None)  # type: ignore[arg-type]
        with pytest.raises(TemporaryFailure, match="does not offer STARTTLS"):
            await conn.send("s@company.test", ["x@d.test"], msg())


async def test_a_reply_injected_after_starttls_is_refused():
    sink = Sink(replies={b"STAR": [b"220 go ahead\r\n250 injected"],
                         b"EHLO": [b"250-sink\r\n250-STARTTLS\r\n250 AUTH PLAIN"]})
    srv = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    async with srv:
        conn = SMTPConnection(upstream_at(srv.sockets[0].getsockname()[1], "starttls"), None)  # type: ignore[arg-type]
        with pytest.raises(TemporaryFailure, match="broke the protocol: bytes after the answer to STARTTLS"):
            await conn.send("s@company.test", ["x@d.test"], msg())
        await sink.closed.wait()


@pytest.mark.parametrize("reply", [b"hello there", b"250-" + b"x" * 40_000])
async def test_a_server_that_speaks_no_smtp_is_temporary(reply):
    async with connected(Sink(replies={b"MAIL": [reply]})) as conn:
        with pytest.raises(TemporaryFailure, match="broke the protocol"):
            await conn.send("s@company.test", ["x@d.test"], msg())


async def test_nobody_listening_cannot_reach():
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    with pytest.raises(TemporaryFailure, match=f"^cannot reach the upstream SMTP server 127.0.0.1:{port}: "):
        await SMTPConnection(upstream_at(port), None).send("s@company.test", ["x@d.test"], msg())  # type: ignore[arg-type]


async def test_an_address_that_cannot_go_out_fails_before_anything_is_sent():
    sink = Sink()
    async with connected(sink) as conn:
        with pytest.raises(ValueError):
            await conn.send("s@company.test", ["x@d.test> NOTIFY=NEVER"], msg())
        await conn.send("s@company.test", ["x@d.test"], msg())  # still in step
    assert b"NOTIFY" not in b"".join(sink.commands) and conn.connects == 1


async def test_a_non_ascii_address_goes_out_with_smtputf8_when_offered():
    sink = Sink(replies={b"EHLO": [b"250-sink\r\n250-SMTPUTF8\r\n250 AUTH PLAIN"]})
    async with connected(sink) as conn:
        await conn.send("s@company.test", ["张@d.test"], msg())
    assert "MAIL FROM:<s@company.test> SMTPUTF8".encode() in sink.commands
    assert "RCPT TO:<张@d.test>".encode() in sink.commands


async def test_cancelled_mid_data_drops_the_connection_without_ending_the_message(tmp_path):
    path = tmp_path / "big.eml"
    path.write_bytes(b"Subject: big\r\n\r\n" + b"x" * 76 + b"\r\n" * 200_000)
    sink = Sink(slow=True)
    async with connected(sink) as conn:
        src = Source(b"", path)
        task = asyncio.create_task(conn.send("s@company.test", ["x@d.test"], src))
        await sink.data_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        src.close()
        assert not conn.connected
        await asyncio.wait_for(sink.closed.wait(), 10)
    assert sink.bodies == [] and b"QUIT" not in verbs(sink)


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


def test_stuffed_is_still_where_the_relay_finds_it():
    assert stuffed(b".x") == (b"..x", b"\r\n.\r\n")
