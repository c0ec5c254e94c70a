"""`mailwarden demo`, run as the README says: a real local upstream, the gateway, demo users; a
message sent as a demo user reaches the demo customer; Ctrl-C stops everything."""

from __future__ import annotations

import imaplib
import json
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from mailwarden.testing.processes import free_ports, wait_until

from tests.conftest import missing_prerequisite

pytestmark = pytest.mark.integration


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for_output(proc: subprocess.Popen[str], pattern: str, timeout: float = 60) -> tuple[re.Match[str], str]:
    seen = ""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise AssertionError(f"demo exited with {proc.returncode}:\n{seen}")
            continue
        seen += line
        m = re.search(pattern, seen, re.M)
        if m:
            return m, seen
    raise AssertionError(f"no {pattern!r} within {timeout} s:\n{seen}")


def test_demo_sends_a_demo_users_mail_to_the_demo_customer(tmp_path: Path) -> None:
    if shutil.which("dovecot") is None and not Path("/usr/sbin/dovecot").exists():
        missing_prerequisite("dovecot is not installed")
    smtp_port, smtps_port, imap_port, imaps_port = free_ports("127.0.0.1", 4)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailwarden.cli", "demo", "--dir", str(tmp_path / "demo"),
         "--smtp-port", str(smtp_port), "--smtps-port", str(smtps_port), "--imap-port", str(imap_port),
         "--imaps-port", str(imaps_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        _, printed = wait_for_output(proc, r"Ctrl-C stops the gateway")
        password = re.search(r"^  zhang\s+(\S+)  \(sales, team export\)$", printed, re.M)
        imaps = re.search(r"imaps://localhost:(\d+)\s+user catchall@buyer\.test", printed)
        ca = re.search(r"\(CA: (\S+)\)", printed)
        assert password and imaps and ca, printed
        # the gateway listens a moment after it printed the settings
        wait_until(lambda: port_open(smtp_port), 30, "the demo gateway listening")
        token = uuid.uuid4().hex
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE  # the demo's self-signed pair
        with smtplib.SMTP("localhost", smtp_port, timeout=30) as c:
            c.starttls(context=insecure)
            c.login("zhang", password.group(1))
            c.sendmail("zhang@company.test", ["buyer@buyer.test"],
                       f"From: zhang@company.test\r\nTo: buyer@buyer.test\r\nSubject: demo {token}\r\n\r\n"
                       "Dear buyer, our new catalogue.\r\n")
        ctx = ssl.create_default_context(cafile=ca.group(1))
        deadline = time.monotonic() + 60
        found = b""
        while not found and time.monotonic() < deadline:
            with imaplib.IMAP4_SSL("localhost", int(imaps.group(1)), ssl_context=ctx, timeout=30) as imap:
                imap.login("catchall@buyer.test", "catchall")
                imap.select("INBOX", readonly=True)
                _, hits = imap.search(None, "SUBJECT", f'"demo {token}"')
                if hits[0]:
                    _, data = imap.fetch(hits[0].split()[-1], "(BODY.PEEK[])")
                    found = data[0][1]
            if not found:
                time.sleep(0.5)
        assert b"From: Zhang San | Bright Lighting <sales@company.test>" in found.replace(b'"', b""), found[:500]
        # the mail waiting in the demo's company mailbox is in the store, filed for each owner
        owners: dict[str, str | None] = {}
        deadline = time.monotonic() + 60
        while len(owners) < 3 and time.monotonic() < deadline:
            listed = subprocess.run([sys.executable, "-m", "mailwarden.cli", "--config", str(tmp_path / "demo" /
                                     "mailwarden.toml"), "mail", "list", "--json"], capture_output=True, text=True)
            assert listed.returncode == 0, listed.stderr
            owners = {row["subject"]: row["owner"] for row in map(json.loads, listed.stdout.splitlines())
                      if row["subject"] in ("Re: LED panel quotation", "Order 2026-118", "Inquiry: street lights")}
            time.sleep(0.5)
        assert owners == {"Re: LED panel quotation": "zhang", "Order 2026-118": "li", "Inquiry: street lights": None}
        # zhang reads them through the gateway, as a mail client would: Acme's reply, not Globex's order
        with imaplib.IMAP4_SSL("localhost", imaps_port, ssl_context=insecure, timeout=30) as mine:
            mine.login("zhang", password.group(1))
            mine.select("INBOX", readonly=True)
            _, data = mine.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            seen_subjects = b"".join(part[1] for part in data if isinstance(part, tuple))
        assert b"Re: LED panel quotation" in seen_subjects and b"Order 2026-118" not in seen_subjects
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        # the upstream went with it: nothing listens on its IMAP port any more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(imaps.group(1))), timeout=2).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_demo_with_a_busy_port_names_the_port(tmp_path: Path) -> None:
    smtp_port, smtps_port = free_ports("127.0.0.1", 2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", smtps_port))
        busy.listen()
        r = subprocess.run([sys.executable, "-m", "mailwarden.cli", "demo", "--dir", str(tmp_path / "demo"),
                            "--smtp-port", str(smtp_port), "--smtps-port", str(smtps_port)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    said = " ".join((r.stdout + r.stderr).split())
    assert f"port {smtps_port} (--smtps-port) cannot be used" in said and "Traceback" not in said, said
    assert not (tmp_path / "demo").exists()  # nothing started, nothing written
