"""A small recording SMTP sink for the relay client's unit tests: it answers from a script
(4xx/5xx on demand, hang-ups), records what it was sent, and can read DATA slowly."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from mailwarden.gateway.config import Upstream
from mailwarden.gateway.confread import HostPort, Secret
from mailwarden.gateway.upstream.smtp import SMTPConnection
from mailwarden.gateway.upstream.source import Source

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
    greeting: bytes | None = b"220 sink ESMTP"  # None: close at once
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
        if self.greeting is None:
            return
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
