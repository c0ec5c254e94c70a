"""Filing: deciding, for each message the sync brings in, whose it is.

In this order, the first that answers decides:

1. **notice**: one of the gateway's own notices (a refusal, a quarantine note, a bounce), sealed
   for one operator (:func:`~mailwarden.gateway.headers.sealed_notice`): that operator only,
   never the team or the pool;
2. **sent**: in the Sent folder, a message that went out through the gateway (its loop token
   holds): the customer it was sent to, and its operator;
3. **contact**: the sender (the recipients, for mail the company sent) is a contact of a customer;
4. **thread**: it answers a message the gateway knows (In-Reply-To, References): whose that
   one was, even from an address nobody knows yet;
5. **domain**: the sender's domain is a customer's (never a free-mail domain: there one
   domain holds many people, and only an exact contact identifies a customer);
6. otherwise the **pool**, or, with ``[filing] unknown = "round-robin"``, the on-duty
   salesperson whose turn it is.

A customer, not its owner, is stored: whose view the mail is in follows the customer when it is
reassigned.  Filing reads the directory and the store; it changes nothing.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailwarden.store.directory import AddressBook
from mailwarden.store.mails import Filing, NewMail, first_customer, sent_message, thread_of
from mailwarden.store.models import Mail, User
from sqlalchemy import func
from sqlmodel import Session, col, select

from mailwarden.gateway.headers import Headers, loop_token, sealed_notice

UNKNOWN = ("pool", "round-robin")
ON_DUTY_ROLES = ("sales", "senior")


@dataclass(frozen=True)
class FilingPolicy:
    """``[filing]``: where mail from unknown senders goes, who is on duty, and what the
    company's own addresses are (mail from them is filed by its recipients)."""

    key: bytes  # the store's key: seals of notices, loop tokens of sent mail
    company_domains: tuple[str, ...]
    freemail: frozenset[str]
    unknown: str = "pool"
    on_duty: tuple[str, ...] = ()  # logins; empty: every enabled sales and senior user


def went_through_gateway(h: Headers, key: bytes) -> bool:
    """The message carries a loop token the gateway wrote for its Message-ID."""
    message_id = h.get("message-id")
    if not message_id:
        return False
    for value in h.get_all("x-mailwarden-loop"):
        m = re.search(r"token=([0-9a-f]{24})", value)
        if m and hmac.compare_digest(m.group(1), loop_token(key, message_id.strip())):
            return True
    return False


def file_mail(*, session: Session, new: NewMail, headers: Headers, policy: FilingPolicy,
              book: AddressBook | None = None) -> Filing:
    """Whose ``new`` is (see the module's documentation).  ``book``: the directory's addresses,
    read once for a batch (read here when not given)."""
    book = book or AddressBook(session)
    notice = sealed_notice(headers, policy.key)
    if notice is not None:
        user = session.exec(select(User).where(User.login == notice[1])).first()
        return Filing("notice", user_id=user.id if user else None)
    thread_ids = [*new.refs, *([new.in_reply_to] if new.in_reply_to else [])]
    # Only a Sent copy: the loop token travels with every message a customer gets, and a copy of
    # one sent back in would otherwise be filed as the operator's own (and left unmasked).
    if new.message_id and new.folder_role == "sent" and went_through_gateway(headers, policy.key):
        sent = sent_message(session=session, message_id=new.message_id)
        if sent is not None:
            hit = thread_of(session=session, ids=thread_ids) if thread_ids else None
            return Filing("sent", customer_id=first_customer(session=session, message=sent), user_id=sent.operator_id,
                          thread_id=hit.thread_id if hit else None, out_message_id=sent.id)
    ours = _is_company(new.from_addr, policy)
    parties = [a for a in (new.to_addrs + new.cc_addrs) if not _is_company(a, policy)] if ours else [new.from_addr]
    for address in parties:
        cid = book.contact(address)
        if cid is not None:
            return Filing("contact", customer_id=cid, thread_id=_thread(session, thread_ids))
    hit = thread_of(session=session, ids=thread_ids) if thread_ids else None
    if hit is not None:
        return Filing("thread", customer_id=hit.customer_id, user_id=None if hit.customer_id else hit.user_id,
                      thread_id=hit.thread_id)
    for address in parties:
        cid = book.domain(address, policy.freemail)
        if cid is not None:
            return Filing("domain", customer_id=cid)
    if policy.unknown == "round-robin" and not ours:
        turn = next_on_duty(session=session, on_duty=policy.on_duty)
        if turn is not None:
            return Filing("round-robin", user_id=turn)
    return Filing("pool")


def _is_company(address: str, policy: FilingPolicy) -> bool:
    return address.rsplit("@", 1)[-1] in policy.company_domains


def _thread(session: Session, ids: list[str]) -> int | None:
    hit = thread_of(session=session, ids=ids) if ids else None
    return hit.thread_id if hit else None


def next_on_duty(*, session: Session, on_duty: Sequence[str] = ()) -> int | None:
    """The on-duty salesperson who was given an unknown sender's mail longest ago (or never)."""
    q = select(User).where(User.enabled == True)  # noqa: E712 - SQL
    q = q.where(col(User.login).in_(list(on_duty))) if on_duty else q.where(col(User.role).in_(ON_DUTY_ROLES))
    users = session.exec(q.order_by(User.login)).all()
    if not users:
        return None
    last = dict(session.exec(select(Mail.user_id, func.max(Mail.id)).where(
        Mail.filed_by == "round-robin", col(Mail.user_id).in_([u.id for u in users])).group_by(Mail.user_id)).all())
    return min(users, key=lambda u: (last.get(u.id, 0), u.login)).id

