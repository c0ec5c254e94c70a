"""mailwarden.rules — the pure detection engine: message bytes + context in, decision out.

No sockets and no database: :func:`load_policy` builds a :class:`Policy` once per
configuration (rule packs, word lists, automata; immutable, shared by threads),
:func:`evaluate` decides on one message, :func:`redact` rewrites the text parts for
``redact`` findings. The message itself is read through the mail model
(:mod:`mailwarden.rules.mail`), which the gateway builds once and shares with the
signatures. Importing this package is cheap; the heavy work happens in :func:`load_policy`.
"""

from __future__ import annotations

from .context import CheckContext, CompanyProfile, RecipientInfo, RulesSettings
from .engine import evaluate, load_policy
from .errors import RulesConfigError
from .findings import ACTIONS, Decision, Finding
from .policy import Policy
from .redact import redact

__all__ = [
    "ACTIONS",
    "CheckContext",
    "CompanyProfile",
    "Decision",
    "Finding",
    "Policy",
    "RecipientInfo",
    "RulesConfigError",
    "RulesSettings",
    "evaluate",
    "load_policy",
    "redact",
]
