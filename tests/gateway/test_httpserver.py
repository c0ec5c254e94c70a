"""The small HTTP server of [listen] http: routes, refusals, clients that never finish."""

from __future__ import annotations

import asyncio

import pytest
from mailwarden.gateway import httpserver
from mailwarden.gateway.config import ConfigError, load_config
from mailwarden.gateway.httpserver import HttpServer, health_body


async def exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


@pytest.fixture
async def server():  # type: ignore[no-untyped-def]
    async def ok():  # type: ignore[no-untyped-def]
        return 200, "text/plain", b"fine\n"

    async def broken():  # type: ignore[no-untyped-def]
        raise RuntimeError("collector bug")

    async def sick():  # type: ignore[no-untyped-def]
        return health_body(False, {"upstream": {"login": "failing"}})

    http = HttpServer({"/metrics": ok, "/broken": broken, "/healthz": sick})
    srv = await http.listen("127.0.0.1", 0)
    yield srv.sockets[0].getsockname()[1]
    await http.stop()


async def test_routes_and_refusals(server, caplog):
    got = await exchange(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got.startswith(b"HTTP/1.0 200 OK\r\n") and got.endswith(b"\r\n\r\nfine\n") and b"Content-Length: 5" in got
    head = await exchange(server, b"HEAD /metrics?x=1 HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and head.endswith(b"\r\n\r\n") and b"Content-Length: 5" in head
    sick = await exchange(server, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert sick.startswith(b"HTTP/1.0 503") and b'"status": "unhealthy"' in sick
    assert (await exchange(server, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 405")
    assert (await exchange(server, b"GET /other HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 404")
    assert (await exchange(server, b"nonsense\r\n\r\n")).startswith(b"HTTP/1.0 400")
    assert (await exchange(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 400")
    assert (await exchange(server, b"GET /broken HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 500")
    assert "collector bug" in caplog.text


async def test_a_client_that_never_finishes_is_closed(server, monkeypatch):
    monkeypatch.setattr(httpserver, "REQUEST_TIMEOUT", 0.3)
    got = await exchange(server, b"GET /metrics HTTP/1.1\r\n")  # no blank line, ever
    assert got.startswith(b"HTTP/1.0 400")


def test_listen_http_is_off_by_default_and_checked(tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text("[listen]\n")
    assert load_config(cfg, {"listen"}).listen.http is None
    cfg.write_text('[listen]\nhttp = "127.0.0.1:9187"\n')
    assert load_config(cfg, {"listen"}).listen.http.port == 9187
    cfg.write_text('[listen]\nhttp = "nowhere"\n')
    with pytest.raises(ConfigError, match=r"\[listen\] http"):
        load_config(cfg, {"listen"})
