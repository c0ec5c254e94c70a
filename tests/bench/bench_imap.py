"""Benchmark of the salespeople's IMAP server: ``python tests/bench/bench_imap.py [--quick]``.

Run from the repository root as root: it starts a private Dovecot + Postfix (LocalUpstream),
fills the company mailbox with N mixed messages (:mod:`mailwarden.testing.mailboxes`; N = 2,000,
``--quick``: 300), imports them with ``mailwarden sync --initial`` into a fresh store, adds one
admin who owns the one customer every sender belongs to (so their INBOX holds all N), and runs
``mailwarden serve`` with ``[listen] imaps``.  The same messages are then read, in the same run,
from the gateway (the admin's INBOX) and straight from the lab Dovecot (the company INBOX):

1. ``UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)``: seconds, median of 3;
2. ``UID FETCH 1:* BODY.PEEK[]``: MB/s, median of 3;
3. while (1) runs on one connection, a second connection's NOOP round trips (ms);
4. memory per idle connection: 1,000 connections logged in, INBOX selected, in IDLE (``--quick``:
   200); the gateway's RSS before and after, beside the sum of Dovecot's ``imap`` and
   ``imap-login`` processes (one of each per TLS connection; Dovecot's ``process_limit`` of 100
   caps it at 90 connections here, so its figure is per connection of a smaller crowd);
5. new mail: a message delivered through Postfix, until a client in IDLE sees EXISTS, at the
   gateway (Dovecot -> the gateway's sync -> the store -> the view) and at Dovecot directly;
6. imaptest's stress run (``MAILWARDEN_IMAPTEST`` names the binary, its ``tests/default.mbox``
   beside it; unset: skipped) for 30 s with 10 clients in the folder ``bench``: commands/s, and
   CPU per command of the gateway's process against all of Dovecot's processes.

Targets (the IMAP issue): (1) <= 3x Dovecot's time, (2) >= 0.8x its MB/s, (3) no NOOP answered
later than 50 ms, (4) <= 50 KB per connection, (5) <= 2 s, (6) >= 0.8x the commands/s and
<= 2x the CPU per command.  One table: metric | gateway | Dovecot | ratio | target | OK/MISS.  The
exit status is non-zero only when the run itself failed (a server missing messages, a client
error).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailwarden.testing.localupstream import LocalUpstream, MailAccount
from mailwarden.testing.mailboxes import fill_maildir, mixed_messages

COMPANY, PASSWORD = "sales@company.test", "company-secret"
USER, USER_PASSWORD = "bench", "bench-password-1"
DOVECOT_IDLE_CAP = 90  # Dovecot's default process_limit (100) per service, less a margin
TICK = os.sysconf("SC_CLK_TCK")


class Failed(Exception):
    """The run itself went wrong: the table would not mean anything."""


@dataclass
class Server:
    """Where one side listens and whom to log in as."""

    name: str
    port: int
    user: str
    password: str


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the gateway's self-signed pair, the lab's own CA: both loopback
    return ctx


class Client:
    """A bare IMAP client: reads responses as bytes (literals skipped by length), so what is
    timed is the server, not a client library's parsing."""

    def __init__(self, server: Server) -> None:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=120)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = tls_context().wrap_socket(raw)
        self.file = self.sock.makefile("rb", buffering=1 << 20)
        self.n = 0
        self.file.readline()  # greeting
        self.command(f'LOGIN "{server.user}" "{server.password}"')

    def send(self, line: str) -> str:
        self.n += 1
        tag = f"b{self.n}"
        self.sock.sendall(f"{tag} {line}\r\n".encode())
        return tag

    def read_until(self, tag: str, seen: Callable[[bytes], None] | None = None) -> tuple[bytes, int]:
        """Read to the tagged answer; (its line, bytes read)."""
        want, total = tag.encode() + b" ", 0
        while True:
            line = self.file.readline()
            if not line:
                raise Failed(f"connection closed before {tag}")
            total += len(line)
            m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
            while m:  # a literal: skip its bytes, the line goes on after it
                size = int(m.group(1))
                self.file.read(size)
                total += size
                rest = self.file.readline()
                total += len(rest)
                m = re.search(rb"\{(\d+)\+?\}\r\n$", rest)
            if seen is not None:
                seen(line)
            if line.startswith(want):
                if not line[len(want):].startswith(b"OK"):
                    raise Failed(f"{tag}: {line.decode(errors='replace').strip()}")
                return line, total

    def command(self, line: str) -> int:
        return self.read_until(self.send(line))[1]

    def close(self) -> None:
        try:
            self.command("LOGOUT")
        except (Failed, OSError):
            pass
        self.sock.close()


