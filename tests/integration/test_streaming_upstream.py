"""Streaming to the real upstream: IMAP APPEND straight from a spool file, in pieces, against
Dovecot; the bytes stored are the bytes of the file.  SMTP DATA: test_upstream_smtp.py."""

from __future__ import annotations

import asyncio
import random

import pytest
from mailwarden.gateway.upstream import imap as upstream_imap
from mailwarden.gateway.upstream.smtp import upstream_tls
from mailwarden.gateway.upstream import source
from mailwarden.gateway.upstream.source import Source, TemporaryFailure
from mailwarden.gateway.upstream.imap import IMAPConnection
from mailwarden.gateway.upstream.imapclient import IMAPClient, Reply
from mailwarden.gateway.upstream.imapwire import Status

from .conftest import SHARED, gateway_config, token

pytestmark = pytest.mark.integration


def big_message(t: str, size: int) -> bytes:
    """CRLF lines (as the spool holds them), many starting with a dot, of varying lengths, so
    that piece boundaries fall before dots, between CR and LF and at line starts."""
    rng = random.Random(size)
    head = (f"From: Zhang <zhang@company.test>\r\nTo: max@buyer.test\r\nSubject: Big {t}\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <{t}@company.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    lines, total = [], len(head)
    while total < size:
        line = b"." * rng.choice([0, 0, 1, 2]) + bytes(rng.randrange(97, 123) for _ in range(rng.randint(0, 90))) + b"\r\n"
        lines.append(line)
        total += len(line)
    return head + b"".join(lines) + f"end {t}\r\n".encode()


@pytest.fixture
def conf(upstream, tmp_path):  # type: ignore[no-untyped-def]
    cfg = gateway_config(tmp_path, upstream)
    assert cfg.upstream is not None
    return cfg.upstream


@pytest.mark.parametrize("chunk", [4093, None])
async def test_append_streams_the_file_exactly(upstream, conf, tmp_path, monkeypatch, chunk):
    if chunk:
        monkeypatch.setattr(source, "CHUNK", chunk)
    t = token()
    data = big_message(t, 3_000_000)
    path = tmp_path / "m.eml"
    path.write_bytes(data)
    tags = f"X-Mailwarden-Operator: zhang\r\nX-Mailwarden-Token: {t}\r\n".encode()
    imap = IMAPConnection(conf, upstream_tls(conf))
    buffered: list[int] = []
    drain = IMAPClient.drain

    async def watched(self):  # type: ignore[no-untyped-def]  # what the transport holds after each piece
        buffered.append(self.writer.transport.get_write_buffer_size())
        await drain(self)

    monkeypatch.setattr(IMAPClient, "drain", watched)
    folder = f"Streamed {t}"  # does not exist yet: NO [TRYCREATE] before any literal, then CREATE
    src = Source(tags, path)
    try:
        await imap.append(folder, src, ["\\Seen"], [])
        await imap.append(folder, src, ["\\Seen"], ["$mw_op_zhang", "$mw_stream"])  # the same source again
        await imap.append("Sent", b"Subject: small " + t.encode() + b"\r\n\r\nhi\r\n", [], [])  # plain bytes
    finally:
        src.close()
        await imap.close()
    assert len(buffered) >= 2 * (len(data) // source.CHUNK) and max(buffered) <= 2 * source.CHUNK + 65536, max(buffered)
    got = await asyncio.to_thread(upstream.fetch_all, SHARED, folder)
    assert [m.raw for m in got] == [tags + data, tags + data]
    assert "$mw_stream" not in got[0].flags and {"\\Seen", "$mw_op_zhang", "$mw_stream"} <= set(got[1].flags)
    sent = await asyncio.to_thread(upstream.fetch_all, SHARED, "Sent")
    assert [m.raw for m in sent if t.encode() in m.raw] == [b"Subject: small " + t.encode() + b"\r\n\r\nhi\r\n"]


async def test_append_refused_before_the_literal_keeps_the_connection(upstream, conf, tmp_path):
    t = token()
    path = tmp_path / "m.eml"
    path.write_bytes(big_message(t, 200_000))
    imap = IMAPConnection(conf, upstream_tls(conf))
    src = Source(b"", path)
    try:
        with pytest.raises(TemporaryFailure, match="refused APPEND"):
            await imap.append("bad&name", src, [], [])  # invalid modified UTF-7: NO, and CREATE fails too
        client = imap.client
        await imap.append("Sent", src, [], [])
        assert imap.client is client  # still in step: the same connection did the next APPEND
    finally:
        src.close()
        await imap.close()
    sent = await asyncio.to_thread(upstream.wait_for, SHARED, 1, "Sent", containing=f"end {t}".encode())
    assert sent[0].raw == path.read_bytes()


def count_calls(monkeypatch, module, name: str, arg: int) -> list[int]:  # type: ignore[no-untyped-def]
    """From now on, for each call of ``module.name``: the length of its positional argument ``arg``."""
    calls: list[int] = []
    real = getattr(module, name)

    async def counted(*args):  # type: ignore[no-untyped-def]
        calls.append(len(args[arg]))
        return await real(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def count_appends(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """The number of messages in each APPEND command sent from now on."""
    return count_calls(monkeypatch, upstream_imap, "_append", 2)


async def test_multiappend_stores_several_copies_in_one_command(upstream, conf, tmp_path, monkeypatch):
    """Dovecot offers MULTIAPPEND: the copies go in one APPEND, each literal streamed from
    its file only once the server has asked for it, each with its own flags."""
    monkeypatch.setattr(source, "CHUNK", 65521)
    t = token()
    paths = []
    for k, size in enumerate((300_000, 2_000, 5_000)):
        paths.append(tmp_path / f"m{k}.eml")
        paths[-1].write_bytes(big_message(f"{t}-{k}", size))
    commands = count_appends(monkeypatch)
    imap = IMAPConnection(conf, upstream_tls(conf))
    sources = [Source(f"X-Mailwarden-Copy: {k}\r\n".encode(), p) for k, p in enumerate(paths)]
    folder = f"Multi {t}"
    try:
        await imap.append_many(folder, [(sources[0], ["\\Seen"], ["$mw_op_zhang"]), (sources[1], [], ["$mw_op_li"]),
                                        (sources[2], ["\\Seen"], [])])
        assert imap.multiappend
    finally:
        for s in sources:
            s.close()
        await imap.close()
    assert commands == [3]  # the new folder was created when its keywords were checked
    got = await asyncio.to_thread(upstream.fetch_all, SHARED, folder)
    assert [m.raw for m in got] == [f"X-Mailwarden-Copy: {k}\r\n".encode() + p.read_bytes() for k, p in enumerate(paths)]
    assert {"\\Seen", "$mw_op_zhang"} <= set(got[0].flags) and "$mw_op_li" in got[1].flags
    assert "\\Seen" not in got[1].flags and "$mw_op_zhang" not in got[2].flags


async def test_multiappend_refused_half_way_stores_none_and_stays_in_step(upstream, conf, tmp_path):
    """The server refuses the second message's arguments: it never asked for that literal, so
    none of its bytes were sent (nothing a server could read as commands), nothing is stored
    (MULTIAPPEND is all or none), and the next APPEND goes on a new connection (a server that
    answers in the middle of a command is not trusted to be in step)."""
    t = token()
    path = tmp_path / "m.eml"
    path.write_bytes(big_message(t, 20_000))
    imap = IMAPConnection(conf, upstream_tls(conf))
    src = Source(b"", path)
    folder = f"Refused {t}"
    try:
        await imap.append(folder, b"Subject: first\r\n\r\nx\r\n", [], [])  # the folder exists
        client = imap.client
        with pytest.raises(upstream_imap.Refused) as refused:
            await imap.append_many(folder, [(src, [], []), (src, ["\\Bogus"], []), (src, [], [])])
        assert refused.value.stored == 0  # type: ignore[attr-defined]
        await imap.append(folder, src, [], [])
        assert imap.client is not client
    finally:
        src.close()
        await imap.close()
    got = await asyncio.to_thread(upstream.fetch_all, SHARED, folder)
    assert [m.raw for m in got] == [b"Subject: first\r\n\r\nx\r\n", path.read_bytes()]


async def test_append_many_one_by_one_without_multiappend(upstream, conf, tmp_path, monkeypatch):
    """A server without MULTIAPPEND (Gmail, Exchange) gets one APPEND per copy."""
    monkeypatch.setattr(IMAPConnection, "multiappend", property(lambda self: False))
    commands = count_appends(monkeypatch)
    t = token()
    imap = IMAPConnection(conf, upstream_tls(conf))
    try:
        await imap.append_many("Sent", [(Source(f"Subject: {t} {k}\r\n\r\nx\r\n".encode()), [], []) for k in range(3)])
    finally:
        await imap.close()
    assert commands == [1, 1, 1]
    sent = await asyncio.to_thread(upstream.fetch_all, SHARED, "Sent")
    assert [m.raw for m in sent if t.encode() in m.raw] == [f"Subject: {t} {k}\r\n\r\nx\r\n".encode() for k in range(3)]


async def test_stored_finds_copies_by_their_ref(upstream, conf):
    """Before appending a copy again, the gateway asks which are in the folder already."""
    t = token()
    imap = IMAPConnection(conf, upstream_tls(conf))
    try:
        assert await imap.stored(f"Nowhere {t}", [t]) == set()  # no such folder: nothing in it
        await imap.append("Sent", f"X-Mailwarden-Ref: {t}-a\r\nSubject: a\r\n\r\nx\r\n".encode(), ["\\Seen"], [])
        assert await imap.stored("Sent", [f"{t}-a", f"{t}-b"]) == {f"{t}-a"}
        await imap.append("Sent", b"Subject: after\r\n\r\nx\r\n", [], [])  # the connection is usable after
    finally:
        await imap.close()


async def test_the_gateway_never_expunges_what_someone_marked_deleted(upstream, conf):
    """Looking at a folder's flags and searching it leave it as found: a CLOSE after a SELECT
    would have removed the message someone had marked \\Deleted (and not yet expunged)."""
    t = token()
    folder = f"Kept {t}"
    imap = IMAPConnection(conf, upstream_tls(conf))
    try:
        await imap.append(folder, f"Subject: marked {t}\r\n\r\nx\r\n".encode(), ["\\Deleted"], [])
        await imap.append(folder, f"Subject: tagged {t}\r\n\r\nx\r\n".encode(), [], ["$mw_op_zhang"])  # SELECTs it
        assert await imap.stored(folder, [t]) == set()
    finally:
        await imap.close()
    got = await asyncio.to_thread(upstream.fetch_all, SHARED, folder)
    assert len(got) == 2 and "\\Deleted" in got[0].flags


async def test_a_server_that_cannot_search_headers_is_not_asked_again(upstream, conf, monkeypatch):
    imap = IMAPConnection(conf, upstream_tls(conf))
    asked: list[str] = []

    async def refuses(client, ref, header="X-Mailwarden-Ref"):  # type: ignore[no-untyped-def]
        asked.append(ref)
        return Reply(Status("mw0", "NO", None, "SEARCH HEADER not supported"), ())

    try:
        await imap.append("Sent", b"Subject: s\r\n\r\nx\r\n", [], [])
        monkeypatch.setattr(upstream_imap, "_search", refuses)
        assert await imap.stored("Sent", ["a", "b"]) is None  # cannot tell: filed again
        assert await imap.stored("Sent", ["c"]) is None and len(asked) == 1
        await imap.append("Sent", b"Subject: s2\r\n\r\nx\r\n", [], [])  # still in step
    finally:
        await imap.close()
