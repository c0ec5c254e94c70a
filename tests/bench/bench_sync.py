"""Benchmark of the inbound sync: ``python tests/bench/bench_sync.py [--quick]``.

Run from the repository root as root: it starts a private Dovecot + Postfix (LocalUpstream) and
fills two company mailboxes with mixed mail (quotes in several charsets, HTML, PDF-sized
attachments; :mod:`mailwarden.testing.mailboxes`): a large one (N = 5,000 messages; ``--quick``:
1,000) and a small one (N / 5).  In the same run:

1. ``mbsync``: isync's ``mbsync`` pulls the mailbox into a Maildir over IMAPS (the reference:
   a C program doing the same download and writing each message to disk);
2. ``gateway``: ``mailwarden sync --initial`` imports it into a fresh store (SQLite): download,
   blobs, header facts, search text, filing;

each on the large and on the small mailbox, each from a cold start of its own process.
Reported: messages/s, MB/s, peak RSS (the process's own high-water mark, from wait4), and the
ratio gateway/mbsync.  Then new-mail latency: ``mailwarden serve`` runs with the sync on the
large mailbox and 40 messages are delivered through Postfix (SMTP -> LMTP) one after another;
for each, the time from the SMTP client's last byte to the mail's row in the store, beside the
same for a bare IMAP client waiting in IDLE at Dovecot (the reference: when the server itself
tells).  Targets (the inbound issue): rate >= 0.5x mbsync's; peak RSS independent of the
mailbox's size (large / small <= 1.5); latency p50 <= 2 s.  The rate target is held on the
large mailbox: on the small one both programs' start-up weighs in.  A miss is marked MISS; the exit
status is non-zero only when the run itself failed (a message missing or doubled).
"""

from __future__ import annotations

import argparse
import imaplib
import os
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mailwarden.testing.localupstream import LocalUpstream, MailAccount
from mailwarden.testing.mailboxes import fill_maildir, mixed_messages

BIG, SMALL = "sales@company.test", "small@company.test"
PASSWORD = "company-secret"


