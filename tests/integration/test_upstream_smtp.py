"""The relay's SMTP client against the real Postfix: STARTTLS and implicit TLS, pipelined and
stepwise, refused recipients and senders, a wrong password, and a 50 MB message streamed from
its spool file with flow control; the bytes stored are the bytes of the file."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator

import pytest
from mailwarden.gateway.confread import HostPort, Secret
from mailwarden.gateway.tls import ensure_self_signed, server_context
from mailwarden.gateway.upstream import smtpwire, source
from mailwarden.gateway.upstream.smtp import SMTPConnection, upstream_tls
from mailwarden.gateway.upstream.source import PermanentFailure, Source, TemporaryFailure

from .conftest import SHARED, gateway_config, token
from .test_streaming_upstream import big_message

pytestmark = pytest.mark.integration


@pytest.fixture
def conf(upstream, tmp_path):  # type: ignore[no-untyped-def]
    cfg = gateway_config(tmp_path, upstream)
    assert cfg.upstream is not None and cfg.upstream.smtp_tls == "starttls"
    return cfg.upstream


@pytest.fixture
def writes(monkeypatch) -> list[tuple[bytes, int]]:  # type: ignore[no-untyped-def]
    """Every write of the client from now on: the bytes and what its transport held before."""
    seen: list[tuple[bytes, int]] = []
    write = asyncio.StreamWriter.write

    def watched(self: asyncio.StreamWriter, data: bytes) -> None:
        seen.append((bytes(data[:200]), self.transport.get_write_buffer_size()))
        write(self, data)

    monkeypatch.setattr(asyncio.StreamWriter, "write", watched)
    return seen


def no_pipelining(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """As if Postfix did not offer PIPELINING (Postfix always does)."""
    monkeypatch.setattr(smtpwire.Extensions, "pipelining", property(lambda self: False))


async def send(conf, mail_from: str, rcpts: list[str], src: Source):  # type: ignore[no-untyped-def]
    smtp = SMTPConnection(conf, upstream_tls(conf))
    try:
        return await smtp.send(mail_from, rcpts, src)
    finally:
        src.close()
        await smtp.close()


def delete(upstream, address: str, t: str) -> None:  # type: ignore[no-untyped-def]
    """Expunge this test's messages from ``address``'s INBOX (a large one would slow every later poll)."""
    with upstream.imap(address) as client:
        client.select("INBOX")
        typ, data = client.search(None, "BODY", f'"{t}"')
        if typ == "OK" and data[0]:
            client.store(b",".join(data[0].split()).decode(), "+FLAGS", "\\Deleted")
            client.expunge()


async def test_smtp_streams_the_file_with_stuffing(upstream, conf, tmp_path, monkeypatch):
    monkeypatch.setattr(source, "CHUNK", 65521)
    t = token()
    data = big_message(t, 2_000_000)
    path = tmp_path / "m.eml"
    path.write_bytes(data)
    tags = f"X-Mailwarden-Token: {t}\r\n".encode()
    result = await send(conf, SHARED, ["catchall@buyer.test"], Source(tags, path))
    assert result.refused == {}
    got = await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=f"end {t}".encode(), timeout=60)
    assert len(got) == 1 and got[0].raw.endswith(tags + data)  # Postfix only puts its Received: on top


async def test_a_50_mb_message_is_streamed_with_flow_control(upstream, conf, tmp_path, writes):
    """Over STARTTLS: every piece is written only once the TLS transport has taken the one
    before, so the client never holds more than about two pieces of the message."""
    t = token()
    block = big_message(t, 1_000_000)
    data = block * 50 + f"end {t}\r\n".encode()
    path = tmp_path / "big.eml"
    path.write_bytes(data)
    tags = f"X-Mailwarden-Token: {t}\r\n".encode()
    try:
        result = await send(conf, SHARED, ["big@customer.test"], Source(tags, path))
        assert result.refused == {}
        pieces = [held for _, held in writes]
        assert len(pieces) >= len(data) // source.CHUNK and max(pieces) <= 2 * source.CHUNK, max(pieces)
        got = await asyncio.to_thread(upstream.wait_for, "catchall@customer.test", 1,
                                      containing=f"end {t}".encode(), timeout=240)
        assert len(got) == 1 and got[0].raw.endswith(tags + data)
    finally:
        await asyncio.to_thread(delete, upstream, "catchall@customer.test", t)


@pytest.mark.parametrize("pipelining", [True, False])
async def test_smtp_refusals_with_and_without_pipelining(upstream, conf, monkeypatch, writes, pipelining):
    """Postfix offers PIPELINING: MAIL, the RCPTs and DATA go in one write.  A refused
    recipient is reported and the others get the message; when all are refused nothing is
    sent; either way the reused connection stays in step for the next message.  The same
    without PIPELINING (one command, one reply)."""
    if not pipelining:
        no_pipelining(monkeypatch)
    t = token()
    smtp = SMTPConnection(conf, upstream_tls(conf))
    mixed = ["nobody@unroutable.example", "catchall@buyer.test"]
    try:
        some = await smtp.send(SHARED, mixed, Source(f"Subject: some {t}\r\n\r\nhello\r\n".encode()))
        none = await smtp.send(SHARED, ["nobody@unroutable.example"], Source(f"Subject: none {t}\r\n\r\nx\r\n".encode()))
        after = await smtp.send(SHARED, ["catchall@buyer.test"], Source(f"Subject: after {t}\r\n\r\nx\r\n".encode()))
        assert smtp.connects == 1  # the same connection throughout
    finally:
        await smtp.close()
    assert list(some.refused) == ["nobody@unroutable.example"] and some.refused[mixed[0]][0] >= 500
    assert list(none.refused) == ["nobody@unroutable.example"] and after.refused == {}
    batches = [w for w, _ in writes if w.startswith(b"MAIL FROM:") and w.endswith(b"DATA\r\n")]
    assert len(batches) == (3 if pipelining else 0)
    got = await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 2, containing=t.encode(), timeout=60)
    subjects = sorted(m.raw.split(b"Subject: ", 1)[1].split(b" ", 1)[0] for m in got)
    assert subjects == [b"after", b"some"]


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_sender_the_account_does_not_own_is_a_permanent_failure(upstream, conf, monkeypatch, pipelining):
    """Postfix refuses MAIL FROM another address than the login's own (553 5.7.1) at once."""
    if not pipelining:
        no_pipelining(monkeypatch)
    with pytest.raises(PermanentFailure, match="^553 5.7.1 "):
        await send(conf, "someone.else@company.test", ["catchall@buyer.test"], Source(b"Subject: x\r\n\r\nx\r\n"))


