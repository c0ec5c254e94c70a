"""The store under test: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from mailwarden.gateway.config import Store
from mailwarden.store import open_store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'mw.db'}"
        handle = open_store(Store(url=url, data_dir=tmp_path, audit_key_file=tmp_path / "audit.key"))
        yield handle
        handle.close()
        return
    url = request.getfixturevalue("pg_database")
    handle = open_store(Store(url=url, data_dir=tmp_path, audit_key_file=tmp_path / "audit.key"))
    yield handle
    handle.close()
