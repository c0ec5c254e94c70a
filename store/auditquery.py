"""Finding audit events: by time, action, user and customer (``mailwarden audit log``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from .directory import customer_view, require_customer
from .models import AuditEvent

BATCH = 2000  # events read at once while a filter that SQL cannot express looks through them


class CustomerMatch:
    """Whether an event concerns one customer: it names the customer (``customer.*``, a mail
    filed for it), or a message to it (its id among the send's customers, or a recipient at one
    of its domains or contacts)."""

    def __init__(self, session: Session, name_or_id: str) -> None:
        c = require_customer(session=session, name_or_id=name_or_id)
        v = customer_view(session=session, customer=c)
        self.id, self.key = v.id, v.name.casefold()
        self.contacts = set(v.contacts)
        self.domains = tuple(v.domains)

    def _address(self, address: str) -> bool:
        address = address.strip().lower()
        if address in self.contacts:
            return True
        domain = address.rpartition("@")[2]
        return any(domain == d or domain.endswith("." + d) for d in self.domains)

    def __call__(self, ev: AuditEvent) -> bool:
        if (ev.target or "").casefold() == self.key:
            return True
        try:
            detail = json.loads(ev.detail)
        except ValueError:
            detail = {}
        if isinstance(detail, dict):
            if self.id in (detail.get("customers") or ()):
                return True
            if any(isinstance(detail.get(k), str) and detail[k].casefold() == self.key for k in ("before", "after")):
                return True
        return "@" in (ev.target or "") and any(self._address(a) for a in ev.target.split(","))


def find_events(*, session: Session, since: datetime | None = None, until: datetime | None = None,
                user: str | None = None, customer: str | None = None, action: str | None = None,
                limit: int = 50) -> list[AuditEvent]:
    """The newest ``limit`` events that pass every filter given, oldest first.  ``user``: events
    by that login or about it (its target); ``action``: a prefix (``auth``, ``send``, ``customer.assign``)."""
    q = select(AuditEvent)
    if since is not None:
        q = q.where(AuditEvent.ts >= since)
    if until is not None:
        q = q.where(AuditEvent.ts < until)
    if action:
        q = q.where(col(AuditEvent.action).startswith(action))
    if user:
        login = user.strip().lower()
        q = q.where(or_(AuditEvent.actor == login, AuditEvent.target == login))
    if customer is None:
        return list(reversed(session.exec(q.order_by(col(AuditEvent.seq).desc()).limit(limit)).all()))
    match = CustomerMatch(session, customer)
    found: list[AuditEvent] = []
    for ev in _newest_first(session, q):
        if match(ev):
            found.append(ev)
            if len(found) >= limit:
                break
    return list(reversed(found))


def _newest_first(session: Session, q) -> Iterator[AuditEvent]:  # type: ignore[no-untyped-def]
    below: int | None = None
    while True:
        page = q if below is None else q.where(AuditEvent.seq < below)
        rows = session.exec(page.order_by(col(AuditEvent.seq).desc()).limit(BATCH)).all()
        yield from rows
        if len(rows) < BATCH:
            return
        below = rows[-1].seq
