"""Reliability tests: the real gateway in front of the real upstream, its environment broken on purpose.

Helpers shared by them: a NOOP prober on a connection of its own, the held messages and
their reasons, as the quarantine shows them.
"""

from __future__ import annotations

import asyncio
import smtplib
import statistics
import threading
import time

from mailwarden.store.quarantine import list_held
from sqlmodel import Session


class NoopProbe:
    """``async with NoopProbe(port)``: a thread that connects, sends NOOP every *interval* s and
    records how long each answer took, until the block ends (the thread does all the blocking
    I/O, so the gateway on the test's event loop keeps running)."""

    def __init__(self, port: int, interval: float = 0.02) -> None:
        self.port = port
        self.interval = interval
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="noop-probe", daemon=True)
        self.error: BaseException | None = None

    async def __aenter__(self) -> "NoopProbe":
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 30)

    def _run(self) -> None:
        try:
            with smtplib.SMTP("localhost", self.port, timeout=30) as conn:
                while not self._stop.is_set():
                    t = time.perf_counter()
                    code, _ = conn.noop()
                    self.times.append(time.perf_counter() - t)
                    assert code == 250
                    self._stop.wait(self.interval)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def p99_ms(self) -> float:
        assert self.error is None, self.error
        assert len(self.times) >= 10, f"only {len(self.times)} NOOPs answered"
        return statistics.quantiles(self.times, n=100)[98] * 1000 if len(self.times) > 1 else self.times[0] * 1000

    def max_ms(self) -> float:
        return max(self.times) * 1000


def held(gw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Subject → reason (``RULE: match; …``) of every held message."""
    with Session(gw.store.engine) as s:
        return {h.subject: h.reason for h in list_held(session=s)}
