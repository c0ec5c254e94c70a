"""mailwarden queue …: the outbound spool, for admins to see, retry or give up on.

The commands only change the spool's rows; the running gateway's delivery process acts on
them within seconds (it sends, or puts the bounce report in the sender's INBOX view).
"""

from __future__ import annotations

import typer
from mailwarden.store.spool import states as st
from mailwarden.store.spool.queue import Queued, give_up, list_queue, waiting
from mailwarden.store.spool.queue import retry as retry_items
from rich.table import Table

from .common import REVIEWER, out, print_json_lines, reviewer, store

app = typer.Typer(help="List, show, retry or bounce the outbound mail waiting in the spool.", no_args_is_help=True)

BY = REVIEWER
MESSAGE = typer.Argument(..., help="Message id (as in `queue list` and the sender's 'Queued as')")


def _error(q: Queued) -> str:
    return (q.last_error or "").replace("\n", " ")


@app.command("list")
def list_(ctx: typer.Context, by: str = BY,
          state: list[str] = typer.Option(None, "--state", help=f"Only these states ({', '.join(st.STATES)}); "
                                          f"default: the waiting ones ({', '.join(st.WAITING)})"),
          json_: bool = typer.Option(False, "--json", help="JSON Lines")) -> None:
    """Waiting items, the next due first: state, attempts, next attempt and the last error."""
    with store(ctx) as (_cfg, stor), stor.session() as s:
        _actor, visible = reviewer(s, by)
        items = list_queue(session=s, states=state or st.WAITING, visible_to=visible)
    if json_:
        print_json_lines([q.as_json() for q in items])
        return
    table = Table()
    for name in ("message", "state", "attempts", "next (UTC)"):
        table.add_column(name, no_wrap=True)  # what names the item never wraps; the rest folds
    for name in ("operator", "to", "last error"):
        table.add_column(name)
    for q in items:
        table.add_row(str(q.message_id), q.state, str(q.attempts), f"{q.next_attempt:%m-%d %H:%M:%S}", q.operator,
                      ", ".join(q.rcpts), _error(q))
    out.print(table)


@app.command("show")
def show(ctx: typer.Context, message_id: int = MESSAGE, by: str = BY,
         json_: bool = typer.Option(False, "--json", help="JSON Lines, one per item")) -> None:
    """Everything the spool records about one message (each of its items, in any state)."""
    with store(ctx) as (_cfg, stor), stor.session() as s:
        _actor, visible = reviewer(s, by)
        items = waiting(session=s, message_id=message_id, visible_to=visible, states=st.STATES)
    if json_:
        print_json_lines([q.as_json() for q in items])
        return
    for q in items:
        out.print(f"message {q.message_id} (spool item {q.id}) from {q.operator}: {q.subject}")
        for key, value in q.as_json().items():
            if key not in ("message", "id", "subject"):
                out.print(f"  {key:13} {', '.join(value) if isinstance(value, list) else value}")


@app.command("retry")
def retry(ctx: typer.Context, message_id: int = MESSAGE, by: str = BY) -> None:
    """Try a message again now (a shunted one too): the gateway sends it within seconds."""
    with store(ctx) as (_cfg, stor), stor.session() as s:
        who, visible = reviewer(s, by)
        moved = retry_items(session=s, audit=stor.audit, message_id=message_id, actor=who, visible_to=visible)
    for q in moved:
        out.print(f"message {q.message_id} ({q.operator} → {', '.join(q.rcpts)}): {q.state} → due now")


@app.command("bounce")
def bounce(ctx: typer.Context, message_id: int = MESSAGE, by: str = BY,
           reason: str = typer.Option("", "--reason", help="Told to the sender and kept in the audit log")) -> None:
    """Give up on a message: it is not sent, and its sender gets a bounce report."""
    with store(ctx) as (_cfg, stor), stor.session() as s:
        who, visible = reviewer(s, by)
        moved = give_up(session=s, audit=stor.audit, message_id=message_id, actor=who, reason=reason,
                        visible_to=visible)
    rcpts = sorted({r for q in moved for r in q.rcpts})
    out.print(f"message {message_id} to {', '.join(rcpts)} will not be sent; {moved[0].operator} gets a bounce "
              "report from the running gateway")
