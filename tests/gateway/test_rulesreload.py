"""The running gateway's rules follow the files and the store's rules epoch; a pack that does
not load leaves the old rules running and says why (log, audit, ``rules list``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mailwarden.cli.app import app
from mailwarden.gateway import rulesreload
from mailwarden.gateway.config import load_config
from mailwarden.gateway.engines import company_profile, rules_settings
from mailwarden.gateway.rulesreload import RulesWatch
from mailwarden.gateway.submission.scanpool import ScanPool, ScanSettings
from mailwarden.rules import CheckContext, Policy, load_policy
from mailwarden.store import StoreHandle, open_store
from mailwarden.store.models import AuditEvent
from mailwarden.store.rulesstate import bump
from sqlmodel import Session, col, select
from typer.testing import CliRunner

PACK = '[[rule]]\nid = "SITE_WORDS"\ncategory = "sensitive_word"\nseverity = "high"\naction = "block"\nwords = ["{word}"]\n'


@pytest.fixture
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "site.toml").write_text(PACK.format(word="first forbidden"))
    cfg_path = tmp_path / "mailwarden.toml"
    cfg_path.write_text('[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
                        '[store]\ndata_dir = "data"\n[rules]\npacks = ["site.toml"]\n')
    cfg = load_config(cfg_path, {"company", "store"})
    assert cfg.store is not None
    store = open_store(cfg.store)
    yield cfg, store
    store.close()


def watch(cfg, store: StoreHandle, applied: list[Policy]) -> RulesWatch:  # type: ignore[no-untyped-def]
    company, settings = company_profile(cfg), rules_settings(cfg)
    w = RulesWatch(store, company, settings, load_policy(company, settings), applied.append, name="gw-test")
    w.start_record()
    return w


def edit(path: Path, text: str) -> None:
    """Write *text* with a modification time that surely differs (coarse file-system clocks)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def events(store: StoreHandle, prefix: str = "rules.") -> list[AuditEvent]:
    with Session(store.engine) as s:
        return list(s.exec(select(AuditEvent).where(col(AuditEvent.action).startswith(prefix))
                           .order_by(col(AuditEvent.seq))).all())


def rules_list(cfg, code: int = 0) -> str:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["--config", str(cfg.path), "rules", "list"])
    assert result.exit_code == code, result.output
    return result.output


def test_an_edited_pack_is_loaded_and_audited(site) -> None:
    cfg, store = site
    applied: list[Policy] = []
    w = watch(cfg, store, applied)
    assert w.check() is False and applied == []  # nothing changed: nothing loaded
    edit(cfg.path.parent / "site.toml", PACK.format(word="second forbidden"))
    assert w.check() is True
    assert [t.text for t in applied[0].dictionary.terms if t.rule == "SITE_WORDS"] == ["second forbidden"]
    [ev] = events(store)
    detail = json.loads(ev.detail)
    assert ev.action == "rules.reloaded" and ev.actor == "system" and ev.target == "gw-test"
    assert detail["files"] == [str(cfg.path.parent / "site.toml")] and "changed_by" not in detail
    assert w.state.version == applied[0].version == detail["version"]


def test_a_broken_pack_keeps_the_old_rules_and_says_why(site, caplog) -> None:
    cfg, store = site
    applied: list[Policy] = []
    w = watch(cfg, store, applied)
    running = w.state.version
    pack = cfg.path.parent / "site.toml"
    edit(pack, PACK.format(word="first forbidden").replace('action = "block"', 'action = "explode"'))
    assert w.check() is False and applied == [] and w.policy.version == running
    assert "site.toml" in (w.state.problem or "") and "action" in (w.state.problem or "")
    assert any("did not load" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    listing = rules_list(cfg, 2)  # the files do not load: said, with what the gateway runs meanwhile
    assert f"running version {running}" in listing and "the last load failed" in listing and "site.toml" in listing

    with Session(store.engine) as s:  # an admin asks again: the same error is not audited again
        bump(session=s, actor="cli:admin", change="rules reload")
        s.commit()
    assert w.check() is False
    [failed] = events(store)
    assert failed.action == "rules.reload_failed" and "explode" in json.loads(failed.detail)["error"]

    edit(pack, PACK.format(word="fixed forbidden"))
    assert w.check() is True and w.state.problem is None
    assert events(store)[-1].action == "rules.reloaded"
    assert "the last load failed" not in rules_list(cfg)


def test_the_epoch_alone_loads_again_and_names_who_moved_it(site, monkeypatch) -> None:
    cfg, store = site
    applied: list[Policy] = []
    w = watch(cfg, store, applied)
    loads = []
    real = rulesreload.load_policy
    monkeypatch.setattr(rulesreload, "load_policy", lambda *a: loads.append(1) or real(*a))
    for _ in range(3):
        assert w.check() is False
    assert loads == []  # no change: one query and a few stats, no load
    words = Path(store.data_dir) / "rules"
    words.mkdir()
    (words / "extra.txt").write_text("# action: block\nsomething new\n")
    with Session(store.engine) as s:
        bump(session=s, actor="cli:admin", change="word list extra")
        s.commit()
    assert w.check() is True and len(loads) == 1 and w.state.epoch == 1
    detail = json.loads(events(store)[-1].detail)
    assert detail["changed_by"] == "cli:admin" and detail["change"] == "word list extra" and detail["epoch"] == 1


def test_scan_workers_scan_with_the_new_rules(site) -> None:
    cfg, _store = site
    company, settings = company_profile(cfg), rules_settings(cfg)
    old = load_policy(company, settings)
    mail = (b"From: a@company.test\r\nTo: b@buyer.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain\r\n\r\nWe talk about the second forbidden thing.\r\n")
    pool = ScanPool(old, ScanSettings(workers=1, memory_mb=0))
    try:
        ctx = CheckContext(operator="zhang")
        assert pool.evaluate(mail, ctx).action != "block"
        edit(cfg.path.parent / "site.toml", PACK.format(word="second forbidden"))
        pool.update(load_policy(company, settings))
        decision = pool.evaluate(mail, ctx)
        assert decision.action == "block" and decision.deciding.rule == "SITE_WORDS"
    finally:
        pool.close()


def test_a_change_whose_event_cannot_be_written_is_tried_again(site, monkeypatch) -> None:
    cfg, store = site
    applied: list[Policy] = []
    w = watch(cfg, store, applied)
    edit(cfg.path.parent / "site.toml", PACK.format(word="second forbidden"))
    real = w._audit

    def store_away(*a, **kw):  # type: ignore[no-untyped-def]
        raise OSError("the store is away")

    monkeypatch.setattr(w, "_audit", store_away)
    with pytest.raises(OSError):
        w.check()
    assert applied == []  # not in force unrecorded
    monkeypatch.setattr(w, "_audit", real)
    assert w.check() is True and len(applied) == 1 and events(store)[-1].action == "rules.reloaded"
