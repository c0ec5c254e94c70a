"""``mailwarden user unlock``: a lockout after failed logins ends at once, audited."""

from __future__ import annotations

import json

from mailwarden.gateway.config import load_config
from mailwarden.store import open_store
from mailwarden.store.models import AuditEvent
from mailwarden.store.throttle import Bounds, count_attempt
from sqlmodel import Session, select


BOUNDS = Bounds(pair=3, address=30, login=15, lockout=600)


def _locked(cfg_path, login: str, ip: str) -> bool:  # type: ignore[no-untyped-def]
    cfg = load_config(cfg_path, {"store"})
    st = open_store(cfg.store)
    try:
        return count_attempt(st.engine, login, ip, BOUNDS).locked is not None
    finally:
        st.close()


def test_unlock_ends_a_lockout_and_is_audited(cli, tmp_path):  # noqa: F811
    cfg = tmp_path / "mailwarden.toml"
    assert cli("user", "add", "zhang", "--name", "Zhang", "--password-stdin", input="correct-horse\n").exit_code == 0
    for _ in range(BOUNDS.pair):
        assert not _locked(cfg, "zhang", "192.0.2.7")
    assert _locked(cfg, "zhang", "192.0.2.7")
    r = cli("user", "unlock", "zhang")
    assert r.exit_code == 0, r.output
    assert "zhang unlocked (2 failure counters cleared)" in r.output  # from 192.0.2.7, and from anywhere
    assert not _locked(cfg, "zhang", "192.0.2.7")
    st = open_store(load_config(cfg, {"store"}).store)
    with Session(st.engine) as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "user.unlock")).one()
    st.close()
    assert ev.target == "zhang" and ev.actor.startswith("cli") and json.loads(ev.detail)["counters"] == 2


def test_unlock_names_an_unknown_user(cli):  # noqa: F811
    r = cli("user", "unlock", "nobody")
    assert r.exit_code == 2 and "no user 'nobody'" in r.output
