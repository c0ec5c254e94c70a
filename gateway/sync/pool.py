"""Customers nobody writes to go back to the pool (公海): with ``[filing] return_after_days``, a
customer whose last mail, either way, is that many days old is taken from its owner, after a
reminder ``remind_days_before`` days earlier (never sooner after the reminder than that).  Each step is an audit event; the reminder is a
notice in the owner's own view (stored, not sent: it concerns nobody else).

:func:`return_idle_customers` does one round; the sync runs it every few hours.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, make_msgid

from mailwarden.store import StoreHandle
from mailwarden.store.mails import Filing, aware, insert_mail, last_activity
from mailwarden.store.models import Customer, User
from mailwarden.store.views import bump_epoch
from sqlmodel import col, select

from mailwarden.gateway.config import Filing as FilingConfig
from mailwarden.gateway.headers import make_header_value, notice_field
from mailwarden.gateway.sync.reading import read_mail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolRound:
    reminded: list[tuple[str, str]]  # (customer, owner)
    returned: list[tuple[str, str]]


def reminder(*, key: bytes, shared: str, operator: str, customer: str, last: datetime, returns: datetime) -> bytes:
    """The notice an owner gets before a customer returns to the pool."""
    domain = shared.rsplit("@", 1)[-1]
    message_id = make_msgid(domain=domain)
    text = (f"Your customer {customer} has had no mail since {last:%Y-%m-%d}. Unless you write to them, it returns "
            f"to the pool on {returns:%Y-%m-%d}.\n\n"
            f"您的客户 {customer} 自 {last:%Y-%m-%d} 起没有邮件往来。如在 {returns:%Y-%m-%d} 前仍无联系，该客户将退回公海。\n")
    head = "".join([
        f"From: mailwarden <{shared}>\r\n", f"To: {shared}\r\n",
        "Subject: " + make_header_value(f"Customer returns to the pool soon / 客户即将退回公海: {customer}"[:200]) + "\r\n",
        f"Date: {format_datetime(datetime.now(timezone.utc))}\r\n", f"Message-ID: {message_id}\r\n",
        "Auto-Submitted: auto-generated\r\n",
        notice_field(key=key, kind="pool-reminder", ref=customer[:60], message_id=message_id, operator=operator),
        "MIME-Version: 1.0\r\n", "Content-Type: text/plain; charset=utf-8\r\n", "Content-Transfer-Encoding: base64\r\n\r\n",
    ])
    return head.encode("utf-8") + base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")


def return_idle_customers(store: StoreHandle, cfg: FilingConfig, *, shared: str, now: datetime | None = None) -> PoolRound:
    """One round of reminders and returns (nothing when ``return_after_days`` is 0)."""
    done = PoolRound([], [])
    if not cfg.return_after_days:
        return done
    now = now or datetime.now(timezone.utc)
    limit, remind = timedelta(days=cfg.return_after_days), timedelta(days=cfg.return_after_days - cfg.remind_days_before)
    with store.session() as s:
        activity = last_activity(session=s)
        owned = s.exec(select(Customer, User).join(User, col(User.id) == Customer.owner_id)).all()
        for customer, owner in owned:
            last = max(activity.get(customer.id, aware(customer.created_at)), aware(customer.created_at))  # type: ignore[arg-type]
            idle = now - last
            warned = customer.return_reminded_at
            if idle >= limit and warned is not None and now - aware(warned) >= timedelta(days=cfg.remind_days_before):
                customer.owner_id, customer.return_reminded_at = None, None
                s.add(customer)
                bump_epoch(s)
                store.audit.append(actor="system", action="customer.return", target=customer.name, session=s,
                                   before=owner.login, last_mail=last.isoformat(), days=cfg.return_after_days)
                done.returned.append((customer.name, owner.login))
            elif idle >= remind and customer.return_reminded_at is None:
                raw = reminder(key=store.audit.key, shared=shared, operator=owner.login, customer=customer.name,
                               last=last, returns=max(now, last + limit))
                name = store.blobs.put(raw)
                store.blobs.sync()
                new, _h = read_mail(raw, internal_date=now, folder_role="inbox", blob=name)
                new.direction = "notice"
                insert_mail(session=s, new=new, filing=Filing("notice", user_id=owner.id))
                bump_epoch(s)
                customer.return_reminded_at = now
                s.add(customer)
                store.audit.append(actor="system", action="customer.return_reminder", target=customer.name, session=s,
                                   owner=owner.login, last_mail=last.isoformat())
                done.reminded.append((customer.name, owner.login))
            elif idle < remind and customer.return_reminded_at is not None:
                customer.return_reminded_at = None  # mail came after the reminder: the clock starts again
                s.add(customer)
    for name, login in done.returned:
        log.info("customer %s returned to the pool from %s: no mail for %d days", name, login, cfg.return_after_days)
    return done
