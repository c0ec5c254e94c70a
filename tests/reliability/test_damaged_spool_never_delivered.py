"""A damaged spool is never delivered and never loops.

Spool files emptied, replaced and deleted after their 250 (a full disk repaired by hand, a
restore from the wrong backup, a cleanup script): none reaches the customer as it is now; each
is shunted at once with a reason an admin can read in `queue list`, its sender gets a notice in
their INBOX view, the audit chain has the event, and the relay does not try it again by itself.
An intact message beside them, and one spooled before digests were recorded, go out as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

import pytest
from mailwarden.cli.app import app
from mailwarden.store.db import writer_engine
from mailwarden.store.models import AuditEvent, SpoolItem
from sqlalchemy import text
from sqlmodel import Session, select
from typer.testing import CliRunner

from tests.integration.conftest import SHARED, running_gateway, token
from tests.reliability.rig import CUSTOMER, message, settled, subjects

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

KINDS = ("emptied", "altered", "replaced", "deleted", "intact", "undigested")
REASONS = {"emptied": "was emptied", "altered": "was altered", "replaced": "was altered", "deleted": "is missing"}


def damage(path, kind: str) -> None:  # type: ignore[no-untyped-def]
    if kind == "emptied":
        path.write_bytes(b"")
    elif kind == "altered":  # same size, one word changed in place
        data = path.read_bytes()
        path.write_bytes(data.replace(b"quote", b"QUOTE"))
    elif kind == "replaced":  # another file put in its place
        other = path.with_name(".other.tmp")
        other.write_bytes(b"Subject: something else entirely\r\n\r\nnot what was sent\r\n")
        os.replace(other, path)
    elif kind == "deleted":
        path.unlink()


async def test_damaged_spool_files_are_shunted_with_a_notice_never_sent(upstream, tmp_path, monkeypatch, caplog):
    up = upstream
    run = token()
    (tmp_path / "cli.toml").write_text('[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
                                       '[store]\ndata_dir = "data"\n')
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(tmp_path / "cli.toml"))
    caplog.set_level(logging.INFO)
    async with running_gateway(up, tmp_path, retry_initial="1s") as gw:
        await asyncio.to_thread(up.stop_smtp)
        try:
            def send() -> dict[str, int]:
                ids = {}
                with gw.client() as c:
                    for kind in KINDS:
                        c.mail("x@x.example")
                        c.rcpt("max@buyer.test")
                        code, reply = c.data(message(f"{run}-{kind}"))
                        assert code == 250, reply
                        ids[kind] = int(reply.decode().rsplit(" ", 1)[-1])  # "Queued as N"
                return ids
            ids = await asyncio.to_thread(send)
            with Session(gw.store.engine, expire_on_commit=False) as s:
                rows = {kind: s.exec(select(SpoolItem).where(SpoolItem.message_id == ids[kind],
                                                             SpoolItem.stage != "notice")).one() for kind in KINDS}
                assert all(len(r.digest or "") == 64 for r in rows.values())
            # A row from before digests were recorded (migration 0003): sent as it is.  The write
            # lock taken at BEGIN, as the gateway's writers do: the relay writes meanwhile.
            with Session(writer_engine(gw.store.engine)) as s:
                s.execute(text("UPDATE spool SET digest = NULL WHERE id = :id"), {"id": rows["undigested"].id})
                s.commit()
            for kind in KINDS:
                damage(gw.store.spool_dir / rows[kind].blob, kind)
        finally:
            await asyncio.to_thread(up.start_smtp)

        got = await asyncio.to_thread(settled, up, CUSTOMER, run, want=2)
        assert got == {f"{run}-intact": 1, f"{run}-undigested": 1}, got
        notices = await asyncio.to_thread(up.wait_for, SHARED, 4, containing=b"X-Mailwarden-Notice: damaged")
        refs = {int(line.split(b"ref=")[1]) for m in notices for line in m.raw.split(b"\r\n")
                if line.startswith(b"X-Mailwarden-Notice: damaged")}
        assert {ids[k] for k in REASONS} <= refs
        assert all(b"$mw_op_zhang" in " ".join(m.flags).encode() for m in notices)

        def shunted() -> list[dict]:
            r = CliRunner().invoke(app, ["queue", "list", "--state", "shunt", "--json"])
            assert r.exit_code == 0, r.output
            return [json.loads(line) for line in r.stdout.splitlines()]
        listed = {row["message"]: row for row in await asyncio.to_thread(shunted)}
        for kind, reason in REASONS.items():
            row = listed[ids[kind]]
            assert row["state"] == "shunt" and row["last_error"].startswith("not sent: the spool file"), row
            assert reason in row["last_error"], row
        attempts = {m: row["attempts"] for m, row in listed.items()}
        await asyncio.sleep(3)  # retry_initial is 1 s: a loop would have tried again by now
        assert {m: row["attempts"] for m, row in ((r["message"], r) for r in await asyncio.to_thread(shunted))} \
            == attempts
        with Session(gw.store.engine) as s:
            events = s.exec(select(AuditEvent).where(AuditEvent.action == "send.shunted")).all()
        damaged = {json.loads(e.detail)["message"] for e in events if json.loads(e.detail).get("damaged")}
        assert damaged == {ids[k] for k in REASONS}
        assert gw.store.audit.verify().ok
    again = subjects(await asyncio.to_thread(up.fetch_all, CUSTOMER), run)
    assert again == got
    tracebacks = [r for r in caplog.records if r.exc_info and "spool" in r.getMessage()]
    assert not tracebacks, [r.getMessage() for r in tracebacks]

