"""Failed-login counts in the store, shared by every process and gateway on it.

Three counters are kept for each attempt: the login from that address (the tight bound), the
address for any login (looser: an office behind one NAT address shares it), and the login from
any address (so that many addresses cannot take turns guessing one password).  An attempt is
counted **before** its password is checked, in one statement (``INSERT … ON CONFLICT … DO UPDATE
… RETURNING``, atomic on SQLite and PostgreSQL alike), so parallel attempts on any number of
connections, processes or gateways each count; a login that then succeeds gives its count back.
An attempt that takes a counter past its bound is refused without its password being checked,
and gives its counts back: a counter stays locked while it holds ``bound`` failures, that is
until ``lockout`` seconds after the last attempt on it.  (Parallel attempts may take a counter
past its bound before any gives back: it then stops at bound + 1, and only an attempt that
moved it gives back.)  A counter whose last attempt is older than ``lockout`` starts over at 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from .db import session_scope
from .rawsql import raw

LOGIN_WIDTH = 128  # characters of a login kept in a counter's key (what people type may be longer)
IP_WIDTH = 64


@dataclass(frozen=True)
class Bounds:
    """Failures allowed before a counter locks, and how long a lock lasts (seconds)."""

    pair: int      # one login from one address
    address: int   # any login from one address
    login: int     # one login from any address
    lockout: float


@dataclass(frozen=True)
class Count:
    """One counter after an attempt was counted."""

    login: str
    ip: str
    count: int
    last_at: float
    bound: int
    counted: bool  # this attempt moved it (a counter past its bound stays as it is)

    @property
    def locked(self) -> bool:
        return self.count > self.bound

    @property
    def scope(self) -> str:
        return "address" if not self.login else "login" if not self.ip else "login from this address"


@dataclass(frozen=True)
class Attempt:
    """What counting one attempt found."""

    counts: tuple[Count, ...]

    @property
    def locked(self) -> Count | None:
        return next((c for c in self.counts if c.locked), None)

    def pair_count(self) -> int:
        return next(c.count for c in self.counts if c.login and c.ip)


_COUNT = (
    "INSERT INTO login_failures (login, ip, count, last_at) VALUES "
    "(:login, :ip, 1, :now), (:login, '', 1, :now), ('', :ip, 1, :now) "
    "ON CONFLICT (login, ip) DO UPDATE SET "
    # Every expression reads the row as it was: a stale counter starts over, a locked one stays.
    "count = CASE WHEN login_failures.last_at < :stale THEN 1 "
    "  WHEN login_failures.count > {bound} THEN login_failures.count ELSE login_failures.count + 1 END, "
    "last_at = CASE WHEN login_failures.last_at >= :stale AND login_failures.count > {bound} "
    "  THEN login_failures.last_at ELSE :now END "
    "RETURNING login, ip, count, last_at"
)
_BOUND = ("(CASE WHEN login_failures.ip = '' THEN :login_bound WHEN login_failures.login = '' "
          "THEN :address_bound ELSE :pair_bound END)")
COUNT_SQL = _COUNT.format(bound=_BOUND)
def _key(login: str, ip: str) -> tuple[str, str]:
    # Never "": that names the wider counters.
    return login.strip().lower()[:LOGIN_WIDTH] or "?", ip[:IP_WIDTH] or "?"


def _bounds(b: Bounds) -> dict[str, int]:
    return {"pair_bound": b.pair, "address_bound": b.address, "login_bound": b.login}


def count_attempt(engine: Engine, login: str, ip: str, bounds: Bounds, now: float | None = None) -> Attempt:
    """Count one attempt of ``login`` from ``ip`` (before its password is checked)."""
    login, ip = _key(login, ip)
    now = time.time() if now is None else now
    with session_scope(engine) as s:
        rows = raw(s).execute(COUNT_SQL, {"login": login, "ip": ip, "now": now, "stale": now - bounds.lockout,
                                          **_bounds(bounds)}).fetchall()
    want = _bounds(bounds)
    return Attempt(tuple(
        Count(r[0], r[1], int(r[2]), float(r[3]),
              want["login_bound"] if not r[1] else want["address_bound"] if not r[0] else want["pair_bound"],
              counted=float(r[3]) == now)
        for r in rows))


def peek(engine: Engine, login: str, ip: str, bounds: Bounds, now: float | None = None) -> Attempt:
    """The three counters of an attempt as they stand, counting nothing (a login whose password
    is known good: refused only if a counter is locked)."""
    login, ip = _key(login, ip)
    now = time.time() if now is None else now
    want = _bounds(bounds)
    with Session(engine) as s:
        rows = raw(s).execute("SELECT login, ip, count, last_at FROM login_failures WHERE "
                              "(login = :login AND ip = :ip) OR (login = :login AND ip = '') OR (login = '' AND ip = :ip)",
                              {"login": login, "ip": ip}).fetchall()
    return Attempt(tuple(
        Count(r[0], r[1], int(r[2]) if float(r[3]) >= now - bounds.lockout else 0, float(r[3]),
              want["login_bound"] if not r[1] else want["address_bound"] if not r[0] else want["pair_bound"],
              counted=False)
        for r in rows))


def give_back(engine: Engine, attempt: Attempt, *, succeeded: bool) -> None:
    """Take back a counted attempt whose password was not found wrong: it ``succeeded`` (the
    login from that address starts again at 0), or it was refused unchecked because a counter
    was past its bound (so that one login hammered from an office's address does not use up
    the address's bound for everyone else there, nor the login's for its owner elsewhere).
    Only the counters this attempt moved are touched (a locked one it met stays as it is)."""
    mine = [c for c in attempt.counts if c.counted]
    if not mine:
        return
    # One row per statement, in the order the count took them (pair, login, address): a
    # multi-row UPDATE locks rows in table order, and parallel counts and give-backs taking
    # the same rows in different orders deadlock each other on PostgreSQL.
    mine.sort(key=lambda c: 0 if c.login and c.ip else 1 if c.login else 2)
    with session_scope(engine) as s:
        db = raw(s)
        for c in mine:
            new = "0" if succeeded and c.login and c.ip else "count - 1"
            db.execute(f"UPDATE login_failures SET count = {new} WHERE count > 0 AND login = :l AND ip = :i",
                       {"l": c.login, "i": c.ip})


def unlock(session: Session, login: str, ip: str | None = None) -> int:
    """Forget the failures of ``login`` (from every address), and of ``ip`` for any login when
    given.  Returns how many counters were removed."""
    login = _key(login, "")[0]
    db = raw(session)
    db.execute("DELETE FROM login_failures WHERE login = :login", {"login": login})
    n = int(db.cur.rowcount or 0)
    if ip:
        db.execute("DELETE FROM login_failures WHERE ip = :ip", {"ip": ip[:IP_WIDTH]})
        n += int(db.cur.rowcount or 0)
    return n


def purge(engine: Engine, lockout: float, now: float | None = None) -> None:
    """Drop counters whose last failure is older than ``lockout`` (they would start over anyway)."""
    now = time.time() if now is None else now
    with session_scope(engine) as s:
        raw(s).execute("DELETE FROM login_failures WHERE last_at < :stale", {"stale": now - lockout})

