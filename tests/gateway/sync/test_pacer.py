"""The daily download cap ([sync] daily_download_mb): past it, the import waits for the next day."""

from __future__ import annotations

import asyncio

from mailwarden.gateway.sync import service
from mailwarden.gateway.sync.service import DownloadPacer

MB = 1024 * 1024


async def test_the_import_waits_for_the_next_day_past_the_cap(monkeypatch):
    clock = {"now": 86400 * 20_000 + 3600.0}
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    monkeypatch.setattr(service.time, "time", lambda: clock["now"])
    monkeypatch.setattr(service.asyncio, "sleep", sleep)
    pacer = DownloadPacer(2)
    await pacer.take(MB)
    await pacer.take(MB)
    assert slept == []
    await pacer.take(MB)  # the third megabyte is tomorrow's
    assert slept == [86400 - 3600.0]
    assert pacer.used == MB


async def test_no_cap_never_waits():
    pacer = DownloadPacer(0)
    for _ in range(3):
        await asyncio.wait_for(pacer.take(10_000 * MB), 1)