# -- 1, 2, 3: FETCH ---------------------------------------------------------------------------

def timed_fetch(server: Server, items: str, expect: int, repeat: int = 3) -> tuple[float, int]:
    """Median seconds of ``UID FETCH 1:* items`` over ``repeat`` runs on one connection; bytes."""
    c = Client(server)
    try:
        got = {"n": 0}
        c.read_until(c.send("EXAMINE INBOX"))
        times, size = [], 0
        for _ in range(repeat):
            got["n"] = 0
            started = time.perf_counter()
            _, size = c.read_until(c.send(f"UID FETCH 1:* {items}"),
                                   lambda line: got.__setitem__("n", got["n"] + (b" FETCH (" in line)))
            times.append(time.perf_counter() - started)
            if got["n"] != expect:
                raise Failed(f"{server.name}: UID FETCH 1:* {items} gave {got['n']} messages of {expect}")
        return statistics.median(times), size
    finally:
        c.close()


def noop_during_fetch(server: Server, expect: int) -> tuple[list[float], float]:
    """NOOP round trips (s) on a second connection while the first fetches the listing; and
    the listing's seconds."""
    prober = Client(server)
    prober.command("EXAMINE INBOX")
    stop = threading.Event()
    rtts: list[float] = []

    def probe() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            prober.command("NOOP")
            rtts.append(time.perf_counter() - started)
            time.sleep(0.005)

    worker = threading.Thread(target=probe)
    worker.start()
    try:
        seconds, _ = timed_fetch(server, "(FLAGS ENVELOPE BODYSTRUCTURE)", expect, repeat=1)
    finally:
        stop.set()
        worker.join()
        prober.close()
    return rtts, seconds


# -- 4: idle connections ----------------------------------------------------------------------

def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (by the parent links in /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def dovecot_imap_memory(master: int) -> tuple[int, int, int]:
    """(RSS KB, PSS KB, processes) of Dovecot's imap and imap-login processes."""
    rss = pss = n = 0
    for pid in descendants(master):
        if comm(pid) in ("imap", "imap-login"):
            try:
                rss += rss_kb(pid)
                pss += pss_kb(pid)
                n += 1
            except OSError:
                pass
    return rss, pss, n


async def open_idlers(server: Server, count: int, *, box: str = "INBOX", batch: int = 10) -> list[asyncio.StreamWriter]:
    """``count`` connections logged in, ``box`` selected, in IDLE; ``batch`` log in at a time (the
    gateway limits connections not yet logged in per client address)."""
    ctx = tls_context()

    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=ctx, limit=1 << 20)
        await reader.readline()
        for tag, line in (("a", f'LOGIN "{server.user}" "{server.password}"'), ("s", f"SELECT {box}")):
            writer.write(f"{tag} {line}\r\n".encode())
            while True:
                answer = await reader.readline()
                if not answer:
                    raise Failed(f"{server.name}: connection closed after {line.split()[0]}")
                if answer.startswith(tag.encode() + b" "):
                    if b" OK" not in answer:
                        raise Failed(f"{server.name}: {line.split()[0]}: {answer.decode(errors='replace').strip()}")
                    break
        writer.write(b"i IDLE\r\n")
        while not (await reader.readline()).startswith(b"+"):
            pass
        writer.transport.set_write_buffer_limits(0)
        keep.append(reader)
        return writer

    keep: list[asyncio.StreamReader] = []  # the readers must live as long as their writers
    writers: list[asyncio.StreamWriter] = []
    for start in range(0, count, batch):
        writers += await asyncio.gather(*(one() for _ in range(min(batch, count - start))))
    return writers


def idle_memory(server: Server, count: int, measure: Callable[[], int], boxes: tuple[str, ...] = ("INBOX",)) -> list[int]:
    """``measure()`` (KB) before any, then after each crowd of ``count`` idle connections, one
    crowd per box in ``boxes``, each added to those before (none closed in between, so no crowd
    lives in memory a former one freed)."""
    async def run() -> list[int]:
        await asyncio.sleep(0.5)
        out, writers = [measure()], []
        for box in boxes:
            writers += await open_idlers(server, count, box=box)
            await asyncio.sleep(2)  # let the server settle: buffers, the views' first refresh
            out.append(measure())
        for w in writers:
            w.close()
        await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        return out
    return asyncio.run(run())


# -- 5: new mail ------------------------------------------------------------------------------

