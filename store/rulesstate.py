"""Which rules are in force: the counter of rule changes made through the CLI and what each
running gateway has loaded.

``rules import-words`` (and ``rules reload``) move the counter in the same transaction as their
audit event; every gateway sharing the store reads it once a second (one primary-key lookup,
never per message) and loads its rules again when it moved.  Each gateway writes back the
version it runs and, when a load failed, why: ``rules list`` and ``/healthz`` show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from .models import RulesEpoch, RulesLoaded, utcnow

__all__ = ["Epoch", "bump", "current_epoch", "epoch_info", "record_loaded", "loaded_rules"]


@dataclass(frozen=True)
class Epoch:
    """The counter and the last change that moved it."""

    epoch: int
    changed_at: datetime | None
    changed_by: str | None
    change: str


def bump(*, session: Session, actor: str, change: str) -> int:
    """Move the counter (in the caller's transaction, beside its audit event); the new value."""
    row = session.get(RulesEpoch, 1, with_for_update=True) or RulesEpoch(id=1, epoch=0)
    row.epoch += 1
    row.changed_at, row.changed_by, row.change = utcnow(), actor[:64], change[:500]
    session.add(row)
    session.flush()
    return row.epoch


def current_epoch(*, engine: Engine) -> int:
    """The counter now (0 before any change): one primary-key lookup."""
    with Session(engine) as s:
        value = s.exec(select(RulesEpoch.epoch).where(RulesEpoch.id == 1)).first()
    return int(value or 0)


def epoch_info(*, session: Session) -> Epoch:
    row = session.get(RulesEpoch, 1)
    if row is None:
        return Epoch(0, None, None, "")
    return Epoch(row.epoch, row.changed_at, row.changed_by, row.change)


def record_loaded(*, session: Session, gateway: str, version: str, epoch: int, error: str | None,
                  loaded: bool) -> None:
    """What *gateway* runs: ``loaded`` when it has just loaded *version*; *error*: why the last
    load failed (None: it did not)."""
    now = utcnow()
    row = session.get(RulesLoaded, gateway)
    if row is None:
        row = RulesLoaded(gateway=gateway, version=version, epoch=epoch, loaded_at=now, seen_at=now)
    if loaded:
        row.version, row.loaded_at = version, now
    row.epoch, row.seen_at = epoch, now
    if error is None:
        row.error = row.error_at = None
    elif error != row.error:
        row.error, row.error_at = error[:2000], now
    session.add(row)
    session.commit()


def loaded_rules(*, session: Session) -> list[RulesLoaded]:
    """Every gateway's row, most recently seen first."""
    return list(session.exec(select(RulesLoaded).order_by(col(RulesLoaded.seen_at).desc())).all())
