"""Detectors: one small module each, with ``NAME``, ``DESCRIPTION`` and ``check(doc)``.

Detectors only detect: they return :class:`~mailwarden.rules.detectors.base.Hit` s naming a
rule id; the policy table decides what happens. A module may also have ``prepare(policy)``,
returning what it compiled for ``policy.extra`` (called once, by :func:`prepare`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from . import attachments, customer_list, disguised, emails, fixedscan, handles, intents, phones, recipients, words
from .phonescan import _special_automaton

__all__ = ["DETECTORS", "prepare"]

# Order matters only for the report: IM handles before phones, so a WhatsApp number is
# reported as WhatsApp and the bare phone finding on the same text is dropped.
DETECTORS: tuple[ModuleType, ...] = (
    emails, handles, phones, words, intents, customer_list, recipients, attachments, disguised,
)


def prepare(policy: Any) -> dict[str, Any]:
    """What the detectors compile for *policy* (``policy.extra``): each one's own, then one
    automaton for the fixed strings several of them look for (:mod:`.fixedscan`)."""
    extra: dict[str, Any] = {}
    for det in DETECTORS:
        own = getattr(det, "prepare", None)
        if own is not None:
            extra.update(own(policy))
    keywords = extra.get("handle_keywords")
    if keywords is not None:
        extra["fixed_scan"] = fixedscan.build(emails.ANCHOR_LITERALS, keywords.words,
                                              _special_automaton()[2])
    return extra
