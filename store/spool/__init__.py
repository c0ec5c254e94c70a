"""The durable outbound queue: its files (:mod:`.files`), its rows and their transitions
(:mod:`.rows`), the names of its states (:mod:`.states`), and the queue as an operator sees it
(:mod:`.queue`).  The lifecycle of a spooled message lives here and nowhere else: the
delivery worker and the quarantine call these functions instead of writing spool rows.
"""

from __future__ import annotations

from .files import (
    Blobs,
    archive_dir,
    damage,
    file_sent,
    needs_thread,
    originals_dir,
    sweep_orphans,
    sync_dirs,
    write_blob,
    write_blobs,
)
from .rows import (
    PENDING,
    DueItem,
    Envelope,
    accept,
    add_notice,
    aware,
    backoff,
    bounce_reason,
    bounce_later,
    bounced,
    damaged,
    delivered,
    due,
    failed,
    next_stage,
    record,
    retry_later,
    sent_copies_filed,
    shunt,
)

__all__ = [
    "Blobs", "DueItem", "Envelope", "PENDING", "accept", "add_notice", "archive_dir", "aware", "backoff",
    "bounce_later", "bounce_reason", "bounced", "damage", "damaged", "delivered", "due", "failed", "file_sent", "next_stage",
    "needs_thread", "originals_dir", "record", "retry_later",
    "sent_copies_filed", "shunt", "sweep_orphans", "sync_dirs", "write_blob", "write_blobs",
]
