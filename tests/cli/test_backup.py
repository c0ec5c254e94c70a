"""mailwarden backup / restore: a store that is being written to, backed up and put back whole."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from mailwarden.cli.app import app
from mailwarden.gateway.config import load_config
from mailwarden.store import open_store
from mailwarden.store.blobs import FileBlobs
from mailwarden.store.models import AuditEvent
from sqlmodel import Session, select
from typer.testing import CliRunner


def _config(path: Path, data_dir: str) -> Path:
    path.write_text(f'[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
                    f'[store]\ndata_dir = "{data_dir}"\n')
    return path


def _cli(config: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--config", str(config), *args])


def test_backup_of_a_store_being_written_restores_whole(tmp_path):
    """A writer puts a blob, then commits an audit event naming it (as the sync stores mail), while
    the backup runs: the restored chain verifies and every blob an event names is there."""
    live = _config(tmp_path / "live.toml", "live")
    cfg = load_config(live, {"store"})
    st = open_store(cfg.store)
    blobs = FileBlobs(st.data_dir / "blobs")
    (st.spool_dir / "waiting.eml").write_bytes(b"Subject: waiting\r\n\r\nbody\r\n")
    (st.data_dir / "rules").mkdir()
    (st.data_dir / "rules" / "banned.txt").write_text("# action: block\nmoonbeam discount\n")  # import-words
    stop, written = threading.Event(), []

    def writer() -> None:
        n = 0
        while not stop.is_set() or n < 20:
            name = blobs.put(f"message {n}\r\n".encode() * 50)
            blobs.sync()
            st.audit.append(actor="test", action="mail.stored", target=name, n=n)
            written.append(name)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 5:
            threading.Event().wait(0.01)
        r = _cli(live, "backup", str(tmp_path / "backup"))
    finally:
        stop.set()
        thread.join()
        st.close()
    assert r.exit_code == 0, r.output
    assert "backed up to" in r.output
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["format"] == "mailwarden-backup 1" and manifest["database"] == "sqlite"
    assert not list(tmp_path.glob(".backup.partial-*"))

    restored = _config(tmp_path / "restored.toml", "restored")
    r = _cli(restored, "restore", str(tmp_path / "backup"))
    assert r.exit_code == 0, r.output
    assert "audit chain: ok" in r.output
    cfg2 = load_config(restored, {"store"})
    st2 = open_store(cfg2.store)
    try:
        with Session(st2.engine) as s:
            named = [e.target for e in s.exec(select(AuditEvent).where(AuditEvent.action == "mail.stored"))]
        assert 5 <= len(named) <= len(written)
        restored_blobs = FileBlobs(st2.data_dir / "blobs")
        assert all(restored_blobs.exists(name) for name in named)
        assert (st2.spool_dir / "waiting.eml").read_bytes().startswith(b"Subject: waiting")
        assert "moonbeam discount" in (st2.data_dir / "rules" / "banned.txt").read_text()
        assert st2.audit.key == st.audit.key
    finally:
        st2.close()

    # Once more into the now full data directory: refused, then replaced with --force.
    r = _cli(restored, "restore", str(tmp_path / "backup"))
    assert r.exit_code == 2 and "is not empty" in r.output and "--force" in r.output
    r = _cli(restored, "restore", str(tmp_path / "backup"), "--force")
    assert r.exit_code == 0 and "audit chain: ok" in r.output, r.output


def test_backup_and_restore_refusals(tmp_path):
    cfg = _config(tmp_path / "m.toml", "data")
    r = _cli(cfg, "backup", str(tmp_path / "b"))
    assert r.exit_code == 2 and "nothing to back up" in r.output
    assert _cli(cfg, "user", "list").exit_code == 0  # makes the store
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    r = _cli(cfg, "backup", str(tmp_path / "full"))
    assert r.exit_code == 2 and "not an empty folder" in r.output
    r = _cli(cfg, "restore", str(tmp_path / "full"))
    assert r.exit_code == 2 and "not a mailwarden backup" in r.output

    pg = tmp_path / "pg.toml"
    pg.write_text('[store]\nurl = "postgresql+psycopg://mw:secret@db.example/mailwarden"\ndata_dir = "pgdata"\n')
    r = _cli(pg, "backup", str(tmp_path / "b2"))
    assert r.exit_code == 2 and "pg_dump" in r.output and "secret" not in r.output


def test_restore_refuses_a_tampered_chain(tmp_path):
    cfg = _config(tmp_path / "m.toml", "data")
    st = open_store(load_config(cfg, {"store"}).store)
    for n in range(3):
        st.audit.append(actor="test", action="x", n=n)
    st.close()
    assert _cli(cfg, "backup", str(tmp_path / "b")).exit_code == 0
    import sqlite3

    db = sqlite3.connect(tmp_path / "b" / "mailwarden.db")
    db.execute("UPDATE audit_events SET actor = 'someone else' WHERE seq = 2")
    db.commit()
    db.close()
    r = _cli(_config(tmp_path / "r.toml", "r"), "restore", str(tmp_path / "b"))
    assert r.exit_code == 1 and "audit chain: FAILED" in r.output and "#2" in r.output


def test_bad_log_format_is_refused(tmp_path):
    r = _cli(_config(tmp_path / "m.toml", "data"), "--log-format", "xml", "user", "list")
    assert r.exit_code == 2 and "use text or json" in r.output


def test_backup_without_the_key_restores_with_the_key_kept_apart(tmp_path):
    cfg = _config(tmp_path / "m.toml", "data")
    st = open_store(load_config(cfg, {"store"}).store)
    st.audit.append(actor="test", action="x")
    key = st.audit.key
    st.close()
    assert _cli(cfg, "backup", str(tmp_path / "b"), "--without-key").exit_code == 0
    assert not (tmp_path / "b" / "audit.key").exists()
    restored = _config(tmp_path / "r.toml", "r")
    r = _cli(restored, "restore", str(tmp_path / "b"))
    assert r.exit_code == 2 and "holds no audit key" in r.output and "audit_key_file" in r.output
    (tmp_path / "r").mkdir(mode=0o700)
    (tmp_path / "r" / "audit.key").write_text(key.hex() + "\n")
    r = _cli(restored, "restore", str(tmp_path / "b"))
    assert r.exit_code == 0 and "audit chain: ok (1 events)" in r.output, r.output
