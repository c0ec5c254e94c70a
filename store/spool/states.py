"""The states of a spooled item (the ``spool.stage`` column) and of its message
(``messages.status``), named once.

An item moves (the functions of :mod:`.rows` and :mod:`mailwarden.store.quarantine` do it)::

    accept ──► relay ──(upstream 250)──► append ──(Sent copy filed)──► done
       │         │ 4xx: retried with backoff; too old, or 5xx ──► bounced
       │         └─(operator: queue bounce)──► bounce ──(report in the INBOX)──► bounced
       ├──► held ──release──► relay        held ──reject──► rejected (+ a notice)
       └──► notice ──(in the INBOX)──► done

Any waiting item whose handling hits an unexpected error (a bug, not the upstream saying
"later") is retried :data:`SHUNT_AFTER` times, then shunted: stage ``shunt:<stage>``,
remembering where it was, offered to no worker until an operator retries or bounces it.
Being sent or stored right now is no state in the database: the delivery process keeps the
items in flight in memory, so a message costs no extra write for it.
"""

from __future__ import annotations

RELAY = "relay"          # to the upstream SMTP
APPEND = "append"        # delivered; the tagged copy still to be put in Sent
NOTICE = "notice"        # a message for the operator, to be put in the shared INBOX
BOUNCE = "bounce"        # given up (by an operator, or the bounce report could not be stored yet)
DONE = "done"
BOUNCED = "bounced"
HELD = "held"            # quarantined: waits for a supervisor
REJECTED = "rejected"    # a supervisor (or the quarantine timeout) refused it
SHUNT = "shunt"          # stored as "shunt:<stage it was in>"

PENDING = (RELAY, APPEND, NOTICE, BOUNCE)
"""The stages the delivery worker is offered (when due)."""

SHUNT_AFTER = 3
"""Unexpected errors in a row after which an item is shunted instead of retried."""

# messages.status
QUEUED = "queued"
QUARANTINED = "quarantined"
DELIVERED = "delivered"


def shunted(stage: str) -> str:
    """The stage an item is shunted to from ``stage``."""
    return f"{SHUNT}:{stage}"


def is_shunted(stage: str) -> bool:
    return stage.startswith(SHUNT + ":")


def unshunted(stage: str) -> str:
    """The stage a shunted item goes back to (any other stage: itself)."""
    return stage.split(":", 1)[1] if is_shunted(stage) else stage


def state_name(stage: str) -> str:
    """What ``queue list`` calls a stage: a shunted item is in state ``shunt``."""
    return SHUNT if is_shunted(stage) else stage


WAITING = (*PENDING, SHUNT)
"""The states ``queue list`` shows by default: not yet done with."""

STATES = (RELAY, APPEND, NOTICE, BOUNCE, SHUNT, HELD, DONE, BOUNCED, REJECTED)
