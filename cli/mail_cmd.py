"""mailwarden mail …: the store's copy of the company mailbox, and whose each mail is."""

from __future__ import annotations

from datetime import datetime, timezone

import typer
from mailwarden.store.mails import assign_mail, list_mails
from rich.table import Table

from .common import actor, out, parse_time, print_json_lines, store

app = typer.Typer(help="List the company mailbox's mail and file it by hand.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    owner: str = typer.Option(None, "--owner", help="Only mail in this salesperson's view"),
    customer: str = typer.Option(None, "--customer", help="Only mail of this customer (name or id)"),
    pool: bool = typer.Option(False, "--pool", help="Only mail in the pool (nobody's yet)"),
    since: str = typer.Option(None, "--since", help="Only mail from then on (YYYY-MM-DD, UTC, or a time ago: 7d)"),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many, newest first"),
    json_: bool = typer.Option(False, "--json", help="JSON Lines for scripts"),
) -> None:
    """List mail with its customer, owner and how it was filed, newest first."""
    with store(ctx) as (_cfg, st), st.session() as s:
        rows = list_mails(session=s, owner=owner, customer=customer, pool=pool, since=parse_time("--since", since), limit=limit)
    if json_:
        print_json_lines([{"id": r.id, "date": r.internal_date.astimezone(timezone.utc).isoformat()
                           if r.internal_date.tzinfo else r.internal_date.replace(tzinfo=timezone.utc).isoformat(),
                           "direction": r.direction, "folder": r.folder_role, "from": r.from_addr, "to": r.to_addrs,
                           "subject": r.subject, "size": r.size, "customer": r.customer, "owner": r.owner,
                           "filed_by": r.filed_by, "message_id": r.message_id} for r in rows])
        return
    table = Table("id", "date", "dir", "from", "subject", "customer", "owner", "filed by")
    for r in rows:
        table.add_row(str(r.id), r.internal_date.strftime("%Y-%m-%d %H:%M"), r.direction, r.from_addr[:40],
                      r.subject[:60], r.customer or "", r.owner or "(pool)", r.filed_by)
    out.print(table)


@app.command("assign")
def assign(
    ctx: typer.Context,
    mail: int = typer.Argument(..., help="Mail id (see `mailwarden mail list`)"),
    customer: str = typer.Option(..., "--customer", help="Customer name or id to file it for"),
    no_contact: bool = typer.Option(False, "--no-contact",
                                    help="Do not make the sender a contact of the customer (by default the next "
                                         "mail from the same address follows)"),
) -> None:
    """File a mail for a customer by hand (its owner sees it from now on)."""
    with store(ctx) as (_cfg, st), st.session() as s:
        m, before, target = assign_mail(session=s, mail_id=mail, customer=customer, add_contact=not no_contact)
        st.audit.append(actor=actor(), action="mail.assign", target=str(m.id), session=s, before=before,
                        after=target.name, sender=m.from_addr)
    out.print(f"mail {m.id}: {before or 'pool'} → {target.name}")
