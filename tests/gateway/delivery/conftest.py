"""A deliverer over a real store, with recording stand-ins for the upstream IMAP (the unit
tests of retry and bounce logic; the real servers are in tests/integration)."""

from __future__ import annotations

import pytest
from mailwarden.gateway.config import Config, config_from_dict
from mailwarden.gateway.server import SECTIONS
from mailwarden.gateway.upstream.imap import Refused
from mailwarden.store import StoreHandle, open_store
from mailwarden.store.spool import DueItem, Envelope, accept, due
from sqlalchemy import text
from sqlmodel import Session


class FakeIMAP:
    """Records each APPEND; refuses any that holds a copy whose file name is in ``bad`` (all
    or none, as MULTIAPPEND is)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.there: set[str] = set()  # refs of copies in the folder already
        self.asked: list[list[str]] = []
        self.bad: set[str] = set()
        self.appended: list[tuple[str, bytes, list[str]]] = []  # single APPENDs: folder, message, keywords
        self.down = False  # answer APPEND with a temporary failure

    async def stored(self, folder, refs, header="X-Mailwarden-Ref"):  # type: ignore[no-untyped-def]
        self.asked.append(refs if header == "X-Mailwarden-Ref" else [f"{header}: {r}" for r in refs])
        return self.there & set(refs)

    async def append_many(self, folder, entries):  # type: ignore[no-untyped-def]
        names = [src.path.name for src, _flags, _kw in entries]
        self.calls.append(names)
        if self.bad & set(names):
            exc = Refused("upstream refused APPEND to 'Sent': NO too big")
            exc.stored = 0  # type: ignore[attr-defined]
            raise exc

    async def append(self, folder, message, flags, keywords):  # type: ignore[no-untyped-def]
        if self.down:
            from mailwarden.gateway.upstream.source import TemporaryFailure

            raise TemporaryFailure("cannot connect to the upstream IMAP: connection refused")
        self.appended.append((folder, bytes(message), list(keywords)))

    async def close(self) -> None:
        pass


def delivery_config(tmp_path, smtp_port: int = 1, **sections) -> Config:  # type: ignore[no-untyped-def]
    (tmp_path / "pw").write_text("secret\n")
    cfg = config_from_dict({
        "company": {"name": "Bright Lighting", "domains": ["company.test"]},
        "upstream": {"imap": "localhost:1", "imap_tls": "none", "smtp": f"localhost:{smtp_port}", "smtp_tls": "none",
                     "username": "sales@company.test", "password_file": "pw"},
        "listen": {"smtp": "127.0.0.1:0"}, "store": {"data_dir": "data"},
        "outbound": sections.pop("outbound", {}), "rules": sections.pop("rules", {}),
    }, tmp_path / "mailwarden.toml", SECTIONS)
    assert cfg.store is not None and cfg.upstream is not None and cfg.outbound is not None
    return cfg


@pytest.fixture
def store(tmp_path) -> StoreHandle:  # type: ignore[no-untyped-def]
    handle = open_store(delivery_config(tmp_path).store)  # type: ignore[arg-type]
    yield handle
    handle.close()


def spooled(store: StoreHandle, *, stage: str = "relay", attempts: int = 0, rcpts: tuple[str, ...] = ("max@buyer.test",),
            ref: str = "", age: float = 0.0, body: bytes = b"Subject: x\r\n\r\nx\r\n") -> DueItem:
    """A message accepted into the spool (really: files and rows), moved to ``stage``; as the
    deliverer reads it."""
    env = Envelope(mail_from="sales@company.test", rcpts=rcpts, operator="zhang", operator_id=None, customer_ids=(),
                   subject="x", message_id=None, keywords=("$mw_op_zhang",),
                   sent_headers=f"X-Mailwarden-Operator: zhang\r\nX-Mailwarden-Ref: {ref}\r\n" if ref else "")
    msg = accept(session=Session(store.engine, expire_on_commit=False), audit=store.audit, spool_dir=store.spool_dir,
                 chunks=[body], env=env)
    with Session(store.engine) as s:
        s.execute(text("UPDATE spool SET stage = :stage, attempts = :attempts WHERE message_id = :m"),
                  {"stage": stage, "attempts": attempts, "m": msg})
        if age:
            s.execute(text("UPDATE spool SET created_at = datetime(created_at, '-' || :age || ' seconds') "
                           "WHERE message_id = :m"), {"age": int(age), "m": msg})  # the store here is SQLite
        s.commit()
        [item] = [i for i in due(session=s, now=_far(), limit=1000, stages=(stage,)) if i.message_id == msg]
    return item


def _far():  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    return datetime(2999, 1, 1, tzinfo=timezone.utc)


def row(store: StoreHandle, item_id: int) -> dict:
    with Session(store.engine) as s:
        r = s.execute(text("SELECT stage, attempts, last_error, rcpts FROM spool WHERE id = :id"), {"id": item_id}).one()
    return {"stage": r[0], "attempts": r[1], "last_error": r[2], "rcpts": r[3]}
