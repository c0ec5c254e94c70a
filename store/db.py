"""Engine and sessions.  The engine is made from settings, never at import time."""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy import exc as exc_mod
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)


def make_engine(url: str, *, busy_timeout_ms: int = 30000, synchronous: str = "FULL") -> Engine:
    """An engine for ``url``.  SQLite runs in WAL mode with full fsync on commit,
    so a committed spool entry survives a power cut.  ``busy_timeout_ms``: how long
    SQLite itself waits for another process's write lock (0: the caller retries);
    ``synchronous``: NORMAL for :func:`relaxed_engine`."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: an error must not carry subjects or matched text into the logs.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
                               hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy, not the sqlite3 module, decide where transactions
            # begin, so that SAVEPOINTs work (SQLAlchemy's documented recipe).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Writers that read before they write ask for the lock up front (see writer_engine):
            # a deferred BEGIN would fail at once if another connection committed in between.
            # Straight to the driver (a third of the cost of a statement through SQLAlchemy, for
            # every transaction), raising what SQLAlchemy would raise.
            sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get("mw_immediate") else "BEGIN"
            try:
                conn.connection.dbapi_connection.execute(sql)
            except sqlite3.Error as exc:
                raise exc_mod.OperationalError(sql, None, exc) from exc

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def writer_engine(engine: Engine) -> Engine:
    """The same engine, for a writer: on SQLite its transactions take the write lock at BEGIN."""
    return engine.execution_options(mw_immediate=True)


_RELAXED: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_RELAXED_LOCK = threading.Lock()


def relaxed_engine(engine: Engine) -> Engine:
    """The store for writes a power cut may undo without harm (IMAP flags, \\Recent marks,
    UIDs given to mail already stored): on SQLite a second engine on the same file whose
    commits are atomic and ordered but not fsync'd (WAL, synchronous=NORMAL), as Dovecot does
    not fsync flag changes either; the next fsync'd commit makes them durable too.  A commit
    there takes the write lock for microseconds instead of an fsync.  Other databases: the
    engine itself."""
    if engine.url.get_backend_name() != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine
    with _RELAXED_LOCK:
        relaxed = _RELAXED.get(engine)
        if relaxed is None:
            relaxed = _RELAXED[engine] = make_engine(engine.url.render_as_string(hide_password=False),
                                                     synchronous="NORMAL")
        return relaxed


_WRITE_LOCKS: dict[str, threading.RLock] = {}


def _process_write_lock(engine: Engine) -> threading.RLock | None:
    """The lock this process's writers of one SQLite file take before its write lock.  SQLite
    lets a writer that finds the file locked sleep in steps growing to 100 ms; threads waiting
    here are woken the moment the writer before them is done (other processes still meet
    SQLite's busy handler).  Re-entrant: a thread that nests writers waits as SQLite makes it."""
    if not engine.get_execution_options().get("mw_immediate") or engine.url.get_backend_name() != "sqlite":
        return None
    database = engine.url.database or ""
    if database in ("", ":memory:"):
        return None
    with _RELAXED_LOCK:
        return _WRITE_LOCKS.setdefault(database, threading.RLock())


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error (a writer's, on SQLite, after
    the process's other writers of the file: :func:`_process_write_lock`)."""
    lock = _process_write_lock(engine)
    if lock is not None:
        lock.acquire()
    try:
        with Session(engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        if lock is not None:
            lock.release()
