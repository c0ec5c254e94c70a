"""Busy is not suspicious: a saturated gateway holds no honest mail for taking long.

Ten clients send 10 KB quotes as fast as the gateway answers (in this process too, so they
compete with it for the interpreter as well as the cores). The rules' budget is set tight
(15 ms, ten times what such a quote costs): counted in wall-clock time, the waiting of a
saturated gateway would spend it; counted in the evaluation's own CPU time, it holds nothing.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.integration.conftest import message, running_gateway, token
from tests.reliability.conftest import held

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

CLIENTS = 10
PER_CLIENT = 20
LINE = "Please find our quotation for LED panels below. Price 12.50 USD FOB Ningbo, MOQ 500 pcs.\r\n"


async def test_ten_clients_at_saturation_no_message_held_for_time(upstream, tmp_path):
    t = token()
    replies: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def client(gw, n: int) -> None:  # type: ignore[no-untyped-def]
        with gw.client() as c:
            for i in range(PER_CLIENT):
                body = f"Dear Max, offer {t}-{n}-{i}\r\n" + LINE * 110
                c.mail("z@x.example")
                c.rcpt("max@buyer.test")
                reply = c.data(message(f"quote {t} {n} {i}", body=body))
                with lock:
                    replies.append(reply)

    async with running_gateway(upstream, tmp_path, rules={"budget_ms": 15, "budget_ms_per_mb": 0}) as gw:
        # Threads of their own: the loop's default executor is the gateway's (file writes, lookups).
        threads = [threading.Thread(target=client, args=(gw, n), daemon=True) for n in range(CLIENTS)]
        for th in threads:
            th.start()
        while any(th.is_alive() for th in threads):
            await asyncio.sleep(0.05)
        assert len(replies) == CLIENTS * PER_CLIENT
        not_queued = [r for r in replies if r[0] != 250 or b"Queued" not in r[1]]
        assert not not_queued, f"{len(not_queued)} not queued, e.g. {not_queued[0]}; held: {held(gw)}"
        await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", CLIENTS * PER_CLIENT, timeout=60,
                                containing=f"offer {t}-".encode())
