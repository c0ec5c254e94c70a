"""What the rules are told about each recipient: the customer it belongs to, its owner, the
customer's domains, contacts and phone numbers.  The one lookup behind both the submission
(the answer to DATA) and ``mailwarden rules check``, so the two cannot reach different
verdicts for the same mail.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from mailwarden.rules import RecipientInfo
from mailwarden.store.directory import customer_view, resolve_recipient
from mailwarden.store.models import Contact
from sqlmodel import Session, select


def lookup_recipients(*, session: Session, addresses: Iterable[str], freemail: Collection[str]) -> tuple[RecipientInfo, ...]:
    """One :class:`RecipientInfo` per address, in order; an address of no known customer gets one
    with no customer.  ``freemail``: domains that never name a customer by domain alone."""
    out = []
    for address in addresses:
        c = resolve_recipient(session=session, address=address, freemail=freemail)
        if c is None:
            out.append(RecipientInfo(address=address, customer_id=None, customer_name=None, owner=None))
            continue
        view = customer_view(session=session, customer=c)
        phones = tuple(p for p in session.exec(select(Contact.phone).where(Contact.customer_id == c.id)).all() if p)
        out.append(RecipientInfo(address=address, customer_id=c.id, customer_name=c.name, owner=view.owner,
                                 domains=view.domains, contacts=view.contacts, phones=phones))
    return tuple(out)
