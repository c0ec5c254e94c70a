"""No attachment freezes the gateway, and none is delivered unscanned.

Each bomb (``mailwarden.testing.bombs``: a 2 KB xlsx declaring 16384 x 1048576 cells, 30
million empty rows, a docx of 2 million paragraphs, a 4 KB PDF that takes seconds a page, a
200-page PDF, a shared string of 400 MB) is sent while a second connection sends NOOP every
20 ms and a third sends ordinary mail: the NOOPs are answered within 100 ms (p99), the
ordinary mail is queued and delivered, and the bomb is held for a supervisor with a reason
that names the limit it passed — never delivered, never lost.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from mailwarden.testing import bombs

from tests.integration.conftest import message, running_gateway, send_one, token
from tests.reliability.conftest import NoopProbe, held

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

# Built once per test process (the 30-million-row sheet takes a moment to compress).
_BUILT: dict[str, bytes] = {}

# What holds each bomb: (rule, a word of its reason), any of them. Which cap a sheet of
# hundreds of thousands of (empty) rows reaches first, its row count or the CPU budget, depends
# on the machine.
CPU = ("EVALUATION_TIMEOUT", "cpu")
EXPECTED = {
    "xlsx-16384x1048576": (("INSPECTION_LIMIT", "limit rows"), CPU),
    "xlsx-30M-empty-rows": (("INSPECTION_LIMIT", "limit rows"), CPU),
    "docx-2M-paragraphs": (("INSPECTION_LIMIT", "limit"),),
    "pdf-slow-4KB": (("EVALUATION_TIMEOUT", "scan stopped"),),
    "pdf-200-pages": (CPU,),
    "xlsx-400MB-string": (("EVALUATION_MEMORY", "memory"),),
}


def _bomb(name: str) -> tuple[bytes, str, str]:
    if name == "xlsx-400MB-string":
        builder, filename, ctype = bombs.xlsx_huge_string, "strings.xlsx", bombs.XLSX
    else:
        builder, filename, ctype = bombs.ALL[name]
    if name not in _BUILT:
        _BUILT[name] = builder()
    return _BUILT[name], filename, ctype


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_bomb_is_held_while_the_gateway_keeps_answering(upstream, tmp_path, name):
    data, filename, ctype = _bomb(name)
    t = token()
    bomb = bombs.message_with(data, filename, ctype, subject=f"bomb {name} {t}")
    rules = {"scan_workers": 2, "scan_memory_mb": 256}
    async with running_gateway(upstream, tmp_path, rules=rules) as gw:
        async with NoopProbe(gw.smtp_port) as probe:
            started = time.perf_counter()
            sending = asyncio.create_task(asyncio.to_thread(send_one, gw, bomb))
            await asyncio.sleep(0.3)  # the bomb is being scanned (or waits for a worker to start)
            code, reply = await asyncio.to_thread(send_one, gw, message(f"ordinary {t}"))
            ordinary_after = time.perf_counter() - started
            assert code == 250 and b"Queued" in reply, reply
            bomb_code, bomb_reply = await sending
        assert probe.p99_ms() <= 100, f"NOOP p99 {probe.p99_ms():.0f} ms, max {probe.max_ms():.0f} ms"
        assert ordinary_after < 10, f"ordinary mail answered after {ordinary_after:.1f} s"
        assert bomb_code == 250 and b"Held for review" in bomb_reply, bomb_reply
        reason = held(gw)[f"bomb {name} {t}"]
        assert any(reason.startswith(rule) and word in reason for rule, word in EXPECTED[name]), reason
        await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=f"ordinary {t}".encode())
        delivered = await asyncio.to_thread(upstream.fetch_all, "catchall@buyer.test")
        assert not [m for m in delivered if f"bomb {name} {t}".encode() in m.raw]


async def test_a_killed_worker_is_replaced_and_the_next_scan_runs(upstream, tmp_path):
    """After a worker was killed past its time limit, attachments are still scanned (and a
    harmless one passes)."""
    slow, filename, ctype = _bomb("pdf-slow-4KB")
    t = token()
    async with running_gateway(upstream, tmp_path, rules={"scan_workers": 1}) as gw:
        code, reply = await asyncio.to_thread(send_one, gw, bombs.message_with(slow, filename, ctype, subject=f"slow {t}"))
        assert code == 250 and b"Held for review" in reply
        assert gw.gw.submitter.scanpool is not None and gw.gw.submitter.scanpool.killed == 1
        fine = bombs.message_with(bombs.docx_paragraphs(3, "LED panel quotation"), "quote.docx", bombs.DOCX,
                                  subject=f"fine {t}")
        code, reply = await asyncio.to_thread(send_one, gw, fine)
        assert code == 250 and b"Queued" in reply, reply
        await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=f"fine {t}".encode())
