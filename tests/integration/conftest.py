"""The gateway under test, in the test's own event loop, in front of the real upstream.

Clients (smtplib, imaplib) are blocking: tests call them through
``asyncio.to_thread`` so the gateway keeps running on the loop meanwhile.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from mailwarden.gateway.config import Config, config_from_dict
from mailwarden.gateway.server import SECTIONS, Gateway
from mailwarden.store import StoreHandle, open_store
from mailwarden.store.directory import add_customer, add_user
from sqlmodel import Session

SHARED = "sales@company.test"
PASSWORDS = {"zhang": "zhang-password", "li": "li-password-1"}


def gateway_config(tmp_path: Path, upstream, *, smtp_port: int | None = None, rules: dict | None = None,  # type: ignore[no-untyped-def]
                   sync: dict | None = None, address: str = SHARED, imap_port: int | None = None,
                   listen: dict | None = None, imap: dict | None = None, **outbound) -> Config:
    """``imap_port``: where the gateway finds the upstream's IMAPS (a fault proxy's port);
    ``sync``: the ``[sync]`` table; off unless given (the shared upstream's INBOX holds every
    test's mail: the sync is tried on upstreams of its own, see tests/integration/test_sync.py)."""
    (tmp_path / "upstream.password").write_text(upstream.password_for(address) + "\n")
    raw = {
        "company": {"name": "Bright Lighting", "domains": ["company.test"],
                    "official_phones": ["+86 574 8888 0000"], "official_handles": ["wechat:BrightLightingCN"]},
        "upstream": {"imap": f"localhost:{imap_port or upstream.imaps_port}", "imap_tls": "implicit",
                     "smtp": f"localhost:{smtp_port or upstream.submission_port}",
                     "smtp_tls": "starttls" if smtp_port is None else "none",
                     "username": address, "password_file": "upstream.password", "ca_file": str(upstream.ca_file)},
        "listen": {"smtp": "127.0.0.1:0", "smtps": "127.0.0.1:0", "hostname": "localhost", **(listen or {})},
        "store": {"data_dir": "data"},
        "outbound": {"retry_initial": "0.5s", **outbound},
        "auth": {"base_delay": "0.05s", "max_delay": "0.4s", "max_failures": 6, "lockout": "60s"},
        "rules": rules or {},
        "sync": sync if sync is not None else {"enabled": False},
        "imap": imap or {},
    }
    return config_from_dict(raw, tmp_path / "mailwarden.toml", SECTIONS)


def seed(store: StoreHandle) -> None:
    with Session(store.engine) as s:
        add_user(session=s, login="zhang", name="Zhang San", password=PASSWORDS["zhang"])
        add_user(session=s, login="li", name="Li Si", password=PASSWORDS["li"])
        add_customer(session=s, name="Acme Lighting GmbH", domains=["buyer.test"], owner="zhang")
        s.commit()


@dataclass
class RunningGateway:
    gw: Gateway
    cfg: Config
    store: StoreHandle
    upstream: object

    @property
    def smtp_port(self) -> int:
        return self.gw.bound["smtp"].port

    @property
    def smtps_port(self) -> int:
        return self.gw.bound["smtps"].port

    def tls(self) -> ssl.SSLContext:
        assert self.cfg.listen is not None
        ctx = ssl.create_default_context(cafile=str(self.cfg.listen.tls_cert))
        return ctx

    def client(self, login: str | None = "zhang", password: str | None = None) -> smtplib.SMTP:
        """A logged-in submission client (STARTTLS)."""
        return submission_client(self.smtp_port, self.tls(), login, password)


def submission_client(port: int, tls: ssl.SSLContext, login: str | None = "zhang",
                      password: str | None = None) -> smtplib.SMTP:
    c = smtplib.SMTP("localhost", port, timeout=30)
    try:
        c.starttls(context=tls)
        if login:
            c.login(login, password or PASSWORDS[login])
    except BaseException:
        c.close()
        raise
    return c


def send_one(gw: RunningGateway, raw: bytes, rcpt: str = "max@buyer.test", login: str = "zhang") -> tuple[int, bytes]:
    """One message as ``login`` over a fresh connection; the reply to DATA (code, text)."""
    with gw.client(login) as c:
        c.mail("z@x.example")
        c.rcpt(rcpt)
        return c.data(raw)


def token() -> str:
    return uuid.uuid4().hex[:12]


def message(subject: str, body: str = "Please find our quote below.\r\n", to: str = "max@buyer.test",
            extra: str = "") -> bytes:
    return (f"From: Zhang <zhang@company.test>\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()


@asynccontextmanager
async def running_gateway(upstream, tmp_path: Path, *, delivery_process: bool = False,  # type: ignore[no-untyped-def]
                          **kw) -> AsyncIterator[RunningGateway]:
    cfg = gateway_config(tmp_path, upstream, **kw)
    assert cfg.store is not None
    store = open_store(cfg.store)
    seed(store)
    gw = Gateway(cfg, store, delivery_process=delivery_process)
    await gw.start()
    try:
        yield RunningGateway(gw, cfg, store, upstream)
    finally:
        await asyncio.wait_for(gw.stop(), 60)
        store.close()


@pytest.fixture
async def gateway(upstream, tmp_path) -> AsyncIterator[RunningGateway]:  # type: ignore[no-untyped-def]
    async with running_gateway(upstream, tmp_path) as gw:
        yield gw
