"""[listen] autoconfig: a real gateway answers Thunderbird's autoconfig requests (read with curl)
on its [listen] http address, beside /metrics, with the ports it listens on."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from xml.etree import ElementTree as ET

import pytest

from tests.integration.conftest import running_gateway

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curl(port: int, path: str) -> tuple[int, bytes]:
    r = subprocess.run(["curl", "-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, check=True)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code), body


async def test_gateway_serves_autoconfig(upstream, tmp_path):
    imaps, smtps = free_port(), free_port()
    listen = {"http": "127.0.0.1:0", "autoconfig": True, "imaps": f"127.0.0.1:{imaps}", "smtps": f"127.0.0.1:{smtps}"}
    async with running_gateway(upstream, tmp_path, listen=listen) as gw:
        port = gw.gw.bound["http"].port
        code, body = await asyncio.to_thread(curl, port, "/.well-known/autoconfig/mail/config-v1.1.xml"
                                                         "?emailaddress=zhang%40company.test")
        assert code == 200, body
        provider = ET.fromstring(body).find("emailProvider")
        found = {(s.get("type"), s.findtext("port"), s.findtext("socketType")) for s in provider}
        assert ("imap", str(imaps), "SSL") in found and ("smtp", str(smtps), "SSL") in found
        assert provider.findtext("incomingServer/username") == "%EMAILLOCALPART%"
        assert (await asyncio.to_thread(curl, port, "/mail/config-v1.1.xml?emailaddress=x@other.test"))[0] == 404
        assert (await asyncio.to_thread(curl, port, "/metrics"))[0] == 200
