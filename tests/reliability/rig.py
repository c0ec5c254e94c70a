"""What the reliability tests and ``tests/bench/bench_reliability.py`` share: ``mailwarden serve``
as a process of its own in front of the real upstream, a steady load of tagged messages, and
the count of what reached the customer's mailbox and the shared Sent folder.

Every message carries a token in its subject (``<run>-<n>``), so several runs can share one
upstream: what is counted is only the run's own messages.
"""

from __future__ import annotations

import collections
import os
import signal
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mailwarden.gateway.config import config_from_dict
from mailwarden.gateway.server import SECTIONS
from mailwarden.store import open_store
from mailwarden.store.directory import add_customer, add_user
from sqlmodel import Session

from tests.integration.test_durability import subjects, wait_port

SHARED = "sales@company.test"
CUSTOMER = "catchall@buyer.test"
LOGIN, PASSWORD = "zhang", "zhang-password"
RELAY_CONNECTIONS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(subject: str) -> bytes:
    return (f"From: Zhang <zhang@company.test>\r\nTo: max@buyer.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@company.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nPlease find our quote below.\r\n").encode()


@dataclass
class Serve:
    """``mailwarden serve`` (with its delivery process) on a data directory of its own."""

    upstream: object
    root: Path
    store_url: str | None = None  # default: SQLite in the data directory
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        up = self.upstream
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "upstream.password").write_text(up.password_for(SHARED) + "\n")  # type: ignore[attr-defined]
        store = f'url = "{self.store_url}"\n' if self.store_url else ""
        self.config = self.root / "mailwarden.toml"
        self.config.write_text(
            f'[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
            f'[upstream]\nimap = "localhost:{up.imaps_port}"\nimap_tls = "implicit"\n'  # type: ignore[attr-defined]
            f'smtp = "localhost:{up.submission_port}"\nsmtp_tls = "starttls"\n'  # type: ignore[attr-defined]
            f'username = "{SHARED}"\npassword_file = "upstream.password"\nca_file = "{up.ca_file}"\n'  # type: ignore[attr-defined]
            f'[listen]\nsmtp = "127.0.0.1:{self.port}"\nsmtps = ""\nhostname = "localhost"\n'
            f'[store]\ndata_dir = "data"\n{store}'
            f'[outbound]\nretry_initial = "0.5s"\nrelay_connections = {RELAY_CONNECTIONS}\n')
        self.log = self.root / "serve.log"
        self.cfg = config_from_dict(_toml(self.config), self.config, SECTIONS)
        assert self.cfg.store is not None
        handle = open_store(self.cfg.store)
        with Session(handle.engine) as s:
            add_user(session=s, login=LOGIN, name="Zhang San", password=PASSWORD)
            add_customer(session=s, name="Acme Lighting GmbH", domains=["buyer.test"], owner=LOGIN)
            s.commit()
        self.db = Path(handle.engine.url.database or "")
        handle.close()

    def start(self, timeout: float = 30) -> None:
        with self.log.open("ab") as out:
            # A session of its own: a kill of its process group reaches the delivery process too.
            self.proc = subprocess.Popen([sys.executable, "-m", "mailwarden.cli", "--config", str(self.config), "serve"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_port(self.port, self.proc, self.log, timeout)

    def kill(self) -> None:
        """kill -9 of serve and its delivery process at once: nothing gets to finish."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._wait_group_gone()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._wait_group_gone()
        return self.proc.returncode

    def _wait_group_gone(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def client(self) -> smtplib.SMTP:
        tls = ssl.create_default_context(cafile=str(self.root / "data" / "tls" / "gateway.crt"))
        c = smtplib.SMTP("localhost", self.port, timeout=30)
        c.starttls(context=tls)
        c.login(LOGIN, PASSWORD)
        return c

    def send(self, run: str, n: int, start: int = 0) -> list[str]:
        """``n`` messages over one connection; the subjects the gateway answered 250 to."""
        accepted = []
        with self.client() as c:
            for i in range(start, start + n):
                subject = f"{run}-{i}"
                c.mail("x@x.example")
                c.rcpt("max@buyer.test")
                if c.data(message(subject))[0] == 250:
                    accepted.append(subject)
        return accepted

    def spool_stages(self, run: str) -> dict[str, str]:
        """Each subject of ``run`` → the stage of its message's first spool item, read straight
        from the database file (serve may be dead)."""
        with sqlite3.connect(self.db) as db:
            rows = db.execute("SELECT m.subject, s.stage FROM spool s JOIN messages m ON m.id = s.message_id "
                              "WHERE m.subject LIKE ? AND s.stage != 'notice' ORDER BY s.id", (f"{run}%",)).fetchall()
        out: dict[str, str] = {}
        for subject, stage in rows:
            out.setdefault(subject, stage)
        return out


class Load:
    """Messages sent in the background over a few connections until stopped (or the gateway
    dies under them); :attr:`accepted` is what got its 250."""

    def __init__(self, serve: Serve, run: str, clients: int = 3, per_client: int = 400) -> None:
        self.accepted: list[str] = []
        self.errors: list[BaseException] = []
        self.refused = 0  # answered with an error (e.g. 4xx while the disk is full)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(serve, run, k * 100000, per_client), daemon=True)
                         for k in range(clients)]
        for t in self._threads:
            t.start()

    def _client(self, serve: Serve, run: str, first: int, n: int) -> None:
        try:
            with serve.client() as c:
                for i in range(first, first + n):
                    if self._stop.is_set():
                        return
                    subject = f"{run}-{i}"
                    c.mail("x@x.example")
                    c.rcpt("max@buyer.test")
                    if c.data(message(subject))[0] == 250:
                        with self._lock:
                            self.accepted.append(subject)
                    else:
                        self.refused += 1
        except (OSError, smtplib.SMTPException) as exc:
            self.errors.append(exc)  # the gateway was killed under this client, or refused it

    def stop(self) -> list[str]:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        return list(self.accepted)


def settled(upstream, address: str, run: str, folder: str = "INBOX", quiet: float = 1.5,  # type: ignore[no-untyped-def]
            timeout: float = 60.0, want: int = 0) -> collections.Counter:
    """The subjects of ``run`` in ``folder`` once at least ``want`` are there and nothing more has
    arrived for ``quiet`` seconds (Postfix may still be delivering what it took)."""
    deadline = time.monotonic() + timeout
    last: collections.Counter | None = None
    since = time.monotonic()
    while True:
        now = subjects(upstream.fetch_all(address, folder), run)
        if now != last:
            last, since = now, time.monotonic()
        elif len(now) >= want and time.monotonic() - since >= quiet:
            return now
        if time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def kill_rounds(serve: Serve, upstream, run: str, kills: int, before_kill: int = 15,  # type: ignore[no-untyped-def]
                timeout: float = 30.0) -> tuple[list[str], list[set[str]]]:
    """Start ``serve`` under load and kill -9 it once ``before_kill`` messages of the round reached
    the customer, ``kills`` times (it is left stopped).  Returns what was accepted, and for each kill
    what was in flight: the messages the upstream has while the store still has them in ``relay``
    (the upstream's 250 was not recorded), counted once Postfix delivered what it took."""
    accepted: list[str] = []
    in_flight: list[set[str]] = []
    for k in range(kills):
        serve.start()
        load = Load(serve, f"{run}r{k}")
        deadline = time.monotonic() + timeout
        while len(subjects(upstream.fetch_all(CUSTOMER), f"{run}r{k}-")) < before_kill:
            if time.monotonic() > deadline:
                serve.kill()
                load.stop()
                raise AssertionError(f"round {k}: nothing delivered:\n{serve.log.read_text()[-3000:]}")
            time.sleep(0.1)
        serve.kill()
        accepted += load.stop()
        delivered = settled(upstream, CUSTOMER, run)
        stages = serve.spool_stages(run)
        in_flight.append({s for s in delivered if stages.get(s) == "relay"})
    return accepted, in_flight


def _toml(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text())
