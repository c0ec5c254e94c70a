"""Files are private: another local user cannot read the password hashes, the audit key or the
spool; a data directory made looser by hand is named in a warning at start."""

from __future__ import annotations

import asyncio
import logging
import os
import stat

import pytest
from mailwarden.gateway.server import Gateway
from mailwarden.store import open_store

from tests.integration.conftest import message, running_gateway, send_one, token

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def mode(path) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_store_files_are_private(upstream, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="mailwarden")
    old = os.umask(0o022)  # the usual umask: what SQLite would otherwise create 0644 under
    try:
        async with running_gateway(upstream, tmp_path) as gw:
            assert (await asyncio.to_thread(send_one, gw, message(token())))[0] == 250
            data = gw.cfg.store.data_dir
            db = data / "mailwarden.db"
            assert mode(data) == 0o700
            for path in (db, db.with_name(db.name + "-wal"), data / "audit.key", data / "audit.key.head"):
                assert mode(path) == 0o600, path
            assert mode(data / "spool") == 0o700 and mode(data / "tls") == 0o700
        assert not [r for r in caplog.records if "other local users" in r.getMessage()]
        os.chmod(data, 0o755)
        os.chmod(db, 0o644)
        store = open_store(gw.cfg.store)  # the same store again, not seeded twice
        again = Gateway(gw.cfg, store)
        await again.start()
        await again.stop()
        store.close()
    finally:
        os.umask(old)
    warned = [r.getMessage() for r in caplog.records if "other local users" in r.getMessage()]
    assert any(str(data) in w and "0755" in w and "chmod 0700" in w for w in warned), warned
    assert any(str(db) in w and "0644" in w for w in warned), warned
