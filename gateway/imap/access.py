"""The access audit of the IMAP side: who read how much.

Logins are audit events as they happen.  Bodies fetched are counted per user over a sliding
window; a user who fetches more than ``bodies`` message bodies within ``minutes`` (a whole
mailbox pulled down, a customer list being taken away) is an audit event, ``imap.bulk_download``,
once per window, which the daily digest shows.  A first sync of a new phone or laptop looks
the same; the event says what happened, the manager decides what it means.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from mailwarden.store.audit import AuditLog


@dataclass
class BulkWatch:
    bodies: int = 500
    minutes: float = 10.0
    _seen: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)
    _reported: dict[str, float] = field(default_factory=dict)

    def count(self, login: str, n: int, now: float | None = None) -> int | None:
        """Count ``n`` bodies fetched by ``login``; the number in the window when it just went
        past the bound (report it), else None."""
        if n <= 0 or self.bodies <= 0:
            return None
        now = time.monotonic() if now is None else now
        window = self.minutes * 60
        q = self._seen.setdefault(login, deque())
        q.append((now, n))
        while q and q[0][0] < now - window:
            q.popleft()
        total = sum(k for _, k in q)
        if total <= self.bodies or now - self._reported.get(login, -window - 1) < window:
            return None
        self._reported[login] = now
        return total

    def report(self, audit: AuditLog, login: str, total: int, peer: str, box: str) -> None:
        audit.append(actor=login, action="imap.bulk_download", target=box, peer=peer, bodies=total,
                     minutes=self.minutes)