async def test_a_wrong_password_is_a_temporary_failure(upstream, conf):
    wrong = dataclasses.replace(conf, password=Secret("not-the-password"))
    with pytest.raises(TemporaryFailure, match="^upstream refused the shared account's login: 535 ") as failed:
        await send(wrong, SHARED, ["catchall@buyer.test"], Source(b"Subject: x\r\n\r\nx\r\n"))
    assert "not-the-password" not in str(failed.value)


@contextlib.asynccontextmanager
async def implicit_tls_front(upstream, tmp_path) -> AsyncIterator[tuple[int, object]]:  # type: ignore[no-untyped-def]
    """Postfix's submission port behind a TLS-on-connect front (what port 465 is): the front
    terminates TLS from the client, and towards Postfix does STARTTLS before it passes the
    client's bytes on, so the client's EHLO, AUTH and mail reach Postfix inside TLS."""
    cert, key = tmp_path / "front.pem", tmp_path / "front.key"
    ensure_self_signed(cert, key, "localhost")
    to_postfix = ssl.create_default_context(cafile=str(upstream.ca_file))
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        preader, pwriter = await asyncio.open_connection(upstream.host, upstream.submission_port)
        greeting = await preader.readline()
        pwriter.write(b"EHLO front.test\r\n")
        while (await preader.readline())[3:4] == b"-":
            pass
        pwriter.write(b"STARTTLS\r\n")
        assert (await preader.readline()).startswith(b"220")
        await pwriter.start_tls(to_postfix, server_hostname="localhost")
        cwriter.write(greeting)
        for a, b in ((creader, pwriter), (preader, cwriter)):
            task = asyncio.create_task(pipe(a, b))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context(cert, key))
    try:
        yield srv.sockets[0].getsockname()[1], cert
    finally:
        srv.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await srv.wait_closed()


async def test_implicit_tls(upstream, conf, tmp_path):
    t = token()
    async with implicit_tls_front(upstream, tmp_path) as (port, cert):
        implicit = dataclasses.replace(conf, smtp=HostPort("localhost", port), smtp_tls="implicit", ca_file=cert)
        result = await send(implicit, SHARED, ["catchall@buyer.test"], Source(f"Subject: tls {t}\r\n\r\nx\r\n".encode()))
        assert result.refused == {}
        # the client checks the certificate: a front it cannot verify is not talked to
        other = dataclasses.replace(implicit, ca_file=upstream.ca_file)
        with pytest.raises(TemporaryFailure, match="^cannot reach the upstream SMTP server localhost:.*CERTIFICATE_VERIFY_FAILED"):
            await send(other, SHARED, ["catchall@buyer.test"], Source(b"Subject: x\r\n\r\nx\r\n"))
    got = await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode(), timeout=60)
    assert len(got) == 1
