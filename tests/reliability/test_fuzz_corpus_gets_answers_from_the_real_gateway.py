"""The fuzz corpus (tests/gateway/submission/fuzz_corpus) against the real gateway over implicit
TLS: each session gets well-formed answers and ends (no hang), nothing logs an error, and the
gateway serves the next client as before."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from pathlib import Path

import pytest

from tests.integration.conftest import message, running_gateway, send_one, token

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

CORPUS = sorted((Path(__file__).parents[1] / "gateway" / "submission" / "fuzz_corpus").glob("*.smtp"))
REPLY = re.compile(rb"^[2-5]\d\d[ -]")


async def _session(port: int, tls: ssl.SSLContext, data: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls, server_hostname="localhost")
    try:
        writer.write(data)
        await writer.drain()
        lines: list[bytes] = []
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), 3)
            except asyncio.TimeoutError:  # waiting for more input (an unfinished DATA): fine
                break
            if not line:
                break
            lines.append(line)
        return lines
    finally:
        writer.close()


async def test_fuzz_corpus_gets_answers_from_the_real_gateway(upstream, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mailwarden")
    async with running_gateway(upstream, tmp_path) as gw:
        results = await asyncio.gather(*(_session(gw.smtps_port, gw.tls(), p.read_bytes()) for p in CORPUS))
        for path, lines in zip(CORPUS, results):
            assert lines and lines[0].startswith(b"220 "), path.name
            assert all(REPLY.match(line) and line.endswith(b"\r\n") for line in lines), (path.name, lines)
            assert len(lines) > 2, (path.name, lines)
        # (the corpus's wrong passwords for zhang locked zhang out from here: li sends)
        assert (await asyncio.to_thread(send_one, gw, message(token()), login="li"))[0] == 250
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], \
        [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
