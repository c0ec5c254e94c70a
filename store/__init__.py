"""mailwarden.store: users, customers, messages, the spool and the audit chain.

``open_store(settings)`` is the one way in: it makes the engine, applies
migrations and loads the audit key.
"""

from __future__ import annotations

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


def open_store(settings: StoreSettings, *, migrate: bool = True) -> StoreHandle:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.url)
    if migrate:
        upgrade(engine)
    handle = StoreHandle(engine=engine, audit=AuditLog(engine, settings.audit_key_file), data_dir=settings.data_dir)
    handle.spool_dir.mkdir(mode=0o700, exist_ok=True)
    return handle


__all__ = ["StoreHandle", "open_store", "make_engine", "session_scope", "AuditLog"]
