"""The audit chain proves its own completeness: events cut from its head, its tail or both,
with the record of its head removed or rewritten, are found by ``mailwarden audit verify``;
with an anchor kept away from the gateway, even by someone who holds the audit key."""

from __future__ import annotations

import asyncio

import pytest
from mailwarden.cli.app import app
from mailwarden.store.audit import _anchor_record
from sqlalchemy import text
from sqlmodel import Session
from typer.testing import CliRunner

from tests.integration.conftest import message, running_gateway, send_one, token

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def cut(store, where: str) -> None:  # type: ignore[no-untyped-def]
    with Session(store.engine) as s:
        s.exec(text(f"DELETE FROM audit_events WHERE {where}"))
        s.commit()


def last_row(store) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with Session(store.engine) as s:
        row = s.exec(text("SELECT seq, mac FROM audit_events ORDER BY seq DESC LIMIT 1")).one()
    return int(row[0]), str(row[1])


@pytest.mark.parametrize("attack", ["head and tail", "tail and head record", "tail, head record forged",
                                    "everything", "tail, head record rewritten with the key"])
async def test_audit_truncation_is_detected(upstream, tmp_path, monkeypatch, attack):
    (tmp_path / "mailwarden.toml").write_text('[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
                                              '[store]\ndata_dir = "data"\n')
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(tmp_path / "mailwarden.toml"))
    cli = CliRunner()
    kept = tmp_path / "elsewhere" / "anchors.txt"
    kept.parent.mkdir()
    async with running_gateway(upstream, tmp_path) as gw:
        for _ in range(3):  # logins and sends: a chain of a few events
            assert (await asyncio.to_thread(send_one, gw, message(token())))[0] == 250
        store = gw.store
    total = last_row(store)[0]  # the relay adds its events too: counted once it stopped
    assert total >= 6
    r = cli.invoke(app, ["audit", "anchor", "--out", str(kept)])
    assert r.exit_code == 0 and f"events={total} " in kept.read_text(), r.output
    assert cli.invoke(app, ["audit", "verify", "--anchor", str(kept)]).exit_code == 0

    head_file = store.audit.head_file
    if attack == "head and tail":
        cut(store, f"seq <= 2 OR seq > {total - 2}")
    elif attack == "tail and head record":
        cut(store, f"seq > {total - 2}")
        head_file.unlink()
    elif attack == "tail, head record forged":  # in the older format, which needs no key
        import hashlib

        cut(store, f"seq > {total - 2}")
        seq, mac = last_row(store)
        check = hashlib.sha256(f"{seq} {mac}".encode()).hexdigest()[:16]
        head_file.write_text(f"{seq} {mac} {check}\n")
    elif attack == "everything":
        cut(store, "1 = 1")
        head_file.unlink()
    else:
        cut(store, f"seq > {total - 2}")
        head_file.write_bytes(_anchor_record(store.audit.key, *last_row(store)))

    with_key = attack == "tail, head record rewritten with the key"
    plain = cli.invoke(app, ["audit", "verify"])
    if with_key:
        assert plain.exit_code == 0  # consistent in itself: only the kept anchor can tell
    else:
        assert plain.exit_code == 1 and "audit chain broken" in plain.output, plain.output
    anchored = cli.invoke(app, ["audit", "verify", "--anchor", str(kept)])
    assert anchored.exit_code == 1 and "audit chain broken" in anchored.output, anchored.output
    if with_key:
        assert f"records {total} events: events were removed" in " ".join(anchored.output.split())


def test_a_bad_anchor_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "mailwarden.toml").write_text('[company]\nname = "B"\ndomains = ["company.test"]\n'
                                              '[store]\ndata_dir = "data"\n')
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(tmp_path / "mailwarden.toml"))
    bad = tmp_path / "anchors.txt"
    bad.write_text("# kept on the backup host\nmailwarden-audit-anchor events=3 head=abc\n")
    r = CliRunner().invoke(app, ["audit", "verify", "--anchor", str(bad)])
    assert r.exit_code == 2 and "anchors.txt: line 2: not an audit anchor" in r.output