def inject(upstream: LocalUpstream, subject: str) -> None:
    raw = (f"From: Buyer <buyer7@buyer.test>\r\nTo: {COMPANY}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{uuid.uuid4().hex}@buyer.test>\r\n\r\nHello\r\n").encode()
    with smtplib.SMTP("127.0.0.1", upstream.smtp_port, timeout=30) as c:
        c.sendmail("buyer7@buyer.test", [COMPANY], raw)


def new_mail_latency(upstream: LocalUpstream, servers: list[Server], count: int) -> dict[str, list[float]]:
    """Deliver ``count`` messages one after another; per server, SMTP -> EXISTS in IDLE (s)."""
    clients = {s.name: Client(s) for s in servers}
    out: dict[str, list[float]] = {s.name: [] for s in servers}
    try:
        for c in clients.values():
            c.command("EXAMINE INBOX")
        for i in range(count):
            tags = {name: c.send("IDLE") for name, c in clients.items()}
            for c in clients.values():
                if not c.file.readline().startswith(b"+"):
                    raise Failed("IDLE refused")
            seen: dict[str, float] = {}

            def wait(name: str, c: Client) -> None:
                c.sock.settimeout(30)
                while b"EXISTS" not in c.file.readline():
                    pass
                seen[name] = time.perf_counter()

            threads = [threading.Thread(target=wait, args=item) for item in clients.items()]
            for t in threads:
                t.start()
            started = time.perf_counter()
            inject(upstream, f"new mail {i} {uuid.uuid4().hex[:6]}")
            for t in threads:
                t.join(40)
            for name, c in clients.items():
                if name not in seen:
                    raise Failed(f"{name}: no EXISTS within 30 s of delivery")
                out[name].append(seen[name] - started)
                c.sock.sendall(b"DONE\r\n")
                c.read_until(tags[name])
            time.sleep(0.3)
    finally:
        for c in clients.values():
            c.close()
    return out


# -- 6: imaptest -----------------------------------------------------------------------------

def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own utime+stime, reaped children's cutime+cstime) of ``pid``, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def tree_cpu(master: int) -> dict[int, float]:
    """CPU seconds of ``master`` itself plus its children reaped so far (key 0), and of each
    live descendant: two snapshots give the CPU the whole tree spent between them, processes
    that came and went included."""
    own, reaped = cpu_seconds(master)
    out = {0: own + reaped}
    for pid in descendants(master):
        try:
            out[pid] = sum(cpu_seconds(pid))
        except OSError:
            pass
    return out


def imaptest(binary: Path, server: Server, secs: int, cpu_of: Callable[[], dict[int, float]]) -> tuple[int, float, str]:
    """imaptest's stress run; (commands done, CPU seconds the server spent, its error lines)."""
    argv = [str(binary), "host=127.0.0.1", f"port={server.port}", "ssl=any-cert", f"user={server.user}",
            f"pass={server.password}", "box=bench", "clients=10", f"secs={secs}",
            f"mbox={binary.parent / 'tests' / 'default.mbox'}"]
    before = cpu_of()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=secs + 120)
    after = cpu_of()
    cpu = sum(after.values()) - sum(v for pid, v in before.items() if pid in after or pid == 0)
    # a process alive at the start and reaped since: its whole CPU is in the master's count now
    cpu -= sum(v for pid, v in before.items() if pid not in after and pid != 0)
    lines = proc.stdout.splitlines()
    try:
        at = max(i for i, line in enumerate(lines) if line.startswith("Totals:"))
        counts = [int(x) for x in lines[at + 4].split()]  # under the names and two lines of percentages
    except (ValueError, IndexError):
        raise Failed(f"{server.name}: imaptest printed no totals ({proc.returncode}): {proc.stdout[-1500:]}"
                     f"{proc.stderr[-1500:]}") from None
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "rror" in line]
    return sum(counts), cpu, "\n".join(errors[:8])


# -- the gateway ------------------------------------------------------------------------------

