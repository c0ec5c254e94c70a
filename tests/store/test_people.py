"""People change: users edited, customers reassigned, names unique regardless of case."""

from __future__ import annotations

import pytest
from alembic import command
from mailwarden.store.directory import (
    DirectoryError,
    add_customer,
    add_user,
    assign_customer,
    edit_user,
    get_customer,
    reassign_customers,
    set_enabled,
)
from mailwarden.store.migrate import _alembic_config
from mailwarden.store.views import epoch
from sqlalchemy import create_engine, text
from sqlmodel import Session


def test_customer_names_are_one_name_in_any_case(store):
    with Session(store.engine) as s:
        add_customer(session=s, name="Acme Lighting GmbH")
        with pytest.raises(DirectoryError, match="exists already as 'Acme Lighting GmbH'"):
            add_customer(session=s, name="ACME lighting gmbh")
        # casefold, not SQL lower(): SQLite's folds only ASCII
        add_customer(session=s, name="Straße Licht")
        with pytest.raises(DirectoryError, match="exists already"):
            add_customer(session=s, name="STRASSE LICHT")
        s.commit()
        assert get_customer(session=s, name_or_id="acme LIGHTING gmbh").name == "Acme Lighting GmbH"


def test_a_disabled_user_gets_no_customers(store):
    with Session(store.engine) as s:
        add_user(session=s, login="zhang", name="Zhang", password="password1")
        add_customer(session=s, name="Acme")
        set_enabled(session=s, login="zhang", enabled=False)
        with pytest.raises(DirectoryError, match="disabled"):
            assign_customer(session=s, name_or_id="Acme", owner="zhang")
        with pytest.raises(DirectoryError, match="disabled"):
            add_customer(session=s, name="Globex", owner="zhang")


def test_reassign_moves_every_customer_through_the_views_epoch(store):
    with Session(store.engine) as s:
        for login in ("zhang", "li", "gone"):
            add_user(session=s, login=login, name=login, password="password1")
        add_customer(session=s, name="Acme", owner="zhang")
        add_customer(session=s, name="Globex", owner="zhang")
        add_customer(session=s, name="Initech", owner="li")
        s.commit()
        before = epoch(s)
        set_enabled(session=s, login="zhang", enabled=False)  # who leaves is disabled first
        moved = reassign_customers(session=s, from_login="zhang", to_login="li")
        s.commit()
        assert sorted(c.name for c in moved) == ["Acme", "Globex"]
        assert epoch(s) > before  # what makes the IMAP sessions refresh their views
        set_enabled(session=s, login="gone", enabled=False)
        with pytest.raises(DirectoryError, match="disabled"):
            reassign_customers(session=s, from_login="li", to_login="gone")


def test_edit_user_reports_what_changed_and_moves_views_on_team_change(store):
    with Session(store.engine) as s:
        add_user(session=s, login="wang", name="Wang", password="password1", role="sales")
        s.commit()
        before = epoch(s)
        user, changes = edit_user(session=s, login="wang", name="Wang Wu", team="export", role="supervisor", lang="ZH")
        s.commit()
        assert changes == {"name": ("Wang", "Wang Wu"), "team": (None, "export"), "role": ("sales", "supervisor"),
                           "lang": (None, "zh")}
        assert epoch(s) > before
        assert edit_user(session=s, login="wang", name="Wang Wu")[1] == {}
        assert edit_user(session=s, login="wang", team="", lang="")[1] == {"team": ("export", None), "lang": ("zh", None)}
        with pytest.raises(DirectoryError, match="language 'fr'"):
            edit_user(session=s, login="wang", lang="fr")
        with pytest.raises(DirectoryError, match="role 'boss'"):
            edit_user(session=s, login="wang", role="boss")


def test_migration_renames_names_differing_only_in_case(tmp_path):
    """An installation made before names were unique regardless of case upgrades, keeping the oldest."""
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
        for name in ("Acme", "ACME", "Globex"):
            conn.execute(text("INSERT INTO customers (name, created_at, mailbox_id) VALUES (:n, '2026-01-01', 1)"),
                         {"n": name})
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        rows = conn.execute(text("SELECT id, name, name_key FROM customers ORDER BY id")).all()
    assert [(r[1], r[2]) for r in rows] == [("Acme", "acme"), (f"ACME (#{rows[1][0]})", f"acme (#{rows[1][0]})"),
                                            ("Globex", "globex")]
    engine.dispose()
