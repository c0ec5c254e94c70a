"""Our IMAP client against the real Dovecot: STARTTLS and plain connections, literals both
ways, FETCH, IDLE, ESEARCH and VANISHED as the coming sync will read them, mailbox names
beyond ASCII, and a dropped connection made again."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator

import pytest
from mailwarden.gateway.config import HostPort
from mailwarden.gateway.upstream.imap import IMAPConnection
from mailwarden.gateway.upstream.imapclient import IMAPClient
from mailwarden.gateway.upstream.imapwire import (
    Continuation, ESearch, Exists, Fetch, ListItem, Raw, Search, Vanished, decode_mailbox, encode_mailbox, parse_set)
from mailwarden.gateway.upstream.smtp import upstream_tls
from mailwarden.gateway.upstream.source import Source

from .conftest import SHARED, gateway_config, token

pytestmark = pytest.mark.integration


@pytest.fixture
def conf(upstream, tmp_path):  # type: ignore[no-untyped-def]
    cfg = gateway_config(tmp_path, upstream)
    assert cfg.upstream is not None
    return cfg.upstream


async def login(conf) -> IMAPClient:  # type: ignore[no-untyped-def]
    client = await IMAPClient.connect(conf.imap.host, conf.imap.port, tls=upstream_tls(conf))
    assert (await client.command("LOGIN", conf.username, conf.password.reveal())).ok
    return client


@contextlib.asynccontextmanager
async def connections(conf) -> AsyncIterator[tuple[IMAPConnection, IMAPClient]]:  # type: ignore[no-untyped-def]
    """The gateway's connection (to file messages) and a plain client (to look at them)."""
    imap = IMAPConnection(conf, upstream_tls(conf))
    client = await login(conf)
    try:
        yield imap, client
    finally:
        await client.logout()
        await imap.close()


async def uids(client: IMAPClient) -> tuple[int, ...]:
    reply = await client.command("UID", Raw("SEARCH"), Raw("ALL"))
    return next(r.numbers for r in reply.untagged if isinstance(r, Search))


@pytest.mark.parametrize("mode", ["starttls", "none"])
async def test_starttls_and_plain_connections(upstream, conf, mode):
    """imap_tls = "starttls" upgrades the plain port before LOGIN; "none" stays plain."""
    u = dataclasses.replace(conf, imap=HostPort(conf.imap.host, upstream.imap_port), imap_tls=mode)
    t = token()
    imap = IMAPConnection(u, upstream_tls(u))
    try:
        await imap.append("Sent", f"X-Mailwarden-Ref: {t}\r\nSubject: {mode}\r\n\r\nx\r\n".encode(), ["\\Seen"],
                          ["$mw_op_zhang"])
        assert imap.client is not None and imap.multiappend  # capabilities known again after STARTTLS and LOGIN
        assert (imap.client.writer.get_extra_info("ssl_object") is not None) == (mode == "starttls")
        assert await imap.stored("Sent", [t, f"{t}-not"]) == {t}
    finally:
        await imap.close()


