"""mailwarden.store: users, customers, messages, the spool and the audit chain.

``open_store(settings)`` is the one way in: it makes the engine, applies
migrations and loads the audit key.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Engine

from .audit import AuditLog
from .blobs import Blobs, blobs_for
from .db import make_engine, session_scope, writer_engine
from .migrate import upgrade


class StoreSettings(Protocol):
    url: str
    data_dir: Path
    audit_key_file: Path


@dataclass
class StoreHandle:
    engine: Engine
    audit: AuditLog
    data_dir: Path

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @cached_property
    def blobs(self) -> Blobs:
        """The bytes of the mails in the store's copy of the company mailbox."""
        return blobs_for(self.engine, self.data_dir)

    def session(self):  # type: ignore[no-untyped-def]
        """A session for a command that may write: on SQLite it takes the write lock at BEGIN,
        so it waits for a running gateway's commit instead of failing with "database is locked"
        when the gateway commits between its first read and its first write."""
        return session_scope(writer_engine(self.engine))

    def close(self) -> None:
        self.engine.dispose()


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for another database or an in-memory one)."""
    if not url.startswith("sqlite") or "///" not in url:
        return None
    path = url.split("///", 1)[1]
    return Path(path) if path and path != ":memory:" else None


def _private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists: SQLite would make it (and its WAL
    and shared-memory files, which take the database's mode) readable by every local user."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def loose_permissions(settings: StoreSettings) -> list[str]:
    """What others on the machine may read or change: the data directory (wider than 0700), the
    database and the audit key (wider than 0600); one sentence each, saying how to fix it."""
    found = []
    db = sqlite_path(settings.url)
    checks = [(settings.data_dir, 0o700), (settings.audit_key_file, 0o600)]
    if db is not None:
        checks += [(db, 0o600), (db.with_name(db.name + "-wal"), 0o600)]
    for path, want in checks:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            found.append(f"{path} has mode {mode:04o}: other local users can "
                         f"{'read' if mode & 0o044 else 'open'} it (chmod {want:04o} {path})")
    return found


def open_store(settings: StoreSettings, *, migrate: bool = True) -> StoreHandle:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = sqlite_path(settings.url)
    if db is not None:
        db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_file(db)
    engine = make_engine(settings.url)
    if migrate:
        upgrade(engine)
    handle = StoreHandle(engine=engine, audit=AuditLog(engine, settings.audit_key_file), data_dir=settings.data_dir)
    handle.spool_dir.mkdir(mode=0o700, exist_ok=True)
    return handle


__all__ = ["StoreHandle", "open_store", "make_engine", "session_scope", "AuditLog", "loose_permissions",
           "sqlite_path"]