def run_measured(argv: list[str], **kw) -> tuple[float, int, str]:
    """Run ``argv``; (seconds, peak RSS in MB, stderr tail)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024, err.decode(errors="replace")[-500:]


def mbsync(upstream: LocalUpstream, address: str, work: Path) -> tuple[float, int, int]:
    """mbsync pulls INBOX into a Maildir; (seconds, peak RSS MB, messages it wrote)."""
    maildir = work / f"maildir-{address.split('@')[0]}"
    maildir.mkdir()
    conf = work / f"mbsyncrc-{address.split('@')[0]}"
    conf.write_text(
        f"IMAPAccount up\nHost localhost\nPort {upstream.imaps_port}\nUser {address}\nPass {PASSWORD}\n"
        f"SSLType IMAPS\nCertificateFile {upstream.ca_file}\n\n"
        "IMAPStore up-remote\nAccount up\n\n"
        f"MaildirStore up-local\nPath {maildir}/\nInbox {maildir}/INBOX\n\n"
        "Channel up\nFar :up-remote:\nNear :up-local:\nPatterns INBOX\nSync Pull\nCreate Near\n"
        f"SyncState {maildir}/.state/\n")
    (maildir / ".state").mkdir()
    seconds, rss, _ = run_measured(["mbsync", "-q", "-c", str(conf), "up"])
    got = len(list((maildir / "INBOX" / "new").iterdir())) + len(list((maildir / "INBOX" / "cur").iterdir()))
    return seconds, rss, got


def gateway_config(upstream: LocalUpstream, address: str, work: Path, *, listen: bool = False) -> Path:
    d = work / f"gw-{address.split('@')[0]}-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    (d / "upstream.password").write_text(PASSWORD + "\n")
    listen_part = '[listen]\nsmtp = "127.0.0.1:0"\nhostname = "localhost"\n' if listen else ""
    (d / "mailwarden.toml").write_text(
        '[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
        f'[upstream]\nimap = "localhost:{upstream.imaps_port}"\nimap_tls = "implicit"\n'
        f'smtp = "localhost:{upstream.submission_port}"\nsmtp_tls = "starttls"\nusername = "{address}"\n'
        f'password_file = "upstream.password"\nca_file = "{upstream.ca_file}"\n[store]\ndata_dir = "data"\n'
        + listen_part)
    return d / "mailwarden.toml"


def mailwarden() -> str:
    return str(Path(sys.executable).with_name("mailwarden"))


def gateway_import(upstream: LocalUpstream, address: str, work: Path) -> tuple[float, int, int]:
    """``mailwarden sync --initial`` into a fresh store; (seconds, peak RSS MB, mails stored)."""
    cfg = gateway_config(upstream, address, work)
    seconds, rss, _ = run_measured([mailwarden(), "--config", str(cfg), "sync", "--initial"])
    with sqlite3.connect(cfg.parent / "data" / "mailwarden.db") as c:
        got = c.execute("SELECT count(*) FROM mails").fetchone()[0]
    return seconds, rss, got


def warm(upstream: LocalUpstream, address: str) -> int:
    """Let Dovecot index the new Maildir before either client is timed."""
    client = imaplib.IMAP4_SSL("127.0.0.1", upstream.imaps_port, ssl_context=upstream.client_ssl_context())
    try:
        client.login(address, PASSWORD)
        typ, data = client.select("INBOX", readonly=True)
        client.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
        return int(data[0])
    finally:
        client.logout()


def idle_reference(upstream: LocalUpstream, address: str, count: int) -> list[float]:
    """Delivery -> EXISTS at a bare IMAP client in IDLE (the server's own notification delay)."""
    client = imaplib.IMAP4_SSL("127.0.0.1", upstream.imaps_port, ssl_context=upstream.client_ssl_context())
    out = []
    try:
        client.login(address, PASSWORD)
        client.select("INBOX", readonly=True)
        for i in range(count):
            tag = client._new_tag().decode()
            client.send(f"{tag} IDLE\r\n".encode())
            client.readline()  # "+ idling"
            started = time.monotonic()
            inject(upstream, address, f"idle ref {i}")
            while b"EXISTS" not in client.readline():
                pass
            out.append(time.monotonic() - started)
            client.send(b"DONE\r\n")
            while not client.readline().startswith(tag.encode()):
                pass
    finally:
        client.logout()
    return out


def inject(upstream: LocalUpstream, address: str, subject: str) -> None:
    raw = (f"From: Buyer <buyer@buyer.test>\r\nTo: {address}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{uuid.uuid4().hex}@buyer.test>\r\n\r\nHello\r\n").encode()
    with smtplib.SMTP("127.0.0.1", upstream.smtp_port, timeout=30) as c:
        c.sendmail("buyer@buyer.test", [address], raw)


def serve_latency(upstream: LocalUpstream, address: str, work: Path, count: int) -> list[float]:
    cfg = gateway_config(upstream, address, work, listen=True)
    subprocess.run([mailwarden(), "--config", str(cfg), "sync", "--initial"], check=True, capture_output=True)
    serve = subprocess.Popen([mailwarden(), "--config", str(cfg), "serve"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    db = cfg.parent / "data" / "mailwarden.db"
    out = []
    try:
        time.sleep(3)  # the IDLE connection is up
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
            for i in range(count):
                subject = f"latency {i} {uuid.uuid4().hex[:6]}"
                started = time.monotonic()
                inject(upstream, address, subject)
                deadline = started + 30
                while not c.execute("SELECT 1 FROM mails WHERE subject = ?", (subject,)).fetchone():
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{subject!r} not filed in 30 s")
                    time.sleep(0.01)
                out.append(time.monotonic() - started)
    finally:
        serve.terminate()
        serve.wait(60)
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 messages instead of 5,000")
    args = ap.parse_args()
    n = 1000 if args.quick else 5000
    work = Path(tempfile.mkdtemp(prefix="mw-bench-sync-"))
    up = LocalUpstream(work / "upstream", [MailAccount(BIG, PASSWORD), MailAccount(SMALL, PASSWORD)])
    up.start()
    failed = False
    try:
        sizes = {}
        for address, count, seed in ((BIG, n, 1), (SMALL, n // 5, 2)):
            msgs = list(mixed_messages(count, seed=seed))
            sizes[address] = sum(map(len, msgs)) / 1e6
            fill_maildir(up, address, msgs)
            assert warm(up, address) == count
        print(f"mailboxes: {BIG} {n} messages ({sizes[BIG]:.0f} MB), {SMALL} {n // 5} ({sizes[SMALL]:.0f} MB); "
              f"CPUs: {os.cpu_count()}")
        rows = []
        for address, count in ((BIG, n), (SMALL, n // 5)):
            m_s, m_rss, m_got = mbsync(up, address, work)
            g_s, g_rss, g_got = gateway_import(up, address, work)
            if m_got != count or g_got != count:
                print(f"FAILED: {address}: mbsync has {m_got}, the gateway {g_got} of {count}")
                failed = True
            rows.append((address, count, sizes[address], m_s, m_rss, g_s, g_rss))
        print()
        print(f"{'mailbox':<22}{'msgs':>6}{'MB':>6} | {'mbsync msg/s':>12}{'MB/s':>7}{'RSS MB':>8} | "
              f"{'gateway msg/s':>13}{'MB/s':>7}{'RSS MB':>8} | {'ratio':>6}")
        for address, count, mb, m_s, m_rss, g_s, g_rss in rows:
            ratio = (count / g_s) / (count / m_s)
            if address == SMALL:  # a few seconds' work: the interpreter's start and the store's creation weigh in
                mark = "  (small: start-up bound; the target is held on the large mailbox)"
            else:
                mark = "" if ratio >= 0.5 else "  MISS (target >= 0.5)"
            print(f"{address:<22}{count:>6}{mb:>6.0f} | {count / m_s:>12.0f}{mb / m_s:>7.1f}{m_rss:>8} | "
                  f"{count / g_s:>13.0f}{mb / g_s:>7.1f}{g_rss:>8} | {ratio:>6.2f}{mark}")
        growth = rows[0][6] / max(1, rows[1][6])
        print(f"gateway peak RSS, large / small mailbox: {growth:.2f}"
              + ("" if growth <= 1.5 else "  MISS (target <= 1.5: independent of the mailbox's size)"))
        print()
        count = 10 if args.quick else 40
        ref = idle_reference(up, BIG, count)
        lat = serve_latency(up, BIG, work, count)
        print(f"{'new-mail latency (s)':<40}{'p50':>7}{'p99':>7}{'max':>7}")
        print(f"{'Dovecot IDLE -> bare IMAP client':<40}{pct(ref, 50):>7.2f}{pct(ref, 99):>7.2f}{max(ref):>7.2f}")
        mark = "" if pct(lat, 50) <= 2.0 else "  MISS (target p50 <= 2 s)"
        print(f"{'SMTP in -> filed in the gateway store':<40}{pct(lat, 50):>7.2f}{pct(lat, 99):>7.2f}{max(lat):>7.2f}{mark}")
    finally:
        up.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
