"""Logins (gateway/auth.py): argon2 checks off the event loop, throttling and lockout, the
cache of good logins, and cutting the live sessions of a disabled user."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from mailwarden.gateway.auth import Authenticator, SessionRegistry, watch_users
from mailwarden.gateway.config import Auth, Store
from mailwarden.store import StoreHandle, open_store
from mailwarden.store.directory import add_user, set_enabled, set_password
from mailwarden.store.rawsql import raw

SETTINGS = Auth(max_failures=4, base_delay=0.1, max_delay=0.3, lockout_seconds=60)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreHandle]:
    st = open_store(Store(url=f"sqlite:///{tmp_path / 'db'}", data_dir=tmp_path, audit_key_file=tmp_path / "k"))
    with st.session() as s:
        add_user(session=s, login="zhang", name="Zhang San", password="right-password", team="export")
        add_user(session=s, login="li", name="Li Si", password="li-password-1")
    yield st
    st.close()


async def test_login_throttle_grows_and_locks_the_login_from_that_address(store: StoreHandle) -> None:
    auth = Authenticator(store, SETTINGS)
    delays = [(await auth.check("zhang", "wrong", "10.0.0.1")).delay for _ in range(4)]
    assert delays == [0.1, 0.2, 0.3, 0.3]
    locked = await auth.check("ZHANG", "right-password", "10.0.0.1")
    assert locked.identity is None and locked.locked and "login from this address" in locked.reason
    # One office behind one NAT address: the others there, and zhang elsewhere, still log in.
    assert (await auth.check("li", "li-password-1", "10.0.0.1")).identity is not None
    assert (await auth.check("zhang", "right-password", "10.0.0.2")).identity is not None


async def test_the_wider_bounds_lock_the_login_everywhere_and_the_address_for_everyone(store: StoreHandle) -> None:
    auth = Authenticator(store, Auth(max_failures=4, base_delay=0.0, max_delay=0.0, lockout_seconds=60,
                                     max_failures_address=8, max_failures_login=6))
    for n in range(6):  # one guess each from six addresses
        assert not (await auth.check("zhang", "wrong", f"10.1.0.{n}")).locked
    locked = await auth.check("zhang", "right-password", "10.1.0.99")
    assert locked.locked and "for this login" in locked.reason
    for n in range(8):  # one address tries eight logins
        assert not (await auth.check(f"user{n}", "wrong", "10.2.0.1")).locked
    locked = await auth.check("li", "li-password-1", "10.2.0.1")
    assert locked.locked and "for this address" in locked.reason
    # Refused attempts are not counted against the other bounds: li from elsewhere is fine.
    assert (await auth.check("li", "li-password-1", "10.2.0.2")).identity is not None


async def test_a_good_login_names_the_user_and_clears_the_logins_failures(store: StoreHandle) -> None:
    auth = Authenticator(store, SETTINGS)
    for _ in range(3):
        assert (await auth.check("zhang", "wrong", "10.0.0.1")).identity is None
    ok = await auth.check(" Zhang ", "right-password", "10.0.0.9")
    assert ok.identity is not None and (ok.identity.login, ok.identity.team) == ("zhang", "export")
    # the login's count starts again: three more mistakes do not lock it
    for _ in range(3):
        assert not (await auth.check("zhang", "wrong", "10.0.0.8")).locked


async def test_unknown_login_and_wrong_password_read_the_same(store: StoreHandle) -> None:
    auth = Authenticator(store, SETTINGS)
    unknown = await auth.check("nobody", "x", "10.0.0.1")
    wrong = await auth.check("li", "x", "10.0.0.2")
    assert (unknown.identity, unknown.reason, unknown.locked) == (wrong.identity, wrong.reason, wrong.locked)
    assert unknown.reason == "bad credentials"


async def test_a_disabled_user_fails_at_once_even_with_a_cached_good_login(store: StoreHandle) -> None:
    auth = Authenticator(store, SETTINGS)
    assert (await auth.check("zhang", "right-password", "10.0.0.1")).identity is not None  # now cached
    with store.session() as s:
        set_enabled(session=s, login="zhang", enabled=False)
    refused = await auth.check("zhang", "right-password", "10.0.0.1")
    assert refused.identity is None and refused.reason == "disabled"


async def test_a_cached_good_login_writes_nothing_yet_a_lockout_still_holds(store: StoreHandle) -> None:
    auth = Authenticator(store, SETTINGS)
    assert (await auth.check("zhang", "right-password", "10.0.0.1")).identity is not None  # now cached

    def counters() -> list[tuple]:
        with store.session() as s:
            return list(raw(s).execute("SELECT login, ip, count, last_at FROM login_failures ORDER BY 1, 2").fetchall())

    before = counters()
    assert (await auth.check("zhang", "right-password", "10.0.0.1")).identity is not None
    assert counters() == before  # a known-good password: no count, no give-back
    for _ in range(4):
        assert (await auth.check("zhang", "wrong", "10.0.0.1")).identity is None
    locked = await auth.check("zhang", "right-password", "10.0.0.1")
    assert locked.identity is None and locked.locked  # the cache does not get round the lockout
    # failures from here, then the good password from here: its count is given back as before
    assert (await auth.check("zhang", "wrong", "10.0.0.3")).identity is None
    assert (await auth.check("zhang", "right-password", "10.0.0.3")).identity is not None
    assert [r[2] for r in counters() if r[:2] == ("zhang", "10.0.0.3")] == [0]


async def test_a_cached_good_login_does_not_get_round_the_lockout_of_the_login_everywhere(store: StoreHandle) -> None:
    auth = Authenticator(store, Auth(max_failures=4, base_delay=0.0, max_delay=0.0, lockout_seconds=60,
                                     max_failures_address=8, max_failures_login=6))
    assert (await auth.check("zhang", "right-password", "10.3.0.1")).identity is not None  # now cached
    for n in range(8):  # guesses from many addresses lock the login everywhere
        await auth.check("zhang", "wrong", f"10.4.0.{n}")
    for address in ("10.4.0.99", "10.3.0.1"):  # a right guess from a new address, or the user's own
        refused = await auth.check("zhang", "right-password", address)
        assert refused.identity is None and refused.locked and "for this login" in refused.reason


async def test_a_changed_password_ends_the_cached_one(store: StoreHandle) -> None:
    auth = Authenticator(store, SETTINGS)
    assert (await auth.check("zhang", "right-password", "10.0.0.1")).identity is not None
    with store.session() as s:
        set_password(session=s, login="zhang", password="a-new-password-2")
    assert (await auth.check("zhang", "right-password", "10.0.0.1")).identity is None
    assert (await auth.check("zhang", "a-new-password-2", "10.0.0.1")).identity is not None


def test_pair_digest_is_keyed_per_process_and_ignores_login_case(store: StoreHandle) -> None:
    a, b = Authenticator(store, SETTINGS), Authenticator(store, SETTINGS)
    assert a.pair_digest("Zhang", "pw") == a.pair_digest("zhang ", "pw") != a.pair_digest("zhang", "pw2")
    assert a.pair_digest("zhang", "pw") != b.pair_digest("zhang", "pw")  # useless outside the process


async def test_the_watcher_cuts_every_live_session_of_a_disabled_user(store: StoreHandle) -> None:
    auth = Authenticator(store, SETTINGS)
    registry = SessionRegistry()
    zhang = (await auth.check("zhang", "right-password", "10.0.0.1")).identity
    li = (await auth.check("li", "li-password-1", "10.0.0.1")).identity
    assert zhang is not None and li is not None
    cut: list[str] = []
    registry.add(zhang, 1, lambda: cut.append("zhang-1"))
    registry.add(zhang, 2, lambda: cut.append("zhang-2"))
    registry.add(li, 3, lambda: cut.append("li-3"))
    watcher = asyncio.create_task(watch_users(store, registry, auth, interval=0.05))
    try:
        with store.session() as s:
            set_enabled(session=s, login="zhang", enabled=False)
        for _ in range(100):
            if cut:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # a later round must not cut anyone else
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert sorted(cut) == ["zhang-1", "zhang-2"]
    assert "zhang" not in registry.sessions and 3 in registry.sessions["li"]
