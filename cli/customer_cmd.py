"""mailwarden customer …: customers, their addresses and domains, and who owns them."""

from __future__ import annotations

from pathlib import Path

import typer
from mailwarden.gateway.config import Config, ConfigError
from mailwarden.gateway.engines import freemail_domains
from mailwarden.rules import RulesConfigError
from mailwarden.store.directory import (
    add_customer,
    assign_customer,
    claim_customer,
    list_customers,
    reassign_customers,
)
from rich.progress import Progress
from rich.table import Table

from .common import actor, err, fail, out, print_json_lines, store
from .customer_import import apply_rows, read_rows


def _freemail(cfg: Config) -> tuple[str, ...]:
    """The free-mail domains, which never name a customer: the rules' list (see engines)."""
    try:
        return freemail_domains(cfg)
    except (ConfigError, RulesConfigError) as exc:
        fail(str(exc))

app = typer.Typer(help="Add, list, assign, reassign, claim and import customers.", no_args_is_help=True)


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
    out.print(f"added customer {c.name}, owner: {owner.strip().lower() if owner else 'pool'}")


@app.command("list")
def list_(
    ctx: typer.Context,
    owner: str = typer.Option(None, "--owner", help="Only this salesperson's customers ('pool': nobody's)"),
    json_: bool = typer.Option(False, "--json", help="JSON Lines for scripts"),
) -> None:
    """List customers with owner, domains and contacts."""
    with store(ctx) as (_cfg, st), st.session() as s:
        views = list_customers(session=s, owner=owner)
    if json_:
        print_json_lines([{"name": v.name, "owner": v.owner, "domains": list(v.domains),
                           "contacts": list(v.contacts), "id": v.id} for v in views])
        return
    table = Table("name", "owner", "domains", "contacts")
    for v in views:
        table.add_row(v.name, v.owner or "(pool)", ", ".join(v.domains), ", ".join(v.contacts))
    out.print(table)


@app.command("assign")
def assign(
    ctx: typer.Context,
    customer: str = typer.Argument(..., help="Customer name or id"),
    to: str = typer.Option(..., "--to", help="Login of the new owner, or 'pool'"),
    reason: str = typer.Option("", "--reason", help="Why, for the audit log"),
) -> None:
    """Give a customer to another salesperson (or back to the pool)."""
    new_owner = None if to == "pool" else to.strip().lower()
    with store(ctx) as (_cfg, st), st.session() as s:
        c, before = assign_customer(session=s, name_or_id=customer, owner=new_owner)
        st.audit.append(actor=actor(), action="customer.assign", target=c.name, session=s, before=before,
                        after=new_owner, reason=reason)
    out.print(f"{c.name}: {before or 'pool'} → {new_owner or 'pool'}")


@app.command("reassign")
def reassign(
    ctx: typer.Context,
    from_: str = typer.Option(..., "--from", help="Login whose customers move (e.g. who leaves), or 'pool'"),
    to: str = typer.Option(..., "--to", help="Login of the new owner, or 'pool'"),
    reason: str = typer.Option("", "--reason", help="Why, for the audit log"),
) -> None:
    """Give every customer of one salesperson to another (or to the pool): their mail moves to
    the new owner's IMAP view at its next command."""
    source = None if from_ == "pool" else from_
    target = None if to == "pool" else to
    if (source or "pool").strip().lower() == (target or "pool").strip().lower():
        fail("--from and --to name the same owner")
    with store(ctx) as (_cfg, st), st.session() as s:
        moved = reassign_customers(session=s, from_login=source, to_login=target)
        for c in moved:
            st.audit.append(actor=actor(), action="customer.assign", target=c.name, session=s,
                            before=source.strip().lower() if source else None,
                            after=target.strip().lower() if target else None, reason=reason, bulk=True)
    names = ", ".join(c.name for c in moved)
    out.print(f"{len(moved)} customer{'' if len(moved) == 1 else 's'} {from_} → {to}" + (f": {names}" if names else ""))


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


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV with a header row: name, domains, contacts, owner "
                                "(several domains or contacts separated by ';')"),
    update: bool = typer.Option(False, "--update", help="Change customers that exist already (by name, in any "
                                "case): the file's columns replace their owner, domains and contacts"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change and change nothing"),
) -> None:
    """Import customers from CSV: all rows or none, with a line for each change.

    Every row is checked; if any row is wrong, each problem is listed with its line number and
    nothing is imported.  Without --update a name that exists already is such a problem.
    """
    header, rows = read_rows(file)
    with store(ctx, {"outbound"}) as (cfg, st), st.session() as s:
        assert cfg.outbound is not None
        freemail = _freemail(cfg)  # reads the rule packs: once, not per row
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("checking", total=len(rows))
            plan = apply_rows(s, file, header, rows, update=update, freemail=freemail, actor=actor(),
                              advance=lambda: progress.advance(task))
        if plan.problems:
            s.rollback()
            for p in plan.problems:
                err.print(p, markup=False)
            fail(f"{len(plan.problems)} of {len(rows)} rows have problems; nothing was imported")
        for line in plan.diff:
            out.print(line)
        if dry_run:
            s.rollback()
            out.print(f"dry run: {plan.summary()}; nothing was changed")
            return
        for name, before, after in plan.moves:
            st.audit.append(actor=actor(), action="customer.assign", target=name, session=s, before=before,
                            after=after, reason=f"import {file.name}")
        st.audit.append(actor=actor(), action="customer.import", target=str(file.name), session=s,
                        added=plan.added, changed=plan.changed, unchanged=plan.unchanged)
    out.print(f"{file}: {plan.summary()}")
