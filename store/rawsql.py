"""Plain DBAPI statements for the few writes every message makes.

The spool insert, the audit append and the relay's stage updates run for every
message, on the group-commit writer's thread.  Through SQLAlchemy each
statement cost ~80 µs of Python (compile cache lookup, execution context,
result proxy, events) against ~5 µs in the driver; these few statements are
written here once, in plain SQL, and run on the session's own DBAPI connection
inside its transaction.  Everything else keeps using the ORM.

Statements use ``:name`` parameters (sqlite3's named style) and are rewritten
once to ``%(name)s`` for psycopg.  Timestamps are bound the way SQLAlchemy
stores them, so rows written here and rows written by the ORM compare and read
back alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlmodel import Session

_INFO = "mw_raw"  # session.info: (root transaction, innermost nested transaction or None, Raw)
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


class Raw:
    """A DBAPI cursor on the connection of a session's current transaction."""

    def __init__(self, session: Session) -> None:
        conn = session.connection()  # begins the session's transaction if it has none yet
        self.dbapi = conn.connection.dbapi_connection
        self.sqlite = conn.dialect.name == "sqlite"
        self.cur = self.dbapi.cursor()  # type: ignore[union-attr]

    def sql(self, sql: str) -> str:
        return sql if self.sqlite else _pyformat(sql)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """Run ``sql``; returns the one cursor this transaction shares: fetch its rows before
        the next statement."""
        self.cur.execute(self.sql(sql), self._bind(params) if params else {})
        return self.cur

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.cur.executemany(self.sql(sql), [self._bind(r) for r in rows])

    def insert(self, sql: str, params: Mapping[str, Any]) -> int:
        """An INSERT; returns the new row's ``id``."""
        if self.sqlite:
            self.cur.execute(sql, self._bind(params))
            return int(self.cur.lastrowid)
        self.cur.execute(_pyformat(sql + " RETURNING id"), params)
        return int(self.cur.fetchone()[0])

    def _bind(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self.sqlite:
            return params
        out: dict[str, Any] | None = None  # one pass, a copy only when a timestamp is bound
        for k, v in params.items():
            if isinstance(v, datetime):
                if out is None:
                    out = dict(params)
                out[k] = sqlite_ts(v)
        return params if out is None else out


def sqlite_ts(ts: datetime) -> str:
    """A timestamp as SQLAlchemy's SQLite dialect stores a ``DateTime``: UTC, no zone."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%d %H:%M:%S.%f")


def raw(session: Session) -> Raw:
    """The session's :class:`Raw`, made once per (root) transaction: a transaction keeps
    its connection, and asking the session for it again costs as much as a statement.

    Inside an ORM nested transaction (``begin_nested``) the session is asked once more, which
    emits the SAVEPOINT it otherwise emits only when the session itself next uses the
    connection: statements run here must fall inside it, to be rolled back with it."""
    root, nested = session.get_transaction(), session.get_nested_transaction()
    cached = session.info.get(_INFO)
    if cached is not None and root is not None and cached[0] is root:
        if cached[1] is not nested:
            session.connection()
            session.info[_INFO] = (root, nested, cached[2])
        return cached[2]  # type: ignore[no-any-return]
    r = Raw(session)
    session.info[_INFO] = (session.get_transaction(), session.get_nested_transaction(), r)
    return r
