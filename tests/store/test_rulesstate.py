"""The rules epoch and what each gateway loaded, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from mailwarden.store.db import make_engine
from mailwarden.store.migrate import upgrade
from mailwarden.store.rulesstate import bump, current_epoch, epoch_info, loaded_rules, record_loaded
from sqlmodel import Session


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'db'}" if request.param == "sqlite" else request.getfixturevalue("pg_database")
    eng = make_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


def test_the_epoch_moves_with_who_and_what(engine) -> None:
    assert current_epoch(engine=engine) == 0 and epoch_info(session=Session(engine)).changed_by is None
    for n in (1, 2):
        with Session(engine) as s:
            assert bump(session=s, actor="cli:admin", change=f"change {n}") == n
            s.commit()
    with Session(engine) as s:
        bump(session=s, actor="cli:other", change="rolled back")  # not committed: nothing moved
    assert current_epoch(engine=engine) == 2
    with Session(engine) as s:
        info = epoch_info(session=s)
    assert (info.epoch, info.changed_by, info.change) == (2, "cli:admin", "change 2") and info.changed_at is not None


def test_each_gateway_says_what_it_runs_and_why_a_load_failed(engine) -> None:
    with Session(engine) as s:
        record_loaded(session=s, gateway="a:/data", version="v1", epoch=0, error=None, loaded=True)
        record_loaded(session=s, gateway="b:/data", version="v1", epoch=0, error=None, loaded=True)
        record_loaded(session=s, gateway="a:/data", version="v1", epoch=1, error="site.toml: bad", loaded=False)
    with Session(engine) as s:
        rows = {r.gateway: r for r in loaded_rules(session=s)}
    assert rows["a:/data"].version == "v1" and rows["a:/data"].epoch == 1 and rows["a:/data"].error == "site.toml: bad"
    assert rows["a:/data"].error_at is not None and rows["b:/data"].error is None
    with Session(engine) as s:
        record_loaded(session=s, gateway="a:/data", version="v2", epoch=1, error=None, loaded=True)
        [a] = [r for r in loaded_rules(session=s) if r.gateway == "a:/data"]
    assert (a.version, a.error, a.error_at) == ("v2", None, None)
