"""The running sync against a Dovecot that behaves like Exchange or 163 (no IDLE, no CONDSTORE,
no SPECIAL-USE, folders named in Chinese): it polls, finds the Sent folder by its name, files
new mail, and says so in its status."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from mailwarden.gateway.config import Store, Sync
from mailwarden.gateway.sync.filing import FilingPolicy
from mailwarden.gateway.sync.service import MailboxSync
from mailwarden.gateway.upstream.budget import ConnectionBudget
from mailwarden.store import open_store
from mailwarden.store.mails import list_folders, list_mails, sync_status
from mailwarden.store.directory import add_customer, add_user
from sqlmodel import Session

from .conftest import ACCOUNT, upstream_of

pytestmark = pytest.mark.integration


async def test_without_idle_the_sync_polls_and_files(provider, tmp_path):
    store = open_store(Store(url=f"sqlite:///{tmp_path / 'mw.db'}", data_dir=tmp_path, audit_key_file=tmp_path / "k"))
    with Session(store.engine) as s:
        add_user(session=s, login="zhang", name="Zhang", password="password1")
        add_customer(session=s, name="Buyer", domains=["buyer.test"], owner="zhang")
        s.commit()
    policy = FilingPolicy(key=store.audit.key, company_domains=("company.test",), freemail=frozenset())
    budget = ConnectionBudget({"imap": 2})
    sync = MailboxSync(store, upstream_of(provider), Sync(poll_interval=1.0), policy, budget)
    sync.start()
    try:
        subject = f"poll {uuid.uuid4().hex[:6]}"
        raw = (f"From: eva@buyer.test\r\nTo: {ACCOUNT.address}\r\nSubject: {subject}\r\n"
               f"Message-ID: <{uuid.uuid4().hex}@buyer.test>\r\n\r\nHello\r\n").encode()
        await asyncio.to_thread(provider.inject, raw, [ACCOUNT.address], "eva@buyer.test")
        deadline = time.monotonic() + 20
        found, status = [], {}
        while (not found or status.get("worker") != "polling") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            with Session(store.engine) as s:
                found = [m for m in list_mails(session=s) if m.subject == subject]
                status = {st.component: st.state for st in sync_status(session=s)}
        assert found and (found[0].owner, found[0].filed_by) == ("zhang", "domain")
        with Session(store.engine) as s:
            roles = {f.name: f.role for f in list_folders(session=s)}
        assert roles == {"INBOX": "inbox", "已发送": "sent"}
        assert status.get("idle INBOX") == "no IDLE" and status.get("worker") == "polling"
        assert budget.snapshot()["imap"].in_use == 1  # the IDLE connection gave its lease back
    finally:
        await sync.stop()
        store.close()