async def test_fetch_reads_bodies_flags_and_sizes(conf):
    t = token()
    folder = f"Fetch {t}"
    bodies = [f"Subject: one {t}\r\n\r\nlooks like ) {{5}}\r\n* 9 EXISTS\r\n".encode(),
              "Subject: =?gbk?b?xOO6ww==?=\r\n\r\n你好，报价单见附件\r\n".encode("gbk")]
    async with connections(conf) as (imap, client):
        await imap.append_many(folder, [(src, ["\\Seen"], ["$mw_op_li"]) for src in map(Source, bodies)])
        assert (await client.command("EXAMINE", folder)).ok
        reply = await client.command("FETCH", Raw("1:*"), Raw("(UID FLAGS RFC822.SIZE BODY.PEEK[] "
                                                                "BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        got = [r for r in reply.untagged if isinstance(r, Fetch)]
        assert [f.items["BODY[]"] for f in got] == bodies
        assert [f.items["RFC822.SIZE"] for f in got] == [len(b) for b in bodies]
        assert all({"\\Seen", "$mw_op_li"} <= set(f.items["FLAGS"]) for f in got)  # type: ignore[arg-type]
        assert got[0].items["BODY[HEADER.FIELDS (SUBJECT)]"] == f"Subject: one {t}\r\n\r\n".encode()


async def test_a_literal_the_server_asks_for_keeps_the_connection_in_step(conf):
    """A password only a literal can carry: Dovecot asks for it (+), gets it, refuses it."""
    client = await IMAPClient.connect(conf.imap.host, conf.imap.port, tls=upstream_tls(conf))
    try:
        reply = await client.command("LOGIN", SHARED, "pässwörd")
        assert reply.status.status == "NO" and not client.closed
        assert (await client.command("LOGIN", conf.username, conf.password.reveal())).ok
        assert (await client.command("NOOP")).ok
    finally:
        await client.logout()
    assert client.closed


async def test_idle_brings_what_another_connection_appends(conf):
    t = token()
    folder = f"Idle {t}"
    imap = IMAPConnection(conf, upstream_tls(conf))
    heard: list = []
    await imap.append(folder, b"Subject: first\r\n\r\nx\r\n", [], [])
    watcher = await login(conf)
    try:
        assert (await watcher.command("EXAMINE", folder)).ok
        tag = watcher.new_tag()
        watcher.send(f"{tag} IDLE\r\n".encode())
        assert isinstance(await watcher.next_event(), Continuation)
        await imap.append(folder, b"Subject: second\r\n\r\nx\r\n", [], [])
        async with asyncio.timeout(40):  # at once with inotify; within Dovecot's 30 s check without
            while (ev := await watcher.next_event()) != Exists(2):
                heard.append(ev)
        watcher.send(b"DONE\r\n")
        assert (await watcher.wait(tag, heard)).ok
    finally:
        await watcher.logout()
        await imap.close()


async def test_esearch_and_vanished(conf):
    t = token()
    folder = f"Vanish {t}"
    async with connections(conf) as (imap, client):
        await imap.append_many(folder, [(Source(f"Subject: {k}\r\n\r\nx\r\n".encode()), [], []) for k in range(3)])
        assert (await client.command("ENABLE", Raw("QRESYNC"))).ok
        assert (await client.command("SELECT", folder)).ok  # the test's own folder: this one may be expunged
        first, second, third = await uids(client)
        assert (await client.command("UID", Raw("STORE"), second, Raw("+FLAGS.SILENT"), Raw("(\\Deleted)"))).ok
        reply = await client.command("UID", Raw("EXPUNGE"), second)
        assert Vanished(False, ((second, second),)) in reply.untagged
        reply = await client.command("UID", Raw("SEARCH"), Raw("RETURN"), Raw("(COUNT ALL)"), Raw("ALL"))
        (found,) = [r for r in reply.untagged if isinstance(r, ESearch)]
        assert found.uid and found.results["COUNT"] == 2 and found.tag is not None
        assert sorted({first, third}) == [n for lo, hi in parse_set(found.results["ALL"]) for n in range(lo, hi + 1)]


async def test_a_folder_named_beyond_ascii_goes_in_modified_utf7(conf):
    t = token()
    folder = f"已发送 {t}"
    async with connections(conf) as (imap, client):
        await imap.append(folder, f"X-Mailwarden-Ref: {t}\r\nSubject: s\r\n\r\nx\r\n".encode(), [], ["$mw_op_zhang"])
        assert await imap.stored(folder, [t]) == {t}
        reply = await client.command("LIST", "", f"*{t}")
        (item,) = [r for r in reply.untagged if isinstance(r, ListItem)]
        assert item.name == encode_mailbox(folder) != folder and decode_mailbox(item.name) == folder


async def test_a_dropped_connection_is_made_again(upstream, conf):
    t = token()
    imap = IMAPConnection(conf, upstream_tls(conf))
    try:
        await imap.append("Sent", f"Subject: before {t}\r\n\r\nx\r\n".encode(), [], [])
        first = imap.client
        assert first is not None
        first.writer.get_extra_info("socket").shutdown(socket.SHUT_RDWR)  # the network drops it, unseen
        await imap.append("Sent", f"Subject: after {t}\r\n\r\nx\r\n".encode(), [], [])
        assert imap.client is not first and first.closed
    finally:
        await imap.close()
    sent = await asyncio.to_thread(upstream.wait_for, SHARED, 2, "Sent", containing=t.encode())
    assert sorted(m.raw.split(b" ", 2)[1] for m in sent) == [b"after", b"before"]

