"""How many connections the gateway may hold to the company mailbox at once, per protocol.

Hosted mailboxes cap concurrent connections per account (Gmail about 15 IMAP, Office 365
about 16-20) and answer the one over the cap with an error, or throttle the account.  Every
part of the gateway that talks to the upstream (the relay's SMTP senders and Sent-copy APPEND,
the inbound sync's IDLE and fetch workers) takes a :class:`Lease` from one
:class:`ConnectionBudget` before it opens a connection and gives it back after closing it,
so together they never exceed the configured maximum::

    budget = ConnectionBudget({"imap": 10, "smtp": 4})
    async with budget.hold("imap", "sync idle INBOX"):
        ...  # open, use and close one IMAP connection

Waiters are served first come, first served; a waiter that is cancelled (while waiting, or
just as its turn came) leaves the budget as it found it.  :meth:`ConnectionBudget.snapshot`
tells an operator what is held, by whom, and how many wait.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)

PROTOCOLS = ("imap", "smtp")


class Lease:
    """The right to hold one connection of :attr:`protocol`; :meth:`release` gives it back
    (once: a second call does nothing)."""

    def __init__(self, budget: ConnectionBudget, protocol: str, holder: str, number: int) -> None:
        self._budget = budget
        self.protocol, self.holder, self.number = protocol, holder, number
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._budget._give_back(self)

    def __repr__(self) -> str:
        state = "released" if self.released else "held"
        return f"<Lease {self.protocol}#{self.number} {self.holder!r} {state}>"


@dataclass(frozen=True)
class Use:
    """One protocol's share of the budget at a moment."""

    protocol: str
    in_use: int
    maximum: int
    waiting: int
    holders: tuple[str, ...]  # who holds the leases, oldest first


class _Pool:
    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.held: dict[int, Lease] = {}
        self.waiters: deque[tuple[asyncio.Future[None], Lease]] = deque()


class ConnectionBudget:
    """Leases for upstream connections, at most ``limits[protocol]`` held at once.

    ``limits`` names each protocol the budget knows (``"imap"``, ``"smtp"``) with its maximum
    (at least 1).  One budget per company mailbox, shared by everything that connects to it.
    """

    def __init__(self, limits: Mapping[str, int]) -> None:
        for protocol, maximum in limits.items():
            if protocol not in PROTOCOLS:
                raise ValueError(f"unknown protocol {protocol!r} in the connection budget (known: {', '.join(PROTOCOLS)})")
            if not isinstance(maximum, int) or maximum < 1:
                raise ValueError(f"the connection budget for {protocol} must be a whole number of at least 1, "
                                 f"not {maximum!r}")
        self._pools = {protocol: _Pool(maximum) for protocol, maximum in limits.items()}
        self._numbers = itertools.count(1)

    def _pool(self, protocol: str) -> _Pool:
        try:
            return self._pools[protocol]
        except KeyError:
            raise ValueError(f"the connection budget has no limit for {protocol!r} "
                             f"(it has: {', '.join(self._pools) or 'none'})") from None

    def try_acquire(self, protocol: str, holder: str = "") -> Lease | None:
        """A lease at once, or None when none is free (or others are already waiting)."""
        pool = self._pool(protocol)
        if len(pool.held) >= pool.maximum or pool.waiters:
            return None
        lease = Lease(self, protocol, holder, next(self._numbers))
        pool.held[lease.number] = lease
        return lease

    async def acquire(self, protocol: str, holder: str = "") -> Lease:
        """A lease, once one is free and everyone who asked before has had theirs."""
        lease = self.try_acquire(protocol, holder)
        if lease is not None:
            return lease
        pool = self._pool(protocol)
        lease = Lease(self, protocol, holder, next(self._numbers))
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pool.waiters.append((turn, lease))
        log.debug("waiting for an upstream %s connection: holder=%s in_use=%d max=%d",
                  protocol, holder, len(pool.held), pool.maximum)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # given the lease just as it was cancelled
                lease.release()
            elif (turn, lease) in pool.waiters:  # (a release may have dropped it from the queue already)
                pool.waiters.remove((turn, lease))
            raise
        return lease

    @asynccontextmanager
    async def hold(self, protocol: str, holder: str = "") -> AsyncIterator[Lease]:
        """``async with budget.hold("imap", "who"):`` a lease for the block's duration."""
        lease = await self.acquire(protocol, holder)
        try:
            yield lease
        finally:
            lease.release()

    def snapshot(self) -> dict[str, Use]:
        """Per protocol: leases held and by whom, the maximum, how many wait."""
        return {protocol: Use(protocol, len(pool.held), pool.maximum, len(pool.waiters),
                              tuple(lease.holder for lease in pool.held.values()))
                for protocol, pool in self._pools.items()}

    def _give_back(self, lease: Lease) -> None:
        pool = self._pools[lease.protocol]
        del pool.held[lease.number]
        while pool.waiters and len(pool.held) < pool.maximum:
            turn, waiting = pool.waiters.popleft()
            if turn.done():  # cancelled while queued
                continue
            pool.held[waiting.number] = waiting
            turn.set_result(None)
