"""`mailwarden sync --initial` on a mailbox of 10,000 messages, killed halfway and run again:
every message stored once, and the command tells a running serve's sync apart."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mailwarden.testing.localupstream import LocalUpstream, MailAccount
from mailwarden.testing.mailboxes import fill_maildir, mixed_messages

from .conftest import SHARED

pytestmark = pytest.mark.integration

COUNT = 10_000


@pytest.fixture(scope="module")
def full_upstream(tmp_path_factory):
    server = LocalUpstream(tmp_path_factory.mktemp("full-upstream"), [MailAccount(SHARED, "company-secret")])
    server.start()
    try:
        fill_maildir(server, SHARED, mixed_messages(COUNT))
        yield server
    finally:
        server.stop()


def config(tmp_path, upstream) -> str:
    (tmp_path / "upstream.password").write_text("company-secret\n")
    path = tmp_path / "mailwarden.toml"
    path.write_text(
        '[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
        f'[upstream]\nimap = "localhost:{upstream.imaps_port}"\nimap_tls = "implicit"\n'
        f'smtp = "localhost:{upstream.submission_port}"\nsmtp_tls = "starttls"\nusername = "{SHARED}"\n'
        f'password_file = "upstream.password"\nca_file = "{upstream.ca_file}"\n[store]\ndata_dir = "data"\n')
    return str(path)


def stored(tmp_path) -> int:
    db = tmp_path / "data" / "mailwarden.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT count(*) FROM mails").fetchone()[0]
    except sqlite3.OperationalError:  # not made yet
        return 0


def sync_initial(cfg: str, **kw) -> subprocess.Popen:
    command = Path(sys.executable).with_name("mailwarden")  # the installed command, beside this Python
    return subprocess.Popen([str(command), "--config", cfg, "sync", "--initial"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_an_import_killed_halfway_resumes_and_stores_each_message_once(full_upstream, tmp_path):
    cfg = config(tmp_path, full_upstream)
    first = sync_initial(cfg)
    deadline = time.monotonic() + 240
    while stored(tmp_path) < COUNT // 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.poll() is None, first.communicate()
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    halfway = stored(tmp_path)
    assert 0 < halfway < COUNT

    started = time.monotonic()
    second = sync_initial(cfg)
    out, err = second.communicate(timeout=400)
    print(f"the rest ({COUNT - halfway} messages) in {time.monotonic() - started:.1f} s")
    assert second.returncode == 0, err.decode()
    assert f"imported {COUNT - halfway} new messages" in out.decode() or stored(tmp_path) == COUNT, out.decode()
    db = tmp_path / "data" / "mailwarden.db"
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM mails").fetchone()[0] == COUNT
        assert c.execute("SELECT count(DISTINCT subject) FROM mails").fetchone()[0] == COUNT
        assert c.execute("SELECT count(*) FROM mail_locations").fetchone()[0] == COUNT
        assert c.execute("SELECT count(*) FROM mails WHERE filed_by = 'pool'").fetchone()[0] == COUNT  # nobody known
    print(f"killed at {halfway} of {COUNT}; the second run stored the rest once")

    again = sync_initial(cfg)  # nothing new: nothing stored, nothing fetched twice
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0 and "imported 0 new messages" in out.decode(), err.decode()


def test_sync_initial_refuses_while_another_sync_holds_the_store(full_upstream, tmp_path):
    from mailwarden.gateway.sync.service import hold_sync_lock

    cfg = config(tmp_path, full_upstream)
    (tmp_path / "data").mkdir()
    lock = hold_sync_lock(tmp_path / "data")
    try:
        proc = sync_initial(cfg)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(lock)
    assert proc.returncode == 2
    assert "keeps this mailbox in sync already" in err.decode()
