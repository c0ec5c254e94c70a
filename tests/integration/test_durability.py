"""Nothing is lost: upstream outages, a killed gateway, and load — all delivered exactly once."""

from __future__ import annotations

import asyncio
import collections
import signal
import socket
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mailwarden.store import open_store
from mailwarden.store.models import SpoolItem
from sqlmodel import Session, col, select

from tests.integration.conftest import (
    SHARED,
    gateway_config,
    message,
    seed,
    submission_client,
    token,
)

pytestmark = pytest.mark.integration


def subjects(msgs, t: str) -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for m in msgs:
        for line in m.raw.split(b"\r\n"):
            if line.startswith(b"Subject: ") and t.encode() in line:
                out[line[9:].decode()] += 1
    return out


def send_many(connect, t: str, n: int, login: str = "zhang") -> list[tuple]:
    """Send n messages over one connection (``connect(login)`` makes it); the server's reply to each."""
    replies = []
    with connect(login) as c:
        for i in range(n):
            c.mail("x@x.example")
            c.rcpt("max@buyer.test")
            replies.append(c.data(message(f"{t}-{i}")))
    return replies


async def test_upstream_smtp_down_then_back_delivers_all_exactly_once(gateway):
    up = gateway.upstream
    t = token()
    await asyncio.to_thread(up.stop_smtp)
    try:
        replies = await asyncio.to_thread(send_many, gateway.client, t, 100)
        assert all(code == 250 for code, _ in replies)
        await asyncio.sleep(1.5)  # the relay tries, fails and backs off meanwhile
        with Session(gateway.store.engine) as s:
            waiting = s.exec(select(SpoolItem).where(SpoolItem.stage == "relay")).all()
            assert len(waiting) == 100 and any(w.attempts > 0 for w in waiting)
    finally:
        await asyncio.to_thread(up.start_smtp)
    got = await asyncio.to_thread(up.wait_for, "catchall@buyer.test", 100, timeout=90, containing=t.encode())
    counts = subjects(got, t)
    assert len(counts) == 100 and set(counts.values()) == {1}
    sent = await asyncio.to_thread(up.wait_for, SHARED, 100, "Sent", timeout=60, containing=t.encode())
    assert set(subjects(sent, t).values()) == {1}


async def test_thousand_messages_from_ten_clients(gateway):
    t = token()
    with ThreadPoolExecutor(10) as pool:
        futures = [asyncio.wrap_future(pool.submit(send_many, gateway.client, f"{t}c{k}", 100)) for k in range(10)]
        results = await asyncio.gather(*futures)
    assert sum(1 for r in results for code, _ in r if code == 250) == 1000
    up = gateway.upstream
    got = await asyncio.to_thread(up.wait_for, "catchall@buyer.test", 1000, timeout=240, containing=t.encode())
    counts = subjects(got, t)
    assert len(counts) == 1000 and set(counts.values()) == {1}, "lost or duplicated deliveries"
    sent = await asyncio.to_thread(up.wait_for, SHARED, 1000, "Sent", timeout=240, containing=t.encode())
    sent_counts = subjects(sent, t)
    assert len(sent_counts) == 1000 and set(sent_counts.values()) == {1}, "lost or duplicated Sent copies"
    assert all("$mw_op_zhang" in m.flags for m in sent)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(cfg_path: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "mailwarden.cli", "--config", str(cfg_path), "serve"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"serve did not listen on {port}:\n{log.read_text()[-3000:]}")


def test_sigkill_after_250_before_relay_delivers_exactly_once(upstream, tmp_path):
    smtp_port = free_port()
    cfg = gateway_config(tmp_path, upstream)
    assert cfg.store is not None
    store = open_store(cfg.store)
    seed(store)
    store.close()
    cfg_path = tmp_path / "mailwarden.toml"
    cfg_path.write_text(
        (Path(__file__).with_name("serve.toml.in").read_text())
        .format(imaps=upstream.imaps_port, submission=upstream.submission_port, ca=upstream.ca_file, smtp=smtp_port)
    )
    log = tmp_path / "serve.log"
    t = token()
    upstream.stop_smtp()
    proc = start_serve(cfg_path, log)
    try:
        wait_port(smtp_port, proc, log)
        assert cfg.listen is not None
        tls = ssl.create_default_context(cafile=str(tmp_path / "data" / "tls" / "gateway.crt"))
        replies = send_many(lambda login: submission_client(smtp_port, tls, login), t, 5)
        assert all(code == 250 for code, _ in replies)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        upstream.start_smtp()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc = start_serve(cfg_path, log)
    try:
        got = upstream.wait_for("catchall@buyer.test", 5, timeout=60, containing=t.encode())
        time.sleep(2)  # would a duplicate follow?
        got = upstream.fetch_all("catchall@buyer.test")
        counts = subjects(got, t)
        assert len(counts) == 5 and set(counts.values()) == {1}
        upstream.wait_for(SHARED, 5, "Sent", timeout=60, containing=t.encode())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    store = open_store(cfg.store)
    with Session(store.engine) as s:
        assert not s.exec(select(SpoolItem).where(col(SpoolItem.stage).in_(("relay", "append")))).all()
    assert store.audit.verify().ok
    store.close()


async def test_a_sent_copy_whose_record_was_lost_is_not_filed_twice(gateway):
    """The deliverer stored a Sent copy and died before recording it (simulated: the row is
    set back to the append stage, as tried before, and the file back into the spool).  The
    next try finds the copy by its X-Mailwarden-Ref and records it instead of filing it again."""
    t = token()

    async def stage_becomes_done(item_id: int | None = None) -> SpoolItem:
        for _ in range(200):
            with Session(gateway.store.engine) as s:  # a new session each time: a fresh snapshot
                q = select(SpoolItem).order_by(col(SpoolItem.id).desc())
                item = s.get(SpoolItem, item_id) if item_id is not None else s.exec(q).first()
            # done is recorded first, the bytes filed under messages/ a moment later
            if item is not None and item.stage == "done" and filed_path(item).exists():
                return item
            await asyncio.sleep(0.05)
        raise AssertionError(f"the spool item did not get done and filed: {item}")

    def filed_path(item: SpoolItem) -> Path:
        return gateway.store.data_dir / "messages" / item.blob[:4] / item.blob[4:6] / item.blob

    await asyncio.to_thread(send_many, gateway.client, t, 1)
    sent = await asyncio.to_thread(gateway.upstream.wait_for, SHARED, 1, "Sent", containing=t.encode())
    assert b"X-Mailwarden-Ref: " in sent[0].raw
    item = await stage_becomes_done()
    filed = filed_path(item)
    filed.replace(gateway.store.spool_dir / item.blob)  # a crash before the record: not filed yet
    with Session(gateway.store.engine) as s:
        row = s.get(SpoolItem, item.id)
        row.stage, row.attempts = "append", 1
        s.add(row)
        s.commit()
    gateway.gw.relay.wake()
    await stage_becomes_done(item.id)
    assert filed.exists()
    again = await asyncio.to_thread(gateway.upstream.fetch_all, SHARED, "Sent")
    assert len([m for m in again if t.encode() in m.raw]) == 1
