"""Benchmark of outbound mail: ``python tests/bench/bench_outbound.py [--quick] [--profile DIR]``.

Run from the repository root as root: it starts a private Dovecot + Postfix (LocalUpstream);
about 95 s in full, 30 s with ``--quick``. The same load goes, in one run, (1) ``gateway``:
through ``mailwarden serve`` in its own process (SQLite, durable commits), STARTTLS + AUTH as
``zhang``; it relays to the upstream's submission port and appends a tagged Sent copy;
(2) ``direct``: to the upstream's submission port, STARTTLS + AUTH as ``sales@company.test``
(the same TLS and AUTH costs: the comparison the targets are held against); (2b) ``direct+Sent``:
the same, each client then APPENDing its copy to Sent over IMAPS, as a mail client sending
straight to the company mailbox does (through the gateway it must not: the gateway files the
tagged copy), so that both legs end with the same work done: the ``vs client`` columns compare
with it (``done``: until all are delivered and in Sent); (3) ``smtp-source``: Postfix's C load
generator on the plain port-25 style port, as a reference (no latency figures).

Load: N messages of 10 KB (N=1000) and of 1 MB (N=100; ``--quick``: 200 and 20) from 10
clients, one connection each, all logged in before the clock starts, each sending its next
message as soon as the last is answered (saturation: there the time to 250 is mostly queueing,
10 clients / throughput).  Then N/2 messages of 10 KB at a paced 20, 100 and 150 msg/s
(``@20/s`` ... rows), to show the time to 250 of a busy but not saturated gateway. Reported:
accepted msg/s (last 250); delivered msg/s (all N in catchall@buyer.test, counted with IMAP
STATUS); Sent msg/s (all N copies in Sent); p50/p99 time to 250 (from the client having written
the final "." to the reply); the gateway's peak RSS (VmHWM, a fresh gateway per size) and CPU
per message; ratio gateway/direct; and, in a second table, each leg's CPU per message on the
whole machine by who spent it (:class:`MachineCPU`), until all were delivered (and in Sent):
Postfix and Dovecot share the cores, so it shows how much of a leg is the upstream's own work.
Then one 50 MB message through the gateway: its peak RSS rise over the RSS
before, as a multiple of the message size.  Gateway figures are serve and its delivery process
together (peak RSS: the sum of each one's peak). Targets (issue 2): ratio >= 0.5 at 10 KB, p99 to
250 <= 50 ms (gateway rows), a 50 MB message never in memory more than twice; a miss is marked
MISS. A message the gateway held for review (its 250 says so) is not relayed: the leg does not
wait for it, and each is named after the tables with the reason the rules gave (an ordinary
quote held there is a defect to look into, not a stall). The exit status is non-zero only when
the run itself failed (an error reply, a lost or duplicated message). ``--profile DIR`` records the gateway with py-spy during each gateway leg
as collapsed stacks, DIR/gateway-<size>.txt (render with flamegraph.pl or speedscope).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import imaplib
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from mailwarden.gateway.config import load_config
from mailwarden.gateway.upstream.imapclient import IMAPClient
from mailwarden.gateway.upstream.imapwire import Raw
from mailwarden.gateway.upstream.smtpwire import Reply, ReplyReader
from mailwarden.testing.localupstream import LocalUpstream, MailAccount
from mailwarden.store import open_store
from mailwarden.store.directory import add_customer, add_user
from mailwarden.store.quarantine import list_held

SHARED = MailAccount("sales@company.test", "company-secret")
CATCHALL, RCPT = "catchall@buyer.test", "max@buyer.test"
LOGIN, PASSWORD = "zhang", "zhang-password"
CLIENTS = 10
BIG = 50_000_000  # "50 MB", under the default max_message_size of 50 MiB
PACED = (20.0, 100.0, 150.0)  # msg/s offered in the paced legs: far above a 50-person sales team's peak
POLL = 0.05  # seconds between two counts of a folder
STALL = 90.0  # a delivery count that does not move for this long: messages were lost
HELD_REPLY = re.compile(r"Held for review as (\d+)")
HELD: list[str] = []  # one line per message a gateway leg held: leg, subject, reason


class RunFailed(Exception):
    """The run itself went wrong (not a missed target)."""


def human(size: int) -> str:
    if size < 1 << 20:
        return f"{size // 1024} KB"
    return f"{size >> 20} MB" if size % (1 << 20) == 0 else f"{size / 1e6:.0f} MB"


def message(size: int, token: str, i: int) -> bytes:
    """About ``size`` bytes, CRLF, no line starting with '.': a text quote, plus a JPEG above 64 KB
    (a photo: the rules read no text out of it, so this measures the mail path, not extraction)."""
    head = (f"From: Zhang San <zhang@company.test>\r\nTo: Max <{RCPT}>\r\nSubject: Quote {token} #{i}\r\n"
            f"Message-ID: <{token}.{i}@company.test>\r\nMIME-Version: 1.0\r\n")
    line = "Item {:05d}: 600x600 LED panel 40 W, 4000 K, UGR<19, FOB Ningbo USD 12.{:02d}\r\n"
    lines = max(1, (min(size, 64 * 1024) - len(head) - 110) // len(line.format(0, 0)))
    text = b"Dear Max,\r\n\r\nplease find our quotation for the LED panels below.\r\n" + b"".join(
        line.format(k, k % 100).encode() for k in range(lines))
    if size <= 64 * 1024:
        return (head + "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode() + text
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom((size - len(text) - 600) * 57 // 78)
    photo = base64.encodebytes(jpeg).replace(b"\n", b"\r\n")
    return (head + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode() + text + (
        b'\r\n--b1\r\nContent-Type: image/jpeg; name="led-panel.jpg"\r\nContent-Transfer-Encoding: base64\r\n'
        b'Content-Disposition: attachment; filename="led-panel.jpg"\r\n\r\n') + photo + b"--b1--\r\n"


class Counter:
    """Counts one folder with IMAP ``STATUS (MESSAGES)`` (no bodies fetched) on its own connection."""

    def __init__(self, up: LocalUpstream, address: str, folder: str) -> None:
        self.imap, self.folder, self.label = up.imap(address), folder, f"{address} {folder}"

    def count(self) -> int:
        typ, data = self.imap.status(self.folder, "(MESSAGES)")
        m = re.search(rb"MESSAGES (\d+)", data[0] or b"") if typ == "OK" else None
        return int(m.group(1)) if m else 0  # no Sent folder yet

    def clear(self) -> None:
        """Expunge everything in the folder: each leg starts with the same empty folder (a Maildir
        delivery costs Dovecot more the more the folder holds, so a later leg would pay for the
        earlier ones)."""
        typ, data = self.imap.select(self.folder)
        if typ != "OK":
            return  # no Sent folder yet
        if int(data[0] or 0):
            self.imap.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
            self.imap.expunge()
        self.imap.close()


class Waiter(threading.Thread):
    """Polls a Counter every 50 ms until it reaches ``target``; ``when`` is the perf_counter() it did
    (more often, the polling itself cost Dovecot a noticeable share of the CPU the legs compete for)."""

    def __init__(self, counter: Counter, target: int) -> None:
        super().__init__(daemon=True)
        self.counter, self.target, self.when, self.last = counter, target, 0.0, -1
        self.stop = threading.Event()
        self.start()

    def run(self) -> None:
        moved = time.perf_counter()
        while not self.stop.is_set():
            n, now = self.counter.count(), time.perf_counter()
            if n >= self.target:
                self.when, self.last = now, n
                return
            if n != self.last:
                self.last, moved = n, now
            elif now - moved > STALL:
                return
            time.sleep(POLL)

    def result(self) -> float:
        self.join()
        if not self.when:
            raise RunFailed(f"{self.counter.label}: stuck at {self.last} of {self.target} messages for {STALL:g} s")
        return self.when


class MachineCPU:
    """CPU time of every process on the machine during a leg, by who spent it.

    From /proc: each process's user + system time plus that of its children already reaped
    (Postfix and Dovecot fork short-lived ones), grouped by session: each server's master runs
    in a session of its own, and so does each gateway (:data:`LIVE_GATEWAYS`). A process that
    exits during the leg is reaped by its parent, which then holds its whole life's time: what it
    had spent before the leg is taken off again. ``kernel``: the kernel's own threads (file system
    work after writes and fsyncs, for instance; one that ends during a leg takes its time with it);
    ``bench``: this process (the load generator and the folder counters' client side; with
    ``--profile``, py-spy too) and smtp-source; ``other``: anything else on the machine. The
    counters' server side, an IMAP STATUS every 50 ms on two connections, is Dovecot's: it weighs
    most in the slow paced legs."""

    PARTS = ("gateway", "Postfix", "Dovecot", "kernel", "bench", "other")
    LIVE_GATEWAYS: set[int] = set()  # session ids of the gateways running now (each is its own session)

    def __init__(self, up: LocalUpstream) -> None:
        self.sessions = {os.getsid(0): "bench", **dict.fromkeys(self.LIVE_GATEWAYS, "gateway")}
        for name, pid in up.server_pids().items():
            if pid is not None:
                with contextlib.suppress(OSError):  # gone meanwhile
                    self.sessions[os.getsid(pid)] = name.capitalize()
        self.before = self._read()

    def _read(self) -> dict[int, tuple[str, str, int]]:
        """pid -> (start time, part, clock ticks so far, its reaped children's included)."""
        out = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                f = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            kthread = int(f[6]) & 0x00200000  # PF_KTHREAD (pid 1 is in session 0 too)
            part = "kernel" if kthread else self.sessions.get(int(f[3]), "other")
            out[int(entry.name)] = (f[19], part, sum(int(x) for x in f[11:15]))
        return out

    def per_message(self, n: int) -> dict[str, float]:
        """Milliseconds of CPU per message since construction, by part."""
        now = self._read()
        spent = dict.fromkeys(self.PARTS, 0)
        for pid, (start, part, ticks) in now.items():
            was = self.before.get(pid)
            spent[part] += ticks - (was[2] if was is not None and was[0] == start else 0)
        for pid, (start, part, ticks) in self.before.items():
            if part != "kernel" and (pid not in now or now[pid][0] != start):
                spent[part] -= ticks  # its parent's reaped time now holds this again
        return {k: max(0, v) * 1e3 / os.sysconf("SC_CLK_TCK") / n for k, v in spent.items()}


@dataclass
class Load:
    t0: float
    t_end: float
    latencies: list[float]
    held: list[int]  # the gateway's ids of the messages it held for review (250, not relayed)


class LoadClient:
    """The load generator's SMTP client: STARTTLS, AUTH PLAIN, then MAIL/RCPT/DATA, one command
    at a time, over asyncio streams with the gateway's own reply codec (no client library to
    re-normalise the payload or time the upload with the reply)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.replies = reader, writer, ReplyReader()

    @classmethod
    async def connect(cls, port: int, tls: ssl.SSLContext, login: str, password: str) -> LoadClient:
        reader, writer = await asyncio.open_connection("localhost", port)
        c = cls(reader, writer)
        await c.expect(None, 220)
        await c.expect(b"EHLO bench.localhost\r\n", 250)
        await c.expect(b"STARTTLS\r\n", 220)
        await writer.start_tls(tls, server_hostname="localhost")
        await c.expect(b"EHLO bench.localhost\r\n", 250)
        token = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
        await c.expect(f"AUTH PLAIN {token}\r\n".encode(), 235)
        return c

    async def reply(self) -> Reply:
        while (reply := self.replies.next_reply()) is None:
            data = await asyncio.wait_for(self.reader.read(65536), 300)
            if not data:
                raise RunFailed("the server closed the connection")
            self.replies.receive_data(data)
        return reply

    async def expect(self, command: bytes | None, code: int) -> Reply:
        if command is not None:
            self.writer.write(command)
        reply = await self.reply()
        if reply.code != code:
            raise RunFailed(f"{(command or b'greeting').split(b' ')[0].decode().strip()} refused: {reply}")
        return reply

    async def timed_send(self, sender: str, rcpt: str, payload: bytes) -> tuple[float, Reply]:
        """One message; the seconds from the final '.' leaving the client's buffer to the reply,
        and the reply."""
        await self.expect(f"MAIL FROM:<{sender}>\r\n".encode(), 250)
        await self.expect(f"RCPT TO:<{rcpt}>\r\n".encode(), 250)
        await self.expect(b"DATA\r\n", 354)
        self.writer.write(payload + b".\r\n")
        await self.writer.drain()  # until the transport has taken the bytes
        t = time.perf_counter()
        reply = await self.reply()
        took = time.perf_counter() - t
        if reply.code != 250:
            raise RunFailed(f"message refused after DATA: {reply}")
        return took, reply

    async def quit(self) -> None:
        with contextlib.suppress(Exception):
            await self.expect(b"QUIT\r\n", 221)
        self.close()

    def close(self) -> None:
        self.writer.close()


@dataclass
class SentCopy:
    """Where a client sending straight to the company mailbox files its own copy (IMAPS)."""

    port: int
    tls: ssl.SSLContext
    login: str
    password: str


async def send_load(port: int, tls: ssl.SSLContext, login: str, password: str, sender: str,
                    payloads: list[bytes], rate: float | None = None, sent_copy: SentCopy | None = None) -> Load:
    """CLIENTS connections, logged in before the clock starts, each sending its share in turn:
    as fast as they are answered, or (``rate``) at that many messages/s together, evenly spaced.
    ``sent_copy``: after each 250, the client APPENDs the message to Sent on an IMAP connection
    of its own, as Thunderbird, Outlook and Foxmail do when they send straight to the mailbox
    (through the gateway they must not: the gateway files the tagged copy)."""
    clients: list[LoadClient] = []
    boxes: list[IMAPClient] = []
    latencies: list[float] = []
    held: list[int] = []
    go = asyncio.Event()

    async def one(k: int, c: LoadClient, share: list[bytes]) -> None:
        await go.wait()
        for i, p in enumerate(share):
            if rate:
                slot = t0 + (i * CLIENTS + k) / rate
                await asyncio.sleep(max(0.0, slot - time.perf_counter()))
            took, reply = await c.timed_send(sender, RCPT, p)
            latencies.append(took)
            if (m := HELD_REPLY.search(reply.text)) is not None:
                held.append(int(m.group(1)))
            if boxes:
                reply = await boxes[k].command("APPEND", "Sent", Raw("(\\Seen)"), p)
                if not reply.ok:
                    raise RunFailed(f"APPEND to Sent refused: {reply.status}")
        await c.quit()

    try:
        for _ in range(CLIENTS):
            clients.append(await LoadClient.connect(port, tls, login, password))
            if sent_copy is not None:
                boxes.append(await IMAPClient.connect("localhost", sent_copy.port, tls=sent_copy.tls, timeout=300))
                if not (await boxes[-1].command("LOGIN", sent_copy.login, sent_copy.password)).ok:
                    raise RunFailed("the direct client's IMAP login failed")
        tasks = [asyncio.create_task(one(k, c, payloads[k::CLIENTS])) for k, c in enumerate(clients)]
        t0 = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
        return Load(t0, time.perf_counter(), latencies, held)
    finally:
        for c in clients:
            c.close()
        for b in boxes:
            await b.logout()


class GatewayProcess:
    """``mailwarden --config FILE serve`` on a fresh data dir with ``zhang`` and a customer for buyer.test."""

    def __init__(self, root: Path, up: LocalUpstream) -> None:
        root.mkdir(parents=True)
        self.up = up
        self.log = root / "serve.log"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (root / "upstream.password").write_text(up.password_for(SHARED.address) + "\n")
        path = root / "mailwarden.toml"
        raw = {"company": {"name": "Bright Lighting", "domains": ["company.test"]},
               "upstream": {"imap": f"localhost:{up.imaps_port}", "imap_tls": "implicit",
                            "smtp": f"localhost:{up.submission_port}", "smtp_tls": "starttls",
                            "username": SHARED.address, "password_file": "upstream.password", "ca_file": str(up.ca_file)},
               "listen": {"smtp": f"127.0.0.1:{self.port}", "smtps": "", "hostname": "localhost"},
               "store": {"data_dir": "data"}, "outbound": {"retry_initial": "0.5s"}}
        # JSON strings and lists are TOML too
        path.write_text("".join(f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in kv.items())
                                for section, kv in raw.items()))
        self.config = path
        cfg = load_config(path, {"store"})
        assert cfg.store is not None
        store = open_store(cfg.store)
        with Session(store.engine) as s:
            add_user(session=s, login=LOGIN, name="Zhang San", password=PASSWORD)
            add_customer(session=s, name="Acme Lighting GmbH", domains=["buyer.test"], owner=LOGIN)
            s.commit()
        store.close()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "mailwarden.cli", "--config", str(path), "serve"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        MachineCPU.LIVE_GATEWAYS.add(self.proc.pid)  # its session id: start_new_session
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RunFailed(f"the gateway did not start:\n{self.log.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        self.tls = ssl.create_default_context(cafile=str(root / "data" / "tls" / "gateway.crt"))

    def held(self, ids: list[int]) -> list[str]:
        """``subject: reason`` of each held message in *ids*, as ``mailwarden quarantine`` shows it."""
        cfg = load_config(self.config, {"store"})
        assert cfg.store is not None
        store = open_store(cfg.store)
        try:
            with Session(store.engine) as s:
                found = {h.id: h for h in list_held(session=s)}
        finally:
            store.close()
        return [f"{found[i].subject}: {found[i].reason}" if i in found else f"message {i}: no longer held"
                for i in ids]

    def pids(self) -> list[int]:
        """serve and its processes (the delivery process): all of them count."""
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            try:
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except OSError:
                pass
        return out

    def memory_by_pid(self, key: str) -> dict[int, int]:
        out = {}
        for pid in self.pids():
            try:
                m = re.search(rf"^{key}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
            except OSError:
                continue
            out[pid] = int(m.group(1)) if m else 0
        return out

    def memory_kb(self, key: str) -> int:
        """Summed over the processes (for VmHWM: the sum of each one's peak, an upper bound)."""
        return sum(self.memory_by_pid(key).values())

    def reset_peak(self) -> None:
        """Restart VmHWM from the current RSS (Linux >= 4.0)."""
        for pid in self.pids():
            Path(f"/proc/{pid}/clear_refs").write_text("5")

    def stop(self) -> None:
        MachineCPU.LIVE_GATEWAYS.discard(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Row:
    size: int
    n: int
    leg: str
    accepted: float
    delivered: float
    sent: float | None = None
    p50: float | None = None
    p99: float | None = None
    rss_mb: float | None = None
    cpu_ms: float | None = None  # gateway CPU per message, first send to last Sent copy
    complete: float = 0.0  # msg/s until all are delivered and (where counted) in Sent
    t_accepted: float = 0.0  # perf_counter() of the last 250
    machine: dict[str, float] | None = None  # ms of CPU per message on the whole machine, by part


def leg(name: str, size: int, payloads: list[bytes], counters: dict[str, Counter], *,
        gw: GatewayProcess | None = None, up: LocalUpstream | None = None, rate: float | None = None,
        client_copy: bool = False) -> Row:
    """Send the payloads through the gateway (or direct to ``up``, with ``client_copy`` each
    client filing its own copy in Sent); wait until all are delivered (and in Sent)."""
    n = len(payloads)
    for c in counters.values():
        c.clear()
    base = {k: c.count() for k, c in counters.items()}
    waits = {k: Waiter(counters[k], base[k] + n) for k in (("inbox", "sent") if gw or client_copy else ("inbox",))}
    assert up is not None or gw is not None
    machine = MachineCPU(up or gw.up)  # type: ignore[union-attr]
    try:
        if gw is not None:
            load = asyncio.run(send_load(gw.port, gw.tls, LOGIN, PASSWORD, "zhang@company.test", payloads, rate))
        else:
            assert up is not None
            copy = SentCopy(up.imaps_port, up.client_ssl_context(), SHARED.address, SHARED.password) if client_copy else None
            load = asyncio.run(send_load(up.submission_port, up.client_ssl_context(), SHARED.address,
                                         SHARED.password, SHARED.address, payloads, rate, copy))
        if load.held:  # held for review: never delivered (nor filed in Sent) unless released
            assert gw is not None
            for w in waits.values():
                w.target -= len(load.held)
            HELD.extend(f"{human(size)} {name}: {line}" for line in gw.held(load.held))
        done = {k: w.result() for k, w in waits.items()}
    finally:
        for w in waits.values():
            w.stop.set()
            w.join(5)
    expected = n - len(load.held)
    for k in waits:
        if (got := counters[k].count() - base[k]) != expected:
            raise RunFailed(f"{name}: {counters[k].label} holds {got} new messages, expected {expected} "
                            f"({'duplicates' if got > expected else 'lost'})")
    q = statistics.quantiles(load.latencies, n=100, method="inclusive") if n > 1 else load.latencies * 99
    spent = machine.per_message(n)
    return Row(size, n, name, n / (load.t_end - load.t0), n / (done["inbox"] - load.t0),
               n / (done["sent"] - load.t0) if "sent" in done else None, q[49] * 1e3, q[98] * 1e3,
               gw.memory_kb("VmHWM") / 1024 if gw else None, spent["gateway"] if gw else None,
               n / (max(done.values()) - load.t0), load.t_end, spent)


def smtp_source_leg(up: LocalUpstream, size: int, n: int, counters: dict[str, Counter]) -> Row | None:
    tool = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not os.access(tool, os.X_OK):
        return None
    w = Waiter(counters["inbox"], counters["inbox"].count() + n)
    machine = MachineCPU(up)
    try:
        t0 = time.perf_counter()
        subprocess.run([tool, "-d", "-s", str(CLIENTS), "-m", str(n), "-l", str(size), "-f", SHARED.address,
                        "-t", RCPT, "-S", "smtp-source", f"{up.host}:{up.smtp_port}"],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
        t1 = time.perf_counter()
        done = w.result()
        return Row(size, n, "smtp-source", n / (t1 - t0), n / (done - t0), machine=machine.per_message(n))
    finally:
        w.stop.set()
        w.join(5)


def big_message(gw: GatewayProcess, counters: dict[str, Counter]) -> str:
    """One 50 MB message.  Memory: the RSS of serve and its delivery process, summed, sampled
    every 2 ms (what is held at any one moment), and each process's own peak (VmHWM, which no
    sampling can miss); the larger of the two rises is held against the target."""
    payload = message(BIG, "big", 0)
    before = gw.memory_by_pid("VmRSS")
    rss0 = sum(before.values())
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), gw.memory_kb("VmRSS")))
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    gw.reset_peak()
    sampler.start()
    try:
        big = leg("gateway", len(payload), [payload], counters, gw=gw)
    finally:
        stop.set()
        sampler.join()
    peaks = {pid: hwm - before.get(pid, 0) for pid, hwm in gw.memory_by_pid("VmHWM").items()}
    together = max((r for _, r in samples), default=rss0) - rss0
    until_250 = max((r for t, r in samples if t <= big.t_accepted), default=rss0) - rss0
    rise = max(together, *peaks.values())
    factor = rise * 1024 / len(payload)
    own = ", ".join(f"{'serve' if pid == gw.proc.pid else 'delivery'} +{kb / 1024:.0f} MB"
                    for pid, kb in sorted(peaks.items(), key=lambda kv: kv[0] != gw.proc.pid)
                    if pid == gw.proc.pid or kb >= 1024)  # not multiprocessing's idle resource tracker
    return (f"{len(payload) / 1e6:.0f} MB message via the gateway: 250 after {1 / big.accepted:.1f} s, delivered "
            f"after {1 / big.delivered:.1f} s, in Sent after {1 / (big.sent or 1):.1f} s. RSS before "
            f"{rss0 / 1024:.0f} MB; held at once (both processes, sampled): +{together / 1024:.0f} MB, of which "
            f"until the 250: +{until_250 / 1024:.0f} MB; each process's peak: {own}. "
            f"Peak = {factor:.2f}x the message (target <= 2x){' MISS' if factor > 2 else ''}")


def table(rows: list[Row]) -> str:
    out = [["size", "N", "leg", "accepted/s", "delivered/s", "Sent/s", "p50 ms", "p99 ms", "gw peak RSS MB",
            "gw CPU ms/msg", "ratio acc", "ratio dlv", "vs client acc", "vs client done"]]
    direct = {r.size: r for r in rows if r.leg == "direct"}
    client = {r.size: r for r in rows if r.leg == "direct+Sent"}

    def f(v: float | None, fmt: str = "{:.1f}", miss: bool = False) -> str:
        return "-" if v is None else fmt.format(v) + (" MISS" if miss else "")

    for r in rows:
        d = direct.get(r.size) if r.leg == "gateway" else None
        ra, rd = (r.accepted / d.accepted, r.delivered / d.delivered) if d else (None, None)
        c = client.get(r.size) if r.leg == "gateway" else None
        ca, cd = (r.accepted / c.accepted, r.complete / c.complete) if c else (None, None)
        small = r.size <= 64 * 1024
        out.append([human(r.size), str(r.n), r.leg, f(r.accepted), f(r.delivered), f(r.sent), f(r.p50),
                    f(r.p99, miss=r.leg.startswith("gateway") and (r.p99 or 0) > 50), f(r.rss_mb, "{:.0f}"), f(r.cpu_ms),
                    f(ra, "{:.2f}", small and (ra or 1) < 0.5), f(rd, "{:.2f}", small and (rd or 1) < 0.5),
                    f(ca, "{:.2f}"), f(cd, "{:.2f}")])
    return _columns(out)


def _columns(out: list[list[str]]) -> str:
    """Columns: the first and third left-aligned (size, leg), the rest right-aligned."""
    widths = [max(len(row[i]) for row in out) for i in range(len(out[0]))]
    return "\n".join("  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in out)


def machine_table(rows: list[Row]) -> str:
    """Where the machine's CPU went in each leg, per message, until all were delivered (and in Sent)."""
    out = [["size", "N", "leg", *MachineCPU.PARTS, "total"]]
    for r in rows:
        if r.machine is not None:
            out.append([human(r.size), str(r.n), r.leg, *(f"{r.machine[k]:.2f}" for k in MachineCPU.PARTS),
                        f"{sum(r.machine.values()):.2f}"])
    return _columns(out)


def profiler(pid: int, outdir: Path | None, label: str) -> subprocess.Popen[bytes] | None:
    if outdir is None:
        return None
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--format", "raw", "--threads", "--nonblocking", "--subprocesses",
                             "-o", str(outdir / f"gateway-{label.replace(' ', '')}.txt")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(p: subprocess.Popen[bytes] | None) -> None:
    if p is not None and p.poll() is None:
        p.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N=200 (10 KB) and 20 (1 MB)")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the gateway during each gateway leg")
    args = ap.parse_args()
    if args.profile:
        if not shutil.which("py-spy"):
            ap.error("--profile needs py-spy: pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the clean-up below runs
    sizes = [(10 * 1024, 200 if args.quick else 1000), (1 << 20, 20 if args.quick else 100)]
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    print(f"machine: nproc {len(os.sched_getaffinity(0))} ({cpu.group(1) if cpu else '?'}), {platform.platform()}, "
          f"Python {platform.python_version()}; "
          "the load generator, Postfix and Dovecot share these cores", flush=True)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="mw-bench-"))
    up = LocalUpstream(tmp / "upstream", [SHARED])
    gw: GatewayProcess | None = None
    prof: subprocess.Popen[bytes] | None = None
    counters: dict[str, Counter] = {}
    rows: list[Row] = []
    big_line, failed = "", ""
    try:
        up.start()
        counters = {"inbox": Counter(up, CATCHALL, "INBOX"), "sent": Counter(up, SHARED.address, "Sent")}
        for k, (size, n) in enumerate(sizes):
            gw = GatewayProcess(tmp / f"gateway-{k}", up)
            warm = [message(size, f"warm{k}", i) for i in range(CLIENTS)]  # imports, connections, caches
            leg("direct", size, warm, counters, up=up)
            leg("gateway", size, warm, counters, gw=gw)
            rows.append(leg("direct", size, [message(size, f"d{k}", i) for i in range(n)], counters, up=up))
            rows.append(leg("direct+Sent", size, [message(size, f"c{k}", i) for i in range(n)], counters, up=up,
                            client_copy=True))
            prof = profiler(gw.proc.pid, args.profile, human(size))
            rows.append(leg("gateway", size, [message(size, f"g{k}", i) for i in range(n)], counters, gw=gw))
            stop_profiler(prof)
            if size <= 64 * 1024:  # the time to 250 when the gateway is busy but not saturated
                for rate in PACED:
                    paced = [message(size, f"p{k}-{rate:g}", i) for i in range(n // 2)]
                    rows.append(leg(f"direct @{rate:g}/s", size, paced, counters, up=up, rate=rate))
                    rows.append(leg(f"gateway @{rate:g}/s", size, paced, counters, gw=gw, rate=rate))
            if (ref := smtp_source_leg(up, size, n, counters)) is not None:
                rows.append(ref)
            print(f"{human(size)} done after {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            gw.stop()
            gw = None
        gw = GatewayProcess(tmp / "gateway-big", up)
        leg("gateway", 10 * 1024, [message(10 * 1024, "warm-big", i) for i in range(CLIENTS)], counters, gw=gw)
        big_line = big_message(gw, counters)
    except (RunFailed, OSError, asyncio.TimeoutError, imaplib.IMAP4.error, subprocess.SubprocessError) as exc:
        failed = f"{type(exc).__name__}: {exc}"
        if gw is not None:
            failed += f"\n--- gateway log tail ---\n{gw.log.read_text()[-2000:]}"
    except KeyboardInterrupt:
        failed = "interrupted"
    finally:
        stop_profiler(prof)
        for c in counters.values():
            try:
                c.imap.logout()
            except (OSError, imaplib.IMAP4.error):
                pass
        if gw is not None:
            gw.stop()
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(rows))
    print("\nCPU per message on the whole machine, ms (until all were delivered and in Sent; the parts are "
          "described in MachineCPU):")
    print(machine_table(rows))
    if big_line:
        print(big_line)
    if HELD:
        print(f"\nHELD for review: {len(HELD)} messages (not delivered; the legs did not wait for them):")
        print("\n".join(f"  {line}" for line in HELD))
    print(f"(gateway: SQLite, WAL, synchronous=FULL; whole run {time.monotonic() - started:.0f} s)")
    if failed:
        print(f"RUN FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
