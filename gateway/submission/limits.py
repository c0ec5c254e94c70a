"""How many submission connections the gateway holds, and which one gives way.

Each connection costs a file descriptor; when the process runs out, nothing works (the relay,
the store and the IMAP side need descriptors too).  So connections are bounded in total, by a
number derived from the descriptor limit with room kept for the rest (:func:`derived_total`),
and per client address for connections not logged in yet.  A new connection over a bound does
not simply bounce: the oldest connection that has not logged in (within that address, or
anywhere) gives way to it, so idle or slow attackers cannot keep a salesperson out, and a
logged-in session is never the one closed.  Only when every connection is logged in is the new
one refused.
"""

from __future__ import annotations

import resource
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

RESERVED_FRACTION = 10  # 1/10 of the descriptors stay for the rest of the process …
RESERVED_MIN = 100      # … at least this many: the store, spool files, TLS files, listeners, logs
STORE_POOL = 20         # database connections (the pool and its overflow, the group-commit writer)
FULL = "421 4.7.0 Too many connections to the gateway; try again later (连接过多，请稍后再试)"
GIVE_WAY = "421 4.7.0 Closing a connection that did not log in, to make room for others"


class Limited(Protocol):
    """What the limits need of a connection."""

    peer: str

    @property
    def logged_in(self) -> bool: ...

    def shut(self, reply: str) -> None: ...


def descriptor_limit() -> int:
    """The soft limit of open files, raised to the hard limit first (up to 65536): a
    distribution's default soft limit (1024) is far below what the kernel allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard if hard != resource.RLIM_INFINITY else 65536, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return 65536 if soft == resource.RLIM_INFINITY else int(soft)


def derived_total(descriptors: int, *, relay_connections: int, imap_connections: int) -> int:
    """Submission connections that fit in ``descriptors`` beside the relay's SMTP connections,
    the IMAP logins, the store and a reserve."""
    reserved = max(RESERVED_MIN, descriptors // RESERVED_FRACTION) + relay_connections + imap_connections + STORE_POOL
    return max(16, descriptors - reserved)


@dataclass
class ConnectionLimits:
    total: int
    per_address: int  # connections not logged in yet, from one client address

    def __post_init__(self) -> None:
        self._open: dict[Limited, None] = {}  # in the order they came: the first is the oldest
        self._by_address: dict[str, dict[Limited, None]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, conn: Limited) -> str | None:
        """Take ``conn``, making room if need be; the reply that refuses it when none can be made."""
        same = self._by_address.get(conn.peer, {})
        if sum(1 for c in same if not c.logged_in) >= self.per_address:
            self._give_way(same)  # there is always one: the bound counts only those
        if len(self._open) >= self.total and not self._give_way(self._open):
            return FULL
        self._open[conn] = None
        self._by_address.setdefault(conn.peer, {})[conn] = None
        return None

    def release(self, conn: Limited) -> None:
        self._open.pop(conn, None)
        same = self._by_address.get(conn.peer)
        if same is not None:
            same.pop(conn, None)
            if not same:
                del self._by_address[conn.peer]

    def _give_way(self, conns: Iterable[Limited]) -> bool:
        oldest = next((c for c in conns if not c.logged_in), None)
        if oldest is None:
            return False
        self.release(oldest)
        oldest.shut(GIVE_WAY)
        return True
