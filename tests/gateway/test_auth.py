"""Logins: argon2 checks off the event loop, throttling and lockout."""

async def test_login_throttle_grows_and_locks(tmp_path):
    from mailwarden.gateway.auth import Authenticator
    from mailwarden.gateway.config import Auth, Store
    from mailwarden.store import open_store
    from mailwarden.store.directory import add_user

    store = open_store(Store(url=f"sqlite:///{tmp_path / 'db'}", data_dir=tmp_path, audit_key_file=tmp_path / "k"))
    with store.session() as s:
        add_user(session=s, login="zhang", name="Z", password="right-password")
    auth = Authenticator(store, Auth(max_failures=4, base_delay=0.1, max_delay=0.3, lockout_seconds=60))
    delays = [(await auth.check("zhang", "wrong", "10.0.0.1")).delay for _ in range(4)]
    assert delays == [0.1, 0.2, 0.3, 0.3]
    locked = await auth.check("zhang", "right-password", "10.0.0.2")
    assert locked.identity is None and locked.locked  # the login is locked, from any address
    other = await auth.check("li", "whatever", "10.0.0.1")
    assert other.locked  # and the address is locked, for any login
    assert (await auth.check("ZHANG", "right-password", "10.0.0.3")).locked
    store.close()
