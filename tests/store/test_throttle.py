"""Failed-login counters under parallel attempts, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from mailwarden.store.models import LoginFailure
from mailwarden.store.throttle import Bounds, count_attempt, give_back
from sqlmodel import Session, select

BOUNDS = Bounds(pair=5, address=50, login=50, lockout=60)


def test_parallel_counts_and_give_backs_never_deadlock(store):
    # Each attempt counts three rows and gives some back.  A give-back that locked its rows in
    # another order than the count (a multi-row UPDATE goes in table order) deadlocked with
    # parallel counts on PostgreSQL: an attempt failed with an error instead of an answer.
    def attempt(n: int) -> None:
        login = f"user{n % 3}"
        for _ in range(15):
            counted = count_attempt(store.engine, login, "192.0.2.7", BOUNDS)
            give_back(store.engine, counted, succeeded=n % 2 == 0)

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(attempt, range(12)))  # re-raises any attempt's error

    with Session(store.engine) as s:
        rows = {(r.login, r.ip): r.count for r in s.exec(select(LoginFailure)).all()}
    # Every counted attempt was given back: nothing is left counted against anyone.
    assert set(rows.values()) == {0}, rows
