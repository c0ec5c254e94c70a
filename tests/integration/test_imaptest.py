"""Dovecot's imaptest against the gateway's IMAP: its compliance groups and its stress mode.

The binary's path comes from ``MAILWARDEN_IMAPTEST`` (``.ci/run`` sets it); without it the
tests are skipped with that reason (under CI=true a missing prerequisite fails instead)."""

from __future__ import annotations

import asyncio
import imaplib
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import missing_prerequisite

from .conftest import PASSWORDS, running_gateway

pytestmark = pytest.mark.integration

LISTEN = {"imap": "127.0.0.1:0", "imaps": "127.0.0.1:0"}
# Every group of the capabilities offered passes, as against Dovecot itself; a group that
# fails is a regression.
KNOWN_FAILING = 0


def imaptest_binary() -> Path:
    path = os.environ.get("MAILWARDEN_IMAPTEST", "").strip()
    if not path:
        missing_prerequisite("MAILWARDEN_IMAPTEST is not set (the path of Dovecot's imaptest binary)")
    binary = Path(path)
    if not binary.is_file():
        missing_prerequisite(f"MAILWARDEN_IMAPTEST={path}: no such file")
    return binary


async def run_imaptest(upstream, tmp_path: Path, *args: str, timeout: float) -> str:  # type: ignore[no-untyped-def]
    """imaptest against a gateway of its own, logged in as zhang; what it printed."""
    binary = imaptest_binary()
    async with running_gateway(upstream, tmp_path, listen=LISTEN) as gw:
        port = gw.gw.bound["imaps"].port

        def make_box() -> None:  # the stress mode works in a mailbox that exists
            with imaplib.IMAP4_SSL("localhost", port, ssl_context=gw.tls(), timeout=30) as c:
                c.login("zhang", PASSWORDS["zhang"])
                c.create("stress")

        await asyncio.to_thread(make_box)
        result = await asyncio.to_thread(
            subprocess.run, [str(binary), "host=127.0.0.1", f"port={port}", "ssl=any-cert", "user=zhang",
                             f"pass={PASSWORDS['zhang']}", *(a.format(dir=binary.parent) for a in args)],
            capture_output=True, text=True, timeout=timeout)
    return result.stdout + result.stderr


@pytest.mark.timeout(600)  # 71 groups: about a minute
async def test_imaptest_compliance_groups(upstream, tmp_path):
    out = await run_imaptest(upstream, tmp_path, "test={dir}/tests", timeout=600)
    m = re.search(r"(\d+) test groups: (\d+) failed, (\d+) skipped", out)
    assert m, out[-3000:]
    groups, failed, skipped = map(int, m.groups())
    print(f"imaptest compliance: {groups} groups, {failed} failed, {skipped} skipped for capabilities not offered")
    failing = sorted(set(re.findall(r"\*\*\* Test (\S+) command", out)))
    print("failing groups:", " ".join(failing))
    assert failed <= KNOWN_FAILING, out[-5000:]


async def test_imaptest_stress_ten_clients_no_protocol_errors(upstream, tmp_path):
    out = await run_imaptest(upstream, tmp_path, "box=stress", "clients=10", "secs=20",
                             "mbox={dir}/tests/default.mbox", timeout=300)
    print(out[-1500:])
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert not errors, "\n".join(errors[:30])
    assert "Totals:" in out, out[-2000:]  # it ran
