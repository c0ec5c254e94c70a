"""Recipients: free-mail or competitor domains, customer history sent to a private address,
and mail to a customer owned by another salesperson (cross-owner)."""

from __future__ import annotations

from ..context import RecipientInfo
from .base import Doc, Hit
from .emails import _in

NAME = "recipients"
DESCRIPTION = "Free-mail, competitor and cross-owner recipients"


def _recipients(doc: Doc) -> tuple[RecipientInfo, ...]:
    if doc.ctx.recipients:
        return doc.ctx.recipients
    seen: list[RecipientInfo] = []
    for h in ("To", "Cc", "Bcc"):
        for a in doc.parsed.addresses.get(h, []):
            if all(r.address != a for r in seen):
                seen.append(RecipientInfo(a, None, None, None))
    return tuple(seen)


def check(doc: Doc) -> list[Hit]:
    """A hit per risky recipient."""
    pol = doc.policy
    operator = (doc.ctx.operator or "").lower()
    hits: list[Hit] = []
    for r in _recipients(doc):
        address = r.address.strip().lower()
        domain = address.rpartition("@")[2]
        if not domain or pol.is_company_domain(domain):
            continue
        known = r.customer_id is not None
        if _in(domain, pol.competitor_domains):
            hits.append(Hit("RECIPIENT_COMPETITOR", address, None, where="recipient"))
        elif _in(domain, pol.freemail_domains) and not known:
            rule = "RECIPIENT_FORWARD_PRIVATE" if doc.parsed.has_history else "RECIPIENT_FREEMAIL"
            hits.append(Hit(rule, address, None, where="recipient"))
        if known and r.owner and operator and r.owner.lower() != operator:
            hits.append(Hit("RECIPIENT_CROSS_OWNER", address, None, where="recipient"))
    return hits
