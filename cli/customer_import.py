"""``customer import``: the CSV read, and each row applied (added, or with ``--update`` changed)
inside the caller's transaction, with a line for each change."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailwarden.store.directory import (
    DirectoryError,
    add_customer,
    assign_customer,
    customer_view,
    name_key,
    set_contacts,
    set_domains,
)
from mailwarden.store.models import Customer
from sqlmodel import Session, select

from .common import fail

REQUIRED_COLUMNS = ("name",)
OPTIONAL_COLUMNS = ("domains", "contacts", "owner")
COLUMNS = "columns: name, domains, contacts, owner"


def read_rows(file: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header (lower case) and the rows of a customers CSV (UTF-8, or GB18030 from Chinese Excel)."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        fail(f"{file}: {exc.strerror}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")  # spreadsheets saved by Chinese Excel
        except UnicodeDecodeError:
            fail(f"{file}: not UTF-8 or GB18030 text; save the sheet as CSV UTF-8")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        fail(f"{file}: line 1: the header needs a column {missing[0]!r} ({COLUMNS})")
    unknown = [h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        fail(f"{file}: line 1: unknown column {unknown[0]!r} ({COLUMNS})")
    reader.fieldnames = header
    return header, list(reader)


@dataclass
class Plan:
    """What applying the rows did (or would do)."""

    diff: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    moves: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # name, owner before, after
    added: int = 0
    changed: int = 0
    unchanged: int = 0

    def summary(self) -> str:
        return f"{self.added} added, {self.changed} changed, {self.unchanged} unchanged"


def _split(cell: str | None) -> list[str]:
    return [x.strip() for x in (cell or "").replace(",", ";").split(";") if x.strip()]


def _listed(sign: str, what: str, items: Sequence[str]) -> list[str]:
    return [f"{sign} {what} {x}" for x in items]


def apply_rows(s: Session, file: Path, header: list[str], rows: list[dict[str, str]], *, update: bool,
               freemail: Sequence[str], actor: str, advance: Callable[[], None]) -> Plan:
    plan = Plan()
    seen: dict[str, int] = {}
    for lineno, row in enumerate(rows, start=2):
        advance()
        name = (row.get("name") or "").strip()
        key = name_key(name)
        if key and key in seen:
            plan.problems.append(f"{file}: line {lineno}: customer {name!r} is on line {seen[key]} already "
                                 "(names do not differ by case)")
            continue
        seen[key] = lineno
        owner = (row.get("owner") or "").strip().lower() or None
        try:
            with s.begin_nested():
                existing = s.exec(select(Customer).where(Customer.name_key == key)).first() if key else None
                if existing is None:
                    c = add_customer(session=s, name=name, domains=_split(row.get("domains")),
                                     contacts=_split(row.get("contacts")), owner=owner, created_by=actor,
                                     freemail=freemail)
                    v = customer_view(session=s, customer=c)
                    plan.diff.append(f"+ {v.name} (owner {v.owner or 'pool'}"
                                     + "".join(f"; {k} {', '.join(x)}" for k, x in (("domains", v.domains),
                                                                                    ("contacts", v.contacts)) if x)
                                     + ")")
                    plan.added += 1
                elif not update:
                    raise DirectoryError(f"customer {existing.name!r} exists already (--update changes it)")
                else:
                    changes = _update(s, existing, header, row, owner, freemail, plan)
                    if changes:
                        plan.diff.append(f"~ {existing.name}: " + "; ".join(changes))
                        plan.changed += 1
                    else:
                        plan.unchanged += 1
        except DirectoryError as exc:
            plan.problems.append(f"{file}: line {lineno}: {exc}")
    return plan


def _update(s: Session, c: Customer, header: list[str], row: dict[str, str], owner: str | None,
            freemail: Sequence[str], plan: Plan) -> list[str]:
    """Set the columns the file has; the changes as words."""
    changes: list[str] = []
    before = customer_view(session=s, customer=c).owner
    if "owner" in header and before != owner:
        assign_customer(session=s, name_or_id=str(c.id), owner=owner)
        plan.moves.append((c.name, before, owner))
        changes.append(f"owner {before or 'pool'} → {owner or 'pool'}")
    if "domains" in header:
        added, removed = set_domains(session=s, customer=c, domains=_split(row.get("domains")), freemail=freemail)
        changes += _listed("+", "domain", added) + _listed("-", "domain", removed)
    if "contacts" in header:
        added, removed = set_contacts(session=s, customer=c, contacts=_split(row.get("contacts")))
        changes += _listed("+", "contact", added) + _listed("-", "contact", removed)
    s.flush()
    return changes
