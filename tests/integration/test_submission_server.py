"""The gateway's own SMTP submission server on the wire: capabilities, pipelining through TLS,
STARTTLS injection, cutting a disabled user, the idle timeout and shutdown."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import ssl

import pytest
from mailwarden.gateway.submission import smtp as smtp_server
from mailwarden.store.directory import set_enabled
from sqlmodel import Session

from tests.integration.conftest import PASSWORDS, message, token

pytestmark = pytest.mark.integration


class Raw:
    """A bare SMTP client: bytes out, reply lines in."""

    def __init__(self, port: int, tls: ssl.SSLContext, *, implicit: bool = False) -> None:
        self.sock: socket.socket = socket.create_connection(("localhost", port), timeout=30)
        self.tls = tls
        if implicit:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> str:
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return "<EOF>"
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8").rstrip("\r")

    def replies(self, n: int) -> list[str]:
        """The next ``n`` replies, each as its last line."""
        out: list[str] = []
        while len(out) < n:
            line = self.line()
            if line == "<EOF>" or line[3:4] != "-":
                out.append(line)
        return out

    def starttls(self) -> None:
        self.sock = self.tls.wrap_socket(self.sock, server_hostname="localhost")

    def close(self) -> None:
        self.sock.close()


def plain(login: str) -> bytes:
    return b"AUTH PLAIN " + base64.b64encode(f"\0{login}\0{PASSWORDS[login]}".encode()) + b"\r\n"


async def test_capabilities_on_both_ports(gateway):
    size = gateway.cfg.outbound.max_message_size

    def go() -> tuple[bytes, bytes, bytes]:
        with smtplib.SMTP("localhost", gateway.smtp_port, timeout=30) as c:
            c.ehlo()
            before = c.ehlo_resp
            c.starttls(context=gateway.tls())
            c.ehlo()
            after = c.ehlo_resp
        with smtplib.SMTP_SSL("localhost", gateway.smtps_port, context=gateway.tls(), timeout=30) as c:
            c.ehlo()
            implicit = c.ehlo_resp
        return before, after, implicit

    before, after, implicit = await asyncio.to_thread(go)
    assert before == f"localhost\nSIZE {size}\n8BITMIME\nSMTPUTF8\nSTARTTLS\nHELP".encode()
    assert after == implicit == f"localhost\nSIZE {size}\n8BITMIME\nSMTPUTF8\nAUTH LOGIN PLAIN\nHELP".encode()


async def test_a_pipelined_session_over_implicit_tls_delivers(gateway):
    t = token()

    def go() -> list[str]:
        c = Raw(gateway.smtps_port, gateway.tls(), implicit=True)
        try:
            c.replies(1)
            c.send(b"EHLO me\r\n" + plain("zhang") + b"MAIL FROM:<zhang@company.test>\r\n"
                   b"RCPT TO:<max@buyer.test>\r\nDATA\r\n")
            got = c.replies(5)
            c.send(message(f"Pipelined {t}") + b"\r\n.\r\nRSET\r\nQUIT\r\n")
            return got + c.replies(3) + [c.line()]
        finally:
            c.close()

    got = await asyncio.to_thread(go)
    assert got[:5] == ["250 HELP", "235 2.7.0 Authentication successful", "250 2.1.0 OK", "250 2.1.5 OK",
                       "354 End data with <CR><LF>.<CR><LF>"]
    assert got[5].startswith("250 2.0.0") and got[6:] == ["250 OK", "221 Bye", "<EOF>"]
    await asyncio.to_thread(gateway.upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())


async def test_commands_sent_in_the_clear_behind_starttls_are_never_run(gateway):
    """RFC 3207 5: a man in the middle who appends commands to STARTTLS must not get them run
    as if the client had sent them under TLS."""

    def go() -> list[str]:
        c = Raw(gateway.smtp_port, gateway.tls())
        try:
            c.replies(1)
            c.send(b"EHLO me\r\n")
            c.replies(1)
            c.send(b"STARTTLS\r\nEHLO evil\r\n" + plain("zhang"))
            ready = c.replies(1)
            c.starttls()
            c.send(b"MAIL FROM:<a@b.test>\r\nEHLO me\r\n")
            return ready + c.replies(2)
        finally:
            c.close()

    assert await asyncio.to_thread(go) == ["220 Ready to start TLS", "503 Error: send HELO first", "250 HELP"]


async def test_a_disabled_users_live_connection_hears_421_and_is_closed(gateway):
    def login() -> Raw:
        c = Raw(gateway.smtps_port, gateway.tls(), implicit=True)
        c.replies(1)
        c.send(b"EHLO me\r\n" + plain("li"))
        assert c.replies(2)[1].startswith("235")
        return c

    c = await asyncio.to_thread(login)
    try:
        with Session(gateway.store.engine) as s:
            set_enabled(session=s, login="li", enabled=False)
            s.commit()
        got = await asyncio.to_thread(lambda: [c.line(), c.line()])
    finally:
        c.close()
        with Session(gateway.store.engine) as s:
            set_enabled(session=s, login="li", enabled=True)
            s.commit()
    assert got == ["421 4.7.0 Your account was disabled or its password changed; closing", "<EOF>"]


async def test_an_idle_connection_is_closed(gateway, monkeypatch):
    monkeypatch.setattr(smtp_server, "IDLE_TIMEOUT", 0.5)

    def go() -> list[str]:
        c = Raw(gateway.smtp_port, gateway.tls())
        try:
            first = c.replies(1)
            c.sock.settimeout(10)
            return first + [c.line()]
        finally:
            c.close()

    got = await asyncio.to_thread(go)
    assert got == ["220 localhost mailwarden ESMTP", "<EOF>"]
    for _ in range(50):
        if not gateway.gw.handler.connections:
            break
        await asyncio.sleep(0.05)
    assert not gateway.gw.handler.connections


async def test_shutdown_closes_open_connections(upstream, tmp_path):
    from tests.integration.conftest import running_gateway

    async with running_gateway(upstream, tmp_path) as gw:
        plain_c = await asyncio.to_thread(Raw, gw.smtp_port, gw.tls())
        tls_c = await asyncio.to_thread(Raw, gw.smtp_port, gw.tls())

        def upgrade() -> None:
            tls_c.replies(1)
            tls_c.send(b"STARTTLS\r\n")
            tls_c.replies(1)
            tls_c.starttls()
            tls_c.send(b"EHLO me\r\n")
            tls_c.replies(1)

        await asyncio.to_thread(upgrade)
        await asyncio.to_thread(plain_c.replies, 1)
        assert len(gw.gw.handler.connections) == 2
        await gw.gw.stop()
        assert not gw.gw.handler.connections
        assert await asyncio.to_thread(plain_c.line) == "<EOF>"
        assert await asyncio.to_thread(tls_c.line) == "<EOF>"
        plain_c.close()
        tls_c.close()
