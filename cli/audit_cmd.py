"""mailwarden audit …: read and verify the audit chain."""

from __future__ import annotations

import json

import typer
from mailwarden.store.models import AuditEvent
from rich.table import Table
from sqlmodel import col, select

from .common import fail, out, print_json_lines, store

app = typer.Typer(help="Read and verify the audit chain.", no_args_is_help=True)


@app.command("log")
def log(
    ctx: typer.Context,
    limit: int = typer.Option(50, "--limit", "-n", help="How many of the newest events"),
    action: str = typer.Option(None, "--action", help="Only events whose action starts with this, e.g. 'auth' or 'send'"),
    actor: str = typer.Option(None, "--actor", help="Only events by this operator"),
    json_: bool = typer.Option(False, "--json", help="JSON Lines for scripts"),
) -> None:
    """Show the newest audit events, oldest first."""
    with store(ctx) as (_cfg, st), st.session() as s:
        q = select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(limit)
        if action:
            q = q.where(col(AuditEvent.action).startswith(action))
        if actor:
            q = q.where(AuditEvent.actor == actor)
        events = list(reversed(s.exec(q).all()))
    if json_:
        print_json_lines([{"seq": e.seq, "ts": e.ts.isoformat(), "actor": e.actor, "action": e.action,
                           "target": e.target, "peer": e.peer, "detail": json.loads(e.detail)} for e in events])
        return
    table = Table("#", "time (UTC)", "actor", "action", "target", "detail")
    for e in events:
        table.add_row(str(e.seq), f"{e.ts:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.target, e.detail if e.detail != "{}" else "")
    out.print(table)


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Check the whole chain; exit 1 and name the first bad event if any was edited or removed."""
    with store(ctx) as (_cfg, st):
        result = st.audit.verify()
    if result.ok:
        out.print(f"audit chain intact: {result.checked} events")
        return
    fail(f"audit chain broken after {result.checked} good events: {result.problem}", code=1)
