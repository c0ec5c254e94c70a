"""Fixtures shared by the whole suite: the real mail upstream and the PostgreSQL URL.

Integration tests run against a real Dovecot + Postfix (``upstream``); PostgreSQL tests use
``MAILWARDEN_TEST_PG_URL``. Outside CI a missing prerequisite skips with the reason; with
``CI=true`` it fails, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from mailwarden.testing.localupstream import LocalUpstream, MailAccount, UpstreamUnavailable

IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")

UPSTREAM_ACCOUNT = MailAccount("sales@company.test", "company-secret")
"""The shared company mailbox on the upstream (what the gateway logs in as)."""


def missing_prerequisite(reason: str) -> NoReturn:
    """Skip the test, or fail it when running in CI."""
    if IN_CI:
        pytest.fail(f"{reason} [CI=true: this test must not be skipped]", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def upstream_account() -> MailAccount:
    """Address and password of the shared company mailbox on ``upstream``."""
    return MailAccount(UPSTREAM_ACCOUNT.address, UPSTREAM_ACCOUNT.password)


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUpstream]:
    """A running Dovecot + Postfix for the whole session (see mailwarden.testing.localupstream).

    Accounts: ``sales@company.test`` / ``company-secret`` and ``catchall@<domain>`` /
    ``catchall`` for company.test, buyer.test, customer.test and example.com. Tests share it:
    look for your own messages (``wait_for(..., containing=token)``), not for counts.
    """
    yield from running(LocalUpstream(tmp_path_factory.mktemp("upstream"), [UPSTREAM_ACCOUNT]))


def running(server: LocalUpstream) -> Iterator[LocalUpstream]:
    """Start ``server``, yield it, stop it (for a fixture); a missing prerequisite skips (CI: fails)."""
    unavailable = ""
    try:
        server.start()
    except UpstreamUnavailable as exc:
        unavailable = str(exc)
    if unavailable:
        missing_prerequisite(unavailable)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """SQLAlchemy URL of a scratch PostgreSQL database, from ``MAILWARDEN_TEST_PG_URL``."""
    url = os.environ.get("MAILWARDEN_TEST_PG_URL", "").strip()
    if not url:
        missing_prerequisite("MAILWARDEN_TEST_PG_URL is not set")
    return url


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    name = "mw_" + uuid.uuid4().hex[:12]
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that starts the real Dovecot/Postfix (the ``upstream`` fixture) must say so with
    the ``integration`` marker, so ``-m integration`` / ``-m "not integration"`` select truly."""
    unmarked = [item.nodeid for item in items
                if "upstream" in getattr(item, "fixturenames", ()) and item.get_closest_marker("integration") is None]
    if unmarked:
        raise pytest.UsageError("tests that start the real upstream must be marked integration: " + ", ".join(unmarked))
