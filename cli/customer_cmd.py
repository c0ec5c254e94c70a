"""mailwarden customer …: customers, their addresses and domains, and who owns them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import typer
from mailwarden.gateway.config import Config, ConfigError
from mailwarden.gateway.engines import freemail_domains
from mailwarden.rules import RulesConfigError
from mailwarden.store.directory import (
    DirectoryError,
    add_customer,
    assign_customer,
    claim_customer,
    list_customers,
)
from rich.progress import Progress
from rich.table import Table

from .common import actor, err, fail, out, print_json_lines, store


def _freemail(cfg: Config) -> tuple[str, ...]:
    """The free-mail domains, which never name a customer: the rules' list (see engines)."""
    try:
        return freemail_domains(cfg)
    except (ConfigError, RulesConfigError) as exc:
        fail(str(exc))

app = typer.Typer(help="Add, list, assign, claim and import customers.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Company name of the customer"),
    domain: list[str] = typer.Option([], "--domain", help="A mail domain of the customer (repeatable)"),
    contact: list[str] = typer.Option([], "--contact", help="A contact's email address (repeatable)"),
    owner: str = typer.Option(None, "--owner", help="Login of the salesperson who owns the customer; none: the pool"),
) -> None:
    """Add a customer."""
    with store(ctx, {"outbound"}) as (cfg, st), st.session() as s:
        assert cfg.outbound is not None
        c = add_customer(session=s, name=name, domains=domain, contacts=contact, owner=owner,
                         created_by=actor(), freemail=_freemail(cfg))
        st.audit.append(actor=actor(), action="customer.add", target=c.name, session=s, owner=owner,
                        domains=list(domain), contacts=list(contact))
    out.print(f"added customer {c.name} (#{c.id}), owner: {owner or 'pool'}")


@app.command("list")
def list_(
    ctx: typer.Context,
    owner: str = typer.Option(None, "--owner", help="Only this salesperson's customers"),
    json_: bool = typer.Option(False, "--json", help="JSON Lines for scripts"),
) -> None:
    """List customers with owner, domains and contacts."""
    with store(ctx) as (_cfg, st), st.session() as s:
        views = list_customers(session=s, owner=owner)
    if json_:
        print_json_lines([{"id": v.id, "name": v.name, "owner": v.owner, "domains": list(v.domains),
                           "contacts": list(v.contacts)} for v in views])
        return
    table = Table("id", "name", "owner", "domains", "contacts")
    for v in views:
        table.add_row(str(v.id), v.name, v.owner or "(pool)", ", ".join(v.domains), ", ".join(v.contacts))
    out.print(table)


@app.command("assign")
def assign(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer name or id"),
    to: str = typer.Option(..., "--to", help="Login of the new owner, or 'pool'"),
) -> None:
    """Give a customer to another salesperson (or back to the pool)."""
    new_owner = None if to == "pool" else to
    with store(ctx) as (_cfg, st), st.session() as s:
        c, before = assign_customer(session=s, name_or_id=customer, owner=new_owner)
        st.audit.append(actor=actor(), action="customer.assign", target=c.name, session=s, before=before, after=new_owner)
    out.print(f"{c.name}: {before or 'pool'} → {new_owner or 'pool'}")


@app.command("claim")
def claim(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer name or id (a customer in the pool)"),
    user: str = typer.Option(..., "--user", help="Login of the salesperson who takes it"),
) -> None:
    """A salesperson takes a customer from the pool, up to their role's limit ([filing] claim_limits)."""
    with store(ctx, {"filing"}) as (cfg, st), st.session() as s:
        assert cfg.filing is not None
        c = claim_customer(session=s, name_or_id=customer, login=user, limits=dict(cfg.filing.claim_limits))
        st.audit.append(actor=actor(), action="customer.claim", target=c.name, session=s, user=user.strip().lower())
    out.print(f"{c.name}: pool → {user.strip().lower()}")


REQUIRED_COLUMNS = ("name",)
OPTIONAL_COLUMNS = ("domains", "contacts", "owner")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV with a header row: name, domains, contacts, owner "
                                "(several domains or contacts separated by ';')"),
) -> None:
    """Import customers from CSV: all rows or none.

    Every row is checked; if any row is wrong, each problem is listed with its
    line number and nothing is imported.
    """
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
        fail(f"{file}: line 1: the header needs a column {missing[0]!r} (columns: name, domains, contacts, owner)")
    unknown = [h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        fail(f"{file}: line 1: unknown column {unknown[0]!r} (columns: name, domains, contacts, owner)")
    reader.fieldnames = header
    rows = list(reader)
    problems: list[str] = []
    imported = 0
    with store(ctx, {"outbound"}) as (cfg, st), st.session() as s:
        assert cfg.outbound is not None
        freemail = _freemail(cfg)  # reads the rule packs: once, not per row
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("checking", total=len(rows))
            for i, row in enumerate(rows, start=2):
                progress.advance(task)
                split = lambda key: [x for x in (row.get(key) or "").replace(",", ";").split(";") if x.strip()]  # noqa: E731
                try:
                    with s.begin_nested():
                        add_customer(session=s, name=row.get("name") or "", domains=split("domains"),
                                     contacts=split("contacts"), owner=(row.get("owner") or "").strip() or None,
                                     created_by=actor(), freemail=freemail)
                    imported += 1
                except DirectoryError as exc:
                    problems.append(f"{file}: line {i}: {exc}")
        if problems:
            s.rollback()
            for p in problems:
                err.print(p, markup=False)
            fail(f"{len(problems)} of {len(rows)} rows have problems; nothing was imported")
        st.audit.append(actor=actor(), action="customer.import", target=str(file.name), session=s, count=imported)
    out.print(f"imported {imported} customers from {file}")
