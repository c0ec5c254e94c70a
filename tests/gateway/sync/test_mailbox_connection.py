"""The sync's upstream connection against real Dovecots: ``lab`` (everything offered) and
``provider`` (what Exchange or 163 offer: no IDLE, CONDSTORE, QRESYNC, ESEARCH, SPECIAL-USE or
ID; folders named in Chinese).  What the connection reads is compared with what imaplib reads."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import time
import tracemalloc
import uuid

import pytest
from mailwarden.gateway.config import HostPort, Secret
from mailwarden.gateway.sync.upstream import MailboxConnection
from mailwarden.gateway.upstream.budget import ConnectionBudget
from mailwarden.gateway.upstream.imap import Refused
from mailwarden.gateway.upstream.imapwire import Exists, Fetch, parse_set
from mailwarden.gateway.upstream.source import TemporaryFailure

pytestmark = pytest.mark.integration
ME = "sync@company.test"  # the shared account of both servers (conftest)


def token() -> str:
    return uuid.uuid4().hex[:12]


def message(t: str, i: int, size: int = 0) -> bytes:
    filler = b"".join(b"line %d of the quote, %s\r\n" % (n, t.encode()) for n in range(size // 40))
    return (f"From: Buyer <someone@buyer.test>\r\nTo: {ME}\r\nSubject: {t} {i}\r\n"
            f"Message-ID: <{t}.{i}@buyer.test>\r\n\r\nhello {i}\r\n").encode() + filler


async def deliver(server, messages: list[bytes], t: str) -> None:  # type: ignore[no-untyped-def]
    """Inbound mail through Postfix and LMTP, then wait until all of it is in INBOX."""
    await asyncio.to_thread(server.inject_many, messages, [ME])
    await asyncio.to_thread(server.wait_for, ME, len(messages), containing=t.encode())


async def last_uid(conn: MailboxConnection) -> int:
    return max(await conn.uids(), default=0)


async def test_folder_roles_from_special_use(lab, connection):
    async with connection(lab) as conn:
        folders = {f.name: f for f in await conn.folders()}
    assert {name: f.role for name, f in folders.items()} == {
        "INBOX": "inbox", "Sent": "sent", "Drafts": "drafts", "Trash": "trash", "Junk": "junk"}
    assert all(f.special_use for name, f in folders.items() if name != "INBOX")


async def test_folder_roles_from_chinese_names_without_special_use(provider, connection):
    async with connection(provider) as conn:
        assert "SPECIAL-USE" not in conn.capabilities
        folders = {f.name: f for f in await conn.folders()}
    assert {name: f.role for name, f in folders.items()} == {
        "INBOX": "inbox", "已发送": "sent", "草稿箱": "drafts", "已删除": "trash", "垃圾邮件": "junk",
        "其他文件夹/订阅邮件": "other"}
    assert not any(f.special_use for f in folders.values())
    assert folders["已发送"].wire == "&XfJT0ZAB-"


def _ids_sent(server) -> int:  # type: ignore[no-untyped-def]
    return server.log_tail("dovecot", 100000).count(f"ID sent: name=mailwarden, version={importlib.metadata.version('mailwarden')}")


@pytest.mark.parametrize(("which", "sent"), [("lab", 1), ("provider", 0)])
async def test_id_is_sent_where_advertised(request, connection, which, sent):
    server = request.getfixturevalue(which)
    before = _ids_sent(server)
    async with connection(server) as conn:
        assert ("ID" in conn.capabilities) == bool(sent)
        await conn.select("INBOX")
    assert _ids_sent(server) - before == sent


async def test_fetch_new_gives_each_message_once_in_uid_order_with_its_exact_bytes(lab, connection):
    t = token()
    async with connection(lab) as conn:
        await conn.select("INBOX")
        start = await last_uid(conn)
        await deliver(lab, [message(t, i, size=(i * 97) % 3000) for i in range(300)], t)
        got = [m async for m in conn.fetch_new(start, max_bytes=64 * 1024)]
        assert [m async for m in conn.fetch_new(got[-1].uid)] == []  # n:* names the last message: left out
    expected = await asyncio.to_thread(lab.fetch_by_uid, ME, "INBOX", start)
    assert [m.uid for m in got] == sorted(expected) and len(got) == 300
    assert [m.body for m in got] == [m.raw for m in expected.values()]
    assert [m.size for m in got] == [len(m.raw) for m in expected.values()]
    subjects = sorted(int(m.body.split(f"Subject: {t} ".encode())[1].split(b"\r\n")[0]) for m in got)  # type: ignore[union-attr]
    assert subjects == list(range(300))  # each once (Postfix delivers in its own order)
    assert all(m.internal_date is not None and m.internal_date.tzinfo is not None for m in got)
    assert not any("\\Seen" in m.flags for m in got)
    assert not any("\\Seen" in m.flags for m in expected.values())


async def test_batches_keep_large_messages_alone_and_memory_bounded(lab, connection):
    t = token()
    sizes = [20_000] * 6 + [1_500_000] * 2 + [20_000] * 6 + [1_500_000] * 6
    async with connection(lab) as conn:
        await conn.select("INBOX")
        start = await last_uid(conn)
        await deliver(lab, [message(t, i, size) for i, size in enumerate(sizes)], t)
        sets: list[str] = []
        command = conn.client.command  # type: ignore[union-attr]

        async def recording(name, *args):  # type: ignore[no-untyped-def]
            if name == "UID" and "BODY.PEEK[]" in str(args[2]):
                sets.append(str(args[1]))
            return await command(name, *args)

        conn.client.command = recording  # type: ignore[method-assign,union-attr]
        tracemalloc.start()
        try:
            received = 0
            async for m in conn.fetch_new(start, max_bytes=1_000_000):
                received += len(m.body)  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    total = sum(len(message(t, i, size)) for i, size in enumerate(sizes))
    assert received > total  # (Postfix and LMTP add their headers)
    delivered = await asyncio.to_thread(lab.fetch_by_uid, ME, "INBOX", start)  # (in Postfix's order)
    large = {uid for uid, m in delivered.items() if len(m.raw) > 1_000_000}
    assert len(large) == 8
    batches = [{n for lo, hi in parse_set(s) for n in range(lo, hi + 1)} for s in sets]
    assert sorted(n for b in batches for n in b) == list(range(start + 1, start + len(sizes) + 1))
    assert all(len(b) == 1 for b in batches if b & large)  # large ones alone
    small = [b for b in batches if not b & large]
    assert all(sum(len(delivered[n].raw) for n in b) <= 1_000_000 for b in small)
    assert sum(len(b) for b in small) == 12 and max(len(b) for b in small) > 1  # small ones together
    assert peak < total / 2, (peak, total)  # a few copies of one large message, not all of them


async def test_a_message_over_the_limit_is_reported_not_fetched(lab, connection):
    t = token()
    async with connection(lab, max_message=1_000_000) as conn:
        await conn.select("INBOX")
        start = await last_uid(conn)
        await deliver(lab, [message(t, 0), message(t, 1, 1_200_000), message(t, 2)], t)
        got = [m async for m in conn.fetch_new(start)]
    assert [m.too_large for m in got] == [m.size > 1_000_000 for m in got] and sum(m.too_large for m in got) == 1
    (big,) = [m for m in got if m.too_large]
    assert big.body is None and big.size > 1_000_000 and big.internal_date is not None
    assert sorted(m.body.split(b"hello ")[1][:1] for m in got if m.body) == [b"0", b"2"]


async def test_uidvalidity_change_is_told(lab, connection):
    folder = f"Recreated {token()}"

    def recreate(first: bool) -> None:
        with lab.imap(ME) as client:
            if not first:
                assert client.delete(f'"{folder}"')[0] == "OK"
            assert client.create(f'"{folder}"')[0] == "OK"

    await asyncio.to_thread(recreate, True)
    async with connection(lab) as conn:
        before = await conn.select(folder)
        assert not (await conn.select(folder)).uidvalidity_changed
        await asyncio.to_thread(recreate, False)
        after = await conn.select(folder)  # this connection remembers what it saw
        assert after.uidvalidity != before.uidvalidity and after.uidvalidity_changed
    async with connection(lab) as conn:  # a new connection is told by the caller's knowledge
        assert (await conn.select(folder, uidvalidity=before.uidvalidity)).uidvalidity_changed
        assert not (await conn.select(folder, uidvalidity=after.uidvalidity)).uidvalidity_changed


async def test_qresync_brings_what_vanished_and_changed_since(lab, connection):
    t = token()
    folder = f"Qresync {t}"

    def setup() -> None:
        with lab.imap(ME) as client:
            client.create(f'"{folder}"')
            for i in range(4):
                client.append(f'"{folder}"', "", None, message(t, i))

    def change(expunge: int, flag: int) -> None:
        with lab.imap(ME) as client:
            client.select(f'"{folder}"')
            client.uid("STORE", str(expunge), "+FLAGS.SILENT", "(\\Deleted)")
            client.uid("STORE", str(flag), "+FLAGS.SILENT", "(\\Flagged)")
            client.expunge()

    await asyncio.to_thread(setup)
    async with connection(lab) as conn:
        assert conn.has_qresync
        first = await conn.select(folder)
        assert first.highestmodseq is not None and first.exists == 4
        await asyncio.to_thread(change, 2, 3)
        again = await conn.select(folder, uidvalidity=first.uidvalidity, modseq=first.highestmodseq)
    assert again.vanished == ((2, 2),) and set(again.changed) == {3}
    assert "\\Flagged" in again.changed[3][0] and again.highestmodseq > first.highestmodseq  # type: ignore[operator]


async def test_idle_wakes_at_a_new_delivery(lab, connection):
    t = token()
    async with connection(lab, holder="sync idle INBOX") as conn:
        assert conn.has_idle
        await conn.select("INBOX")
        assert await conn.idle(0.2) == []  # nothing new: back after the timeout, still in step
        waiting = asyncio.ensure_future(conn.idle(60))
        await asyncio.sleep(0.2)  # in IDLE
        started = time.monotonic()
        await asyncio.to_thread(lab.inject, message(t, 0), [ME])
        events = await asyncio.wait_for(waiting, 30)
        woke = time.monotonic() - started
        assert any(isinstance(e, Exists) for e in events)
        got = [m async for m in conn.fetch_new(await last_uid(conn) - 1)]
    assert woke < 5, woke  # the product's target is 2 s from delivery to the salesperson
    assert f"Subject: {t} 0".encode() in got[-1].body  # type: ignore[operator]


async def test_a_connection_cut_mid_fetch_raises_and_a_new_one_resumes(lab, connection):
    t = token()
    budget = ConnectionBudget({"imap": 1})
    count = 8
    async with connection(lab, budget) as conn:
        await conn.select("INBOX")
        start = await last_uid(conn)
    await deliver(lab, [message(t, i, 700_000) for i in range(count)], t)
    got: list[int] = []
    conn = connection(lab, budget)
    await conn.connect()
    heard = conn.client.on_untagged  # type: ignore[union-attr]

    bodies = 0

    def cut_at_the_third_body(ev):  # type: ignore[no-untyped-def]
        nonlocal bodies
        heard(ev)  # type: ignore[misc]
        bodies += isinstance(ev, Fetch) and "BODY[]" in ev.items
        if bodies == 3:  # the first of the second FETCH: the network drops it mid-response
            conn.client.writer.transport.abort()  # type: ignore[union-attr]

    conn.client.on_untagged = cut_at_the_third_body  # type: ignore[union-attr]
    await conn.select("INBOX")
    with pytest.raises(TemporaryFailure, match="upstream IMAP localhost:[0-9]+ dropped during UID"):
        async for m in conn.fetch_new(start, max_bytes=1_500_000):  # two to a FETCH
            got.append(m.uid)
    assert got == [start + 1, start + 2]
    assert not conn.connected and budget.snapshot()["imap"].in_use == 0
    await conn.connect()  # the caller's reconnect
    try:
        await conn.select("INBOX")
        got += [m.uid async for m in conn.fetch_new(max(got, default=start))]
    finally:
        await conn.close()
    assert got == list(range(start + 1, start + count + 1))


async def test_a_server_kick_during_idle_raises_temporary_failure(lab, connection):
    async with connection(lab) as conn:
        await conn.select("INBOX")
        waiting = asyncio.ensure_future(conn.idle(60))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(lab.kick, ME)
        with pytest.raises(TemporaryFailure, match="dropped during IDLE"):
            await asyncio.wait_for(waiting, 30)
        assert not conn.connected


async def test_uids_and_flags_without_condstore(provider, connection):
    t = token()
    await deliver(provider, [message(t, i) for i in range(5)], t)

    def mark() -> tuple[int, dict[int, list[str]]]:
        second = sorted(provider.fetch_by_uid(ME))[1]
        with provider.imap(ME) as client:
            client.select("INBOX")
            client.uid("STORE", str(second), "+FLAGS.SILENT", "(\\Seen $Label1)")
        return second, {uid: m.flags for uid, m in provider.fetch_by_uid(ME).items()}

    second, flags = await asyncio.to_thread(mark)
    async with connection(provider) as conn:
        assert not conn.has_condstore and not conn.has_idle and "ESEARCH" not in conn.capabilities
        state = await conn.select("INBOX")
        assert state.highestmodseq is None
        assert await conn.uids() == set(flags)
        got = await conn.uid_flags(since_modseq=5)  # no CONDSTORE: all of them, whatever is asked
        with pytest.raises(RuntimeError, match="does not offer IDLE"):
            await conn.idle(1)
        await asyncio.to_thread(provider.inject, message(t, 9), [ME])
        for _ in range(100):  # polled, as the caller would
            if any(isinstance(e, Exists) for e in await conn.noop()):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("NOOP never told of the new message")
    assert {uid: set(f) - {"\\Recent"} for uid, (f, _) in got.items()} == {
        uid: set(f) - {"\\Recent"} for uid, f in flags.items()}
    assert {"\\Seen", "$Label1"} <= set(got[second][0]) and all(modseq is None for _, modseq in got.values())


async def test_changedsince_with_condstore_and_header_ids(lab, connection):
    t = token()
    async with connection(lab) as conn:
        await conn.select("INBOX")
        start = await last_uid(conn)
        await deliver(lab, [message(t, i) for i in range(3)], t)
        state = await conn.select("INBOX")
        assert state.highestmodseq is not None
        uids = sorted(u for u in await conn.uids() if u > start)
        assert len(uids) == 3 and set(uids) <= set(await conn.uids())

        def flag() -> None:
            with lab.imap(ME) as client:
                client.select("INBOX")
                client.uid("STORE", str(uids[1]), "+FLAGS.SILENT", "(\\Answered)")

        await asyncio.to_thread(flag)
        changed = await conn.uid_flags(since_modseq=state.highestmodseq)
        everything = await conn.uid_flags()
        ids = await conn.header_ids(uids)
    assert list(changed) == [uids[1]] and "\\Answered" in changed[uids[1]][0]
    assert changed[uids[1]][1] > state.highestmodseq  # type: ignore[operator]
    assert set(uids) <= set(everything)
    assert sorted(ids[u][0] for u in uids) == [f"<{t}.{i}@buyer.test>" for i in range(3)]  # type: ignore[type-var]
    assert all(size > 0 and date is not None for _, size, date in ids.values())


async def test_store_keywords_selects_for_it_and_examines_again(lab, connection):
    t = token()
    async with connection(lab) as conn:
        await conn.select("INBOX")
        start = await last_uid(conn)
        await deliver(lab, [message(t, 0)], t)
        await conn.select("INBOX")
        uid = await last_uid(conn)
        assert uid > start
        assert await conn.store_keywords(uid, ["$mw_op_zhang"])
        assert conn.selected is not None and not conn.selected.keywords_allowed  # read-only again
    flags = (await asyncio.to_thread(lab.fetch_by_uid, ME, "INBOX", uid - 1))[uid].flags
    assert "$mw_op_zhang" in flags and "\\Seen" not in flags


async def test_the_budget_is_honoured(lab, connection):
    budget = ConnectionBudget({"imap": 1})
    first, second = connection(lab, budget, "sync idle INBOX"), connection(lab, budget, "sync worker")
    await first.connect()
    waiting = asyncio.ensure_future(second.connect())
    try:
        for _ in range(5):
            await asyncio.sleep(0)
        use = budget.snapshot()["imap"]
        assert not waiting.done() and use.waiting == 1 and use.holders == ("sync idle INBOX",)
        await first.close()
        await asyncio.wait_for(waiting, 30)
        assert second.connected and budget.snapshot()["imap"].holders == ("sync worker",)
    finally:
        await first.close()
        await second.close()
    assert budget.snapshot()["imap"].in_use == 0


async def test_a_refused_login_names_the_server_not_the_password(lab, connection):
    budget = ConnectionBudget({"imap": 1})
    conn = connection(lab, budget)
    conn.upstream = dataclasses.replace(conn.upstream, password=Secret("wrong-pw"))
    with pytest.raises(TemporaryFailure) as caught:
        await conn.connect()
    assert f"localhost:{lab.imaps_port} refused the shared account's login" in str(caught.value)
    assert "wrong-pw" not in str(caught.value) and budget.snapshot()["imap"].in_use == 0
    with pytest.raises(Refused, match="refused EXAMINE"):
        async with connection(lab) as ok:
            await ok.select("No such folder")


async def test_starttls_and_a_closed_port(lab, connection):
    async with connection(lab, imap_tls="starttls") as conn:
        assert conn.client.writer.get_extra_info("ssl_object") is not None  # type: ignore[union-attr]
        assert (await conn.select("INBOX")).uidvalidity > 0
    conn = connection(lab)
    conn.upstream = dataclasses.replace(conn.upstream, imap=HostPort("localhost", 1))
    with pytest.raises(TemporaryFailure, match="cannot reach the upstream IMAP server localhost:1"):
        await conn.connect()
    assert not conn.connected


async def test_idle_is_issued_again_within_the_servers_limit(lab, connection, monkeypatch):
    monkeypatch.setattr("mailwarden.gateway.sync.upstream.IDLE_REISSUE", 0.2)  # for 25 minutes
    t = token()
    async with connection(lab) as conn:
        await conn.select("INBOX")
        sent: list[bytes] = []
        send = conn.client.send  # type: ignore[union-attr]

        def recording(data: bytes) -> None:
            sent.append(data)
            send(data)

        conn.client.send = recording  # type: ignore[method-assign,union-attr]
        assert await conn.idle(0.7) == []
        assert sum(b" IDLE\r\n" in d for d in sent) >= 3 and sent.count(b"DONE\r\n") == sum(b" IDLE\r\n" in d for d in sent)
        waiting = asyncio.ensure_future(conn.idle(30))
        await asyncio.sleep(0.5)  # some cycles later
        await asyncio.to_thread(lab.inject, message(t, 0), [ME])
        assert any(isinstance(e, Exists) for e in await asyncio.wait_for(waiting, 30))
