"""Detectors: one small module each, with ``NAME``, ``DESCRIPTION`` and ``check(doc)``.

Detectors only detect: they return :class:`~mailwarden.rules.detectors.base.Hit` s naming a
rule id; the policy table decides what happens. A module may also have ``prepare(policy)``,
called once by ``load_policy`` to compile what it needs into ``policy.extra``.
"""

from __future__ import annotations

from types import ModuleType

from . import attachments, customer_list, emails, handles, phones, recipients, words

__all__ = ["DETECTORS"]

# Order matters only for the report: IM handles before phones, so a WhatsApp number is
# reported as WhatsApp and the bare phone finding on the same text is dropped.
DETECTORS: tuple[ModuleType, ...] = (
    emails, handles, phones, words, customer_list, recipients, attachments,
)
