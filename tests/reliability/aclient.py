"""A bare asyncio SMTP client for attacks: many at once on the test's own event loop, each from
the loopback address it is given (127.0.0.0/8 is all local), without smtplib's retries."""

from __future__ import annotations

import asyncio
import base64
import ssl


class AsyncSmtp:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, source: str = "127.0.0.1") -> "AsyncSmtp":
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        return cls(reader, writer)

    async def reply(self) -> str:
        """The next reply, as its last line ("" when the server closed the connection)."""
        while True:
            line = await self.reader.readline()
            if not line:
                return ""
            if line[3:4] != b"-":
                return line.decode("utf-8", "replace").rstrip("\r\n")

    async def command(self, line: bytes) -> str:
        self.writer.write(line + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def starttls(self, tls: ssl.SSLContext) -> None:
        """Greeting, EHLO, STARTTLS, EHLO."""
        assert (await self.reply()).startswith("220")
        assert (await self.command(b"EHLO attacker.example")).startswith("250")
        assert (await self.command(b"STARTTLS")).startswith("220")
        await self.writer.start_tls(tls, server_hostname="localhost")
        assert (await self.command(b"EHLO attacker.example")).startswith("250")

    async def auth_plain(self, login: str, password: str) -> str:
        blob = base64.b64encode(f"\0{login}\0{password}".encode())
        return await self.command(b"AUTH PLAIN " + blob)

    def close(self) -> None:
        self.writer.close()


async def login_attempt(port: int, tls: ssl.SSLContext, login: str, password: str,
                        source: str = "127.0.0.1") -> str:
    """One connection, one AUTH PLAIN: the reply to it."""
    c = await AsyncSmtp.connect(port, source)
    try:
        await c.starttls(tls)
        return await c.auth_plain(login, password)
    finally:
        c.close()
