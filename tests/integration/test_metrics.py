"""[listen] http: /metrics and /healthz of a real gateway in front of the real upstream, read
with curl while mail goes through (the delivery process's counters included)."""

from __future__ import annotations

import asyncio
import json
import smtplib
import socket
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import message, running_gateway, send_one, token

pytestmark = pytest.mark.integration


def curl(gw, path: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    port = gw.gw.bound["http"].port
    r = subprocess.run(["curl", "-sS", "-m", "10", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, text=True, check=True)
    body, _, code = r.stdout.rpartition("\n")
    return int(code), body


def samples(gw) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    code, text = curl(gw, "/metrics")
    assert code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(found, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def until(check, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await asyncio.to_thread(check)
        if got or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.2)


def wrong_login(gw) -> None:  # type: ignore[no-untyped-def]
    with smtplib.SMTP("127.0.0.1", gw.smtp_port, timeout=10) as c:
        c.starttls(context=gw.tls())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.login("zhang", "not-the-password")


async def test_counters_move_as_mail_goes_through(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, delivery_process=True, listen={"http": "127.0.0.1:0"}) as gw:
        before = await asyncio.to_thread(samples, gw)
        t = token()
        code, _ = await asyncio.to_thread(send_one, gw, message(f"Quote {t}"))
        assert code == 250
        code, _ = await asyncio.to_thread(send_one, gw, message(f"Side {t}", body="WeChat: zhang_private88\r\n"))
        assert code == 550
        await asyncio.to_thread(wrong_login, gw)
        await asyncio.to_thread(upstream.wait_for, "catchall@buyer.test", 1, containing=t.encode())
        after = await asyncio.to_thread(samples, gw)
        assert value(after, "mailwarden_messages_total", action="allow") == \
            value(before, "mailwarden_messages_total", action="allow") + 1
        assert value(after, "mailwarden_messages_total", action="block") == \
            value(before, "mailwarden_messages_total", action="block") + 1
        assert value(after, "mailwarden_scan_seconds_count") == value(before, "mailwarden_scan_seconds_count") + 2
        assert value(after, "mailwarden_login_failures_total", reason="password") >= \
            value(before, "mailwarden_login_failures_total", reason="password") + 1
        assert ("mailwarden_queue_messages", (("stage", "relay"),)) in after
        assert ("mailwarden_sessions", ()) in after
        # the upstream check ran and worked: healthy
        assert await until(lambda: value(samples(gw), "mailwarden_upstream_up") == 1)
        code, body = await asyncio.to_thread(curl, gw, "/healthz")
        assert code == 200 and json.loads(body)["upstream"]["login"] == "ok"
        assert (await asyncio.to_thread(curl, gw, "/nothing"))[0] == 404


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_unhealthy_while_the_upstream_refuses_and_the_deliverers_errors_count(upstream, tmp_path):
    """Nothing listens where the upstream SMTP should be: the health check fails (503), the relay in
    the delivery process counts its errors and the message waits in the queue, all seen in /metrics."""
    async with running_gateway(upstream, tmp_path, delivery_process=True, smtp_port=closed_port(),
                               listen={"http": "127.0.0.1:0"}) as gw:
        t = token()
        code, _ = await asyncio.to_thread(send_one, gw, message(f"Waits {t}"))
        assert code == 250
        assert await until(lambda: curl(gw, "/healthz")[0] == 503)
        code, body = await asyncio.to_thread(curl, gw, "/healthz")
        health = json.loads(body)
        assert health["status"] == "unhealthy" and health["upstream"]["login"] == "failing"
        assert any("upstream smtp" in p for p in health["upstream"]["problems"])
        found = await until(lambda: (lambda f: f if value(f, "mailwarden_upstream_errors_total", service="smtp",
                                                          kind="temporary") >= 1 else None)(samples(gw)))
        assert found, "the delivery process's relay errors never showed in /metrics"
        assert value(found, "mailwarden_upstream_up") == 0
        assert value(found, "mailwarden_upstream_errors_total", service="smtp", kind="login") >= 1
        assert value(found, "mailwarden_queue_messages", stage="relay") >= 1
        assert value(found, "mailwarden_queue_oldest_seconds", stage="relay") > 0
