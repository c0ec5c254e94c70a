"""``[listen] http``: ``GET /metrics`` (Prometheus) and ``GET /healthz``, on the gateway's event loop
(with ``[listen] autoconfig``, also Thunderbird's autoconfig files: :mod:`.clientconfig`).

A few lines of asyncio rather than prometheus-client's own server (a thread running wsgiref):
it shares serve's loop, so what it reads of serve (sessions, the upstream check) needs no lock,
it answers ``/healthz`` beside ``/metrics`` on one address, and a client that never finishes
its request is closed after ``REQUEST_TIMEOUT`` instead of holding a thread.  The one blocking
step, the queue query, runs in a worker thread.  HTTP/1.0 semantics: one request per
connection, no keep-alive, no TLS (put it on a loopback or management address).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from urllib.parse import parse_qsl

from mailwarden.gateway.logsetup import limited_log

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0  # seconds for the request line and headers
MAX_REQUEST = 8192      # bytes of request line and headers
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Handler = Callable[[], Awaitable[tuple[int, str, bytes]]]
QueryHandler = Callable[[dict[str, str]], Awaitable[tuple[int, str, bytes]]]  # given the query string's fields
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
           503: "Service Unavailable"}


def health_body(ok: bool, checks: dict[str, object]) -> tuple[int, str, bytes]:
    """``/healthz``: 200 when healthy, 503 when not; the checks as JSON either way."""
    body = json.dumps({"status": "ok" if ok else "unhealthy", **checks}, ensure_ascii=False).encode() + b"\n"
    return (200 if ok else 503), "application/json", body


class HttpServer:
    """Routes (path → handler) behind a minimal HTTP/1.0 reader."""

    def __init__(self, routes: dict[str, Handler], query_routes: dict[str, QueryHandler] | None = None) -> None:
        self.routes = routes
        self.query_routes = query_routes or {}
        self.server: asyncio.base_events.Server | None = None

    async def listen(self, host: str, port: int) -> asyncio.base_events.Server:
        self.server = await asyncio.start_server(self._serve, host, port, limit=MAX_REQUEST)
        return self.server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
                await self._reply(writer, 400, "text/plain", b"bad request\n")
                return
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                await self._reply(writer, 400, "text/plain", b"bad request\n")
                return
            method, (target, _, query) = parts[0], parts[1].partition("?")
            handler = self.routes.get(target)
            with_query = self.query_routes.get(target)
            if handler is None and with_query is None:
                await self._reply(writer, 404, "text/plain", b"not found: /metrics or /healthz\n")
                return
            if method not in ("GET", "HEAD"):
                await self._reply(writer, 405, "text/plain", b"GET only\n")
                return
            try:
                fields = dict(parse_qsl(query, max_num_fields=20)) if with_query is not None else {}
            except ValueError:
                await self._reply(writer, 400, "text/plain", b"bad request: too many query fields\n")
                return
            try:
                if with_query is not None:
                    status, ctype, body = await with_query(fields)
                else:
                    assert handler is not None
                    status, ctype, body = await handler()
            except Exception:  # noqa: BLE001 - a broken collector must not end the server
                log.exception("http %s failed peer=%s", target, peer)
                status, ctype, body = 500, "text/plain", b"internal error (see the gateway's log)\n"
            await self._reply(writer, status, ctype, b"" if method == "HEAD" else body, length=len(body))
        except (ConnectionError, OSError) as exc:
            limited_log(log, "http client gone", "http client gone peer=%s: %s", peer, type(exc).__name__)
        finally:
            writer.close()
            with suppress(ConnectionError, OSError):
                await writer.wait_closed()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, ctype: str, body: bytes,
                     length: int | None = None) -> None:
        head = (f"HTTP/1.0 {status} {REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n")
        writer.write(head.encode("latin-1") + body)
        await writer.drain()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)