def mailwarden() -> str:
    return str(Path(sys.executable).with_name("mailwarden"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_config(upstream: LocalUpstream, work: Path, imaps: int, connections: int) -> Path:
    d = work / "gateway"
    d.mkdir()
    (d / "upstream.password").write_text(PASSWORD + "\n")
    (d / "mailwarden.toml").write_text(
        '[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
        f'[upstream]\nimap = "localhost:{upstream.imaps_port}"\nimap_tls = "implicit"\n'
        f'smtp = "localhost:{upstream.submission_port}"\nsmtp_tls = "starttls"\nusername = "{COMPANY}"\n'
        f'password_file = "upstream.password"\nca_file = "{upstream.ca_file}"\n[store]\ndata_dir = "data"\n'
        '[listen]\nsmtp = "127.0.0.1:0"\nsmtps = ""\nhostname = "localhost"\n'
        f'imaps = "127.0.0.1:{imaps}"\nmax_connections = {2 * connections + 100}\n')
    return d / "mailwarden.toml"


def cli(cfg: Path, *args: str, stdin: str | None = None) -> None:
    proc = subprocess.run([mailwarden(), "--config", str(cfg), *args], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise Failed(f"mailwarden {' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}")


def seed(cfg: Path) -> None:
    """One admin owning one customer that every sender of mixed_messages belongs to."""
    cli(cfg, "db", "upgrade")
    cli(cfg, "user", "add", USER, "--name", "Bench Admin", "--role", "admin", "--password-stdin",
        stdin=USER_PASSWORD + "\n")
    contacts = [arg for i in range(200) for arg in ("--contact", f"buyer{i}@gmail.com")]
    cli(cfg, "customer", "add", "Buyer Trading", "--domain", "buyer.test", *contacts, "--owner", USER)


def wait_listening(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failed(f"mailwarden serve exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise Failed(f"mailwarden serve did not listen on {port} in {seconds:.0f} s")


def message_count(server: Server) -> int:
    c = Client(server)
    try:
        counted = {"n": -1}
        c.read_until(c.send("EXAMINE INBOX"), lambda line: (m := re.match(rb"\* (\d+) EXISTS", line))
                     and counted.__setitem__("n", int(m.group(1))))
        return counted["n"]
    finally:
        c.close()


# -- the table --------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []
        self.notes: list[str] = []

    def add(self, metric: str, gw: str, dc: str, ratio: float | None, target: str, ok: bool | None) -> None:
        self.rows.append((metric, gw, dc, "" if ratio is None else f"{ratio:.2f}", target,
                          "" if ok is None else ("OK" if ok else "MISS")))

    def print(self) -> None:
        head = ("metric", "gateway", "Dovecot", "ratio", "target", "")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(len(head))]
        for r in [head, *self.rows]:
            print(" | ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                             enumerate(zip(r, widths))).rstrip())
        for note in self.notes:
            print(note)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 messages and 200 idle connections")
    ap.add_argument("--profile", type=Path, metavar="FILE",
                    help="run serve under cProfile, write its stats to FILE and print the top functions "
                         "(the gateway's figures are then slower than without)")
    args = ap.parse_args()
    n, idlers = (300, 200) if args.quick else (2000, 1000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, idlers * 4 + 1000)), hard))

    work = Path(tempfile.mkdtemp(prefix="mw-bench-imap-"))
    up = LocalUpstream(work / "upstream", [MailAccount(COMPANY, PASSWORD)])
    up.start()
    serve: subprocess.Popen | None = None
    table = Table()
    try:
        msgs = list(mixed_messages(n, seed=1))
        mb = sum(map(len, msgs)) / 1e6
        fill_maildir(up, COMPANY, msgs)
        dovecot = Server("Dovecot", up.imaps_port, COMPANY, PASSWORD)
        if message_count(dovecot) != n:
            raise Failed("Dovecot does not hold the mailbox")
        port = free_port()
        cfg = gateway_config(up, work, port, idlers)
        seed(cfg)
        started = time.monotonic()
        cli(cfg, "sync", "--initial")
        imported = time.monotonic() - started
        argv = [mailwarden()]
        if args.profile:
            argv = [sys.executable, "-m", "cProfile", "-o", str(args.profile.resolve()), "-m", "mailwarden.cli"]
        serve = subprocess.Popen([*argv, "--config", str(cfg), "serve"], stdout=subprocess.DEVNULL,
                                 stderr=open(work / "serve.log", "wb"))
        wait_listening(port, serve)
        gateway = Server("gateway", port, USER, USER_PASSWORD)
        if (got := message_count(gateway)) != n:
            raise Failed(f"the gateway's INBOX for {USER} holds {got} messages of {n}")
        print(f"mailbox: {n} messages ({mb:.0f} MB), imported in {imported:.0f} s; CPUs: {os.cpu_count()}")
        both = (gateway, dovecot)

        listing = {s.name: timed_fetch(s, "(FLAGS ENVELOPE BODYSTRUCTURE)", n)[0] for s in both}
        r = listing["gateway"] / listing["Dovecot"]
        table.add(f"UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE), s (median of 3)",
                  f"{listing['gateway']:.3f}", f"{listing['Dovecot']:.3f}", r, "<= 3x", r <= 3)

        rates = {}
        for s in both:
            seconds, size = timed_fetch(s, "BODY.PEEK[]", n)
            rates[s.name] = size / 1e6 / seconds
        r = rates["gateway"] / rates["Dovecot"]
        table.add("UID FETCH 1:* BODY.PEEK[], MB/s (median of 3)", f"{rates['gateway']:.1f}",
                  f"{rates['Dovecot']:.1f}", r, ">= 0.8x", r >= 0.8)

        noop = {s.name: noop_during_fetch(s, n)[0] for s in both}
        for label, f in (("p50", lambda v: pct(v, 50)), ("p99", lambda v: pct(v, 99)), ("max", max)):
            g, d = f(noop["gateway"]) * 1000, f(noop["Dovecot"]) * 1000
            table.add(f"NOOP during the listing, {label} ms", f"{g:.1f}", f"{d:.1f}", None,
                      "<= 50 ms" if label == "max" else "", g <= 50 if label == "max" else None)
        table.notes.append(f"NOOPs answered during one listing: gateway {len(noop['gateway'])}, "
                           f"Dovecot {len(noop['Dovecot'])}")

        before, after, empty = idle_memory(gateway, idlers, lambda: rss_kb(serve.pid), ("INBOX", "Drafts"))
        gw_kb, empty_kb = (after - before) / idlers, (empty - after) / idlers
        table.notes.append(f"gateway, {idlers} more in an empty folder (Drafts): {empty_kb:.0f} KB each; the rest "
                           f"is the selected INBOX's snapshot, {(gw_kb - empty_kb) * 1024 / n:.0f} bytes per "
                           f"message per connection")
        master = up.server_pids()["dovecot"]
        assert master is not None
        d_n = min(idlers, DOVECOT_IDLE_CAP)
        pss: list[int] = []

        def dovecot_rss() -> int:
            rss, p, _ = dovecot_imap_memory(master)
            pss.append(p)
            return rss
        d_before, d_after = idle_memory(dovecot, d_n, dovecot_rss)
        d_kb = (d_after - d_before) / d_n
        table.add(f"RSS per idle connection (IDLE, INBOX selected), KB", f"{gw_kb:.1f}", f"{d_kb:.0f}",
                  gw_kb / d_kb, "<= 50 KB", gw_kb <= 50)
        table.notes.append(
            f"idle connections: gateway {idlers} (serve RSS {before / 1024:.0f} -> {after / 1024:.0f} MB); "
            f"Dovecot {d_n} (one imap + one imap-login process each; PSS per connection "
            f"{(pss[1] - pss[0]) / d_n:.0f} KB, shared libraries counted once)")

        lat = new_mail_latency(up, list(both), 5 if args.quick else 20)
        for label, f in (("p50", lambda v: pct(v, 50)), ("max", max)):
            g, d = f(lat["gateway"]), f(lat["Dovecot"])
            table.add(f"new mail, SMTP -> EXISTS in IDLE, {label} s", f"{g:.2f}", f"{d:.2f}", g / d,
                      "<= 2 s", g <= 2)

        binary = os.environ.get("MAILWARDEN_IMAPTEST")
        if not binary:
            table.notes.append("imaptest: skipped (set MAILWARDEN_IMAPTEST to the imaptest binary)")
        else:
            secs = 10 if args.quick else 30
            for c, s in ((Client(gateway), "bench"), (Client(dovecot), "bench")):
                c.command(f"CREATE {s}")
                c.close()
            g_cmds, g_cpu, g_err = imaptest(Path(binary), gateway, secs, lambda: {0: sum(cpu_seconds(serve.pid))})
            d_cmds, d_cpu, d_err = imaptest(Path(binary), dovecot, secs, lambda: tree_cpu(master))
            r = (g_cmds / secs) / (d_cmds / secs)
            table.add(f"imaptest, 10 clients {secs} s: commands/s", f"{g_cmds / secs:.0f}", f"{d_cmds / secs:.0f}",
                      r, ">= 0.8x", r >= 0.8)
            g_per, d_per = g_cpu / g_cmds * 1e6, d_cpu / d_cmds * 1e6
            table.add("imaptest: CPU per command, us", f"{g_per:.0f}", f"{d_per:.0f}", g_per / d_per,
                      "<= 2x", g_per / d_per <= 2)
            for name, err in (("gateway", g_err), ("Dovecot", d_err)):
                if err:
                    table.notes.append(f"imaptest errors at {name} (first lines):\n{err}")
        print()
        table.print()
    except Failed as exc:
        print(f"FAILED: {exc}")
        if table.rows:
            table.print()
        return 1
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(60)
        up.stop()
    if args.profile:
        import pstats
        print(f"\nserve's profile ({args.profile}), by own time:")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
