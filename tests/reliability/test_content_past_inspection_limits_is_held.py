"""Beyond the inspection limits means held, not flagged: what lies past a limit (MIME parts,
nesting depth, archive members, an archive in an archive) was never read, so by default the
message waits for a supervisor, and the audit names the limit. A site may decide otherwise
in its rule pack."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from email.message import EmailMessage

import pytest
from mailwarden.store.models import AuditEvent
from sqlmodel import Session, col, select

from tests.integration.conftest import running_gateway, send_one, token
from tests.reliability.conftest import held

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _with_zip(subject: str, data: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "zhang@company.test", "max@buyer.test", subject
    msg.set_content("Files attached.\n")
    msg.add_attachment(data, maintype="application", subtype="zip", filename="files.zip")
    return msg.as_bytes()


def _many_parts(subject: str, n: int) -> bytes:
    boundary = "b0undary"
    parts = "".join(f"--{boundary}\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(n))
    return (f"From: zhang@company.test\r\nTo: max@buyer.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n{parts}--{boundary}--\r\n").encode()


def _deep(subject: str, depth: int) -> bytes:
    head = f"From: zhang@company.test\r\nTo: max@buyer.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
    body = "Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for i in range(depth):
        body = (f"Content-Type: multipart/mixed; boundary=d{i}\r\n\r\n--d{i}\r\n{body}--d{i}--\r\n")
    return (head + body).encode()


CASES = {
    "parts": (lambda s: _many_parts(s, 1100), "limit parts"),
    "depth": (lambda s: _deep(s, 12), "limit depth"),
    "members": (lambda s: _with_zip(s, _zip({f"f{i}.txt": b"x" for i in range(501)})), "limit archive members"),
    "nested": (lambda s: _with_zip(s, _zip({"inner.zip": _zip({"a.txt": b"hello"})})), "limit nested archives"),
}


async def test_each_limit_holds_the_message_and_the_audit_names_it(upstream, tmp_path):
    t = token()
    # A budget that cannot run out first: parsing 1100 parts costs a busy machine about as much
    # CPU as the default budget, and a timeout would hold the message without naming the limit.
    async with running_gateway(upstream, tmp_path, rules={"budget_ms": 5000}) as gw:
        for name, (build, limit) in CASES.items():
            code, reply = await asyncio.to_thread(send_one, gw, build(f"{name} {t}"))
            assert code == 250 and b"Held for review" in reply, (name, reply)
            reason = held(gw)[f"{name} {t}"]
            assert reason.startswith("INSPECTION_LIMIT") and limit in reason, (name, reason)
        with Session(gw.store.engine) as s:
            events = s.exec(select(AuditEvent).where(AuditEvent.action == "rules.quarantine")
                            .order_by(col(AuditEvent.seq))).all()
        matches = [f["match"] for e in events for f in json.loads(e.detail)["findings"] if f["rule"] == "INSPECTION_LIMIT"]
        for _, limit in CASES.values():
            assert any(limit in m for m in matches), (limit, matches)


async def test_a_site_may_let_such_mail_through_flagged(upstream, tmp_path):
    pack = tmp_path / "site-rules.toml"
    pack.write_text('[[rule]]\nid = "INSPECTION_LIMIT"\naction = "flag"\n')
    t = token()
    async with running_gateway(upstream, tmp_path, rules={"packs": [str(pack)]}) as gw:
        build, limit = CASES["nested"]
        code, reply = await asyncio.to_thread(send_one, gw, build(f"nested {t}"))
        assert code == 250 and b"Queued" in reply, reply
        await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=f"nested {t}".encode())
        with Session(gw.store.engine) as s:
            events = s.exec(select(AuditEvent).where(AuditEvent.action == "rules.flag")).all()
        assert any(limit in f["match"] for e in events for f in json.loads(e.detail)["findings"])
