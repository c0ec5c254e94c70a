"""serve's delivery process: the relay in a process of its own, nudged, supervised, exclusive."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from mailwarden.gateway.delivery.process import hold_delivery_lock
from mailwarden.store.models import Message
from sqlmodel import Session, select

from tests.integration.conftest import SHARED, message, running_gateway, send_one, token

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def status(gw, subject: str) -> str:
    with Session(gw.store.engine) as s:
        return s.exec(select(Message.status).where(Message.subject == subject)).one()


async def test_delivery_process_relays_files_sent_copy_and_exits_with_serve(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, delivery_process=True) as gw:
        assert gw.gw.relay is None and gw.gw.delivery is not None
        pid = gw.gw.delivery.pid
        assert pid is not None and pid != os.getpid() and alive(pid)
        t = token()
        code, _ = await asyncio.to_thread(send_one, gw, message(f"Quote {t}"))
        assert code == 250
        await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
        sent = await asyncio.to_thread(upstream.wait_for, SHARED, 1, "Sent", containing=t.encode())
        assert "$mw_op_zhang" in sent[0].flags
        for _ in range(50):
            if await status(gw, f"Quote {t}") == "delivered":
                break
            await asyncio.sleep(0.1)
        assert await status(gw, f"Quote {t}") == "delivered"
    assert not alive(pid)  # stopping serve stops its deliverer
    assert gw.store.audit.verify().ok  # two processes appended to one chain


async def test_a_killed_delivery_process_is_restarted(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, delivery_process=True) as gw:
        assert gw.gw.delivery is not None
        first = gw.gw.delivery.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        t = token()
        code, _ = await asyncio.to_thread(send_one, gw, message(f"After the crash {t}"))
        assert code == 250  # accepting does not depend on the deliverer
        await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, timeout=60, containing=t.encode())
        assert gw.gw.delivery.pid not in (None, first)


async def test_only_one_deliverer_per_data_directory(upstream, tmp_path):
    """A deliverer still finishing (its serve was killed) holds back the next one: no item goes out twice."""
    data_dir = tmp_path / "data"
    held = await hold_delivery_lock(data_dir)
    try:
        async with running_gateway(upstream, tmp_path, delivery_process=True) as gw:
            t = token()
            code, _ = await asyncio.to_thread(send_one, gw, message(f"Held back {t}"))
            assert code == 250
            await asyncio.sleep(3)
            assert await status(gw, f"Held back {t}") == "queued"
            os.close(held)
            held = -1
            await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
    finally:
        if held >= 0:
            os.close(held)
