"""mailwarden quarantine …: held mail, for supervisors and admins to release or reject."""

from __future__ import annotations

import email
import email.policy

import typer
from mailwarden.gateway.delivery.notices import rejected_notice, released_notice
from mailwarden.store.quarantine import get_held, list_held
from mailwarden.store.quarantine import reject as reject_held
from mailwarden.store.quarantine import release as release_held
from rich.table import Table

from .common import REVIEWER, fail, out, print_json_lines, reviewer, store

app = typer.Typer(help="List, show, release or reject mail held for review.", no_args_is_help=True)

BY = REVIEWER


@app.command("list")
def list_(ctx: typer.Context, by: str = BY, json_: bool = typer.Option(False, "--json", help="JSON Lines")) -> None:
    """Held messages, oldest first."""
    with store(ctx) as (_cfg, st), st.session() as s:
        _actor, visible = reviewer(s, by)
        held = list_held(session=s, visible_to=visible)
    if json_:
        print_json_lines([{"id": h.id, "operator": h.operator, "rcpts": h.rcpts, "subject": h.subject,
                           "held_at": h.held_at.isoformat(), "findings": h.findings} for h in held])
        return
    table = Table("id", "held since (UTC)", "operator", "to", "subject", "why")
    for h in held:
        table.add_row(str(h.id), f"{h.held_at:%Y-%m-%d %H:%M}", h.operator, ", ".join(h.rcpts), h.subject, h.reason)
    out.print(table)


@app.command("show")
def show(ctx: typer.Context, message_id: int = typer.Argument(..., help="Id from `quarantine list`"),
         by: str = BY, raw: bool = typer.Option(False, "--raw", help="Print the whole message as it would go out")) -> None:
    """Show one held message: who, to whom, why, and its text."""
    with store(ctx) as (_cfg, st), st.session() as s:
        _actor, visible = reviewer(s, by)
        item, h = get_held(session=s, message_id=message_id)
        if visible is not None and not visible(h.operator):
            fail(f"message {message_id} is not from your team")
        data = (st.spool_dir / item.blob).read_bytes()
        st.audit.append(actor=_actor, action="quarantine.show", target=str(message_id), session=s)
    if raw:
        import sys

        sys.stdout.buffer.write(data)
        return
    out.print(f"message {h.id} from {h.operator} to {', '.join(h.rcpts)}, held since {h.held_at:%Y-%m-%d %H:%M} UTC")
    out.print(f"subject: {h.subject}")
    for f in h.findings:
        out.print(f"  {f.get('rule')} ({f.get('category')}/{f.get('kind')}, {f.get('severity')}): {f.get('match')}")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    body = msg.get_body(("plain", "html"))
    if body is not None:
        try:
            text = body.get_content()
        except (LookupError, UnicodeError, ValueError):
            text = "(the text could not be decoded; use --raw)"
        out.print("-" * 60)
        out.print(text[:4000])


@app.command("release")
def release(ctx: typer.Context, message_id: int = typer.Argument(...), by: str = BY,
            note: str = typer.Option("", "--reason", "--note", help="Why, for the audit log")) -> None:
    """Release a held message: the gateway sends it within seconds, and tells its sender."""
    with store(ctx) as (_cfg, st), st.session() as s:
        who, visible = reviewer(s, by)
        _item, h = get_held(session=s, message_id=message_id)
        if visible is not None and not visible(h.operator):
            fail(f"message {message_id} is not from your team")
        release_held(session=s, audit=st.audit, message_id=message_id, actor=who, note=note, spool_dir=st.spool_dir,
                     notice=lambda h, shared: released_notice(key=st.audit.key, shared=shared, operator=h.operator,
                                                      subject=h.subject, rcpts=list(h.rcpts), by=who, note=note,
                                                      ref=str(h.id)))
    out.print(f"released message {message_id} ({h.operator} → {', '.join(h.rcpts)}); {h.operator} will be told")


@app.command("reject")
def reject(ctx: typer.Context, message_id: int = typer.Argument(...), by: str = BY,
           reason: str = typer.Option(..., "--reason", help="Told to the sender and kept in the audit log")) -> None:
    """Reject a held message: it is never sent, and the sender is told why."""
    with store(ctx, {"upstream"}) as (cfg, st), st.session() as s:
        assert cfg.upstream is not None
        who, visible = reviewer(s, by)
        _item, h = get_held(session=s, message_id=message_id)
        if visible is not None and not visible(h.operator):
            fail(f"message {message_id} is not from your team")
        notice = rejected_notice(key=st.audit.key, shared=cfg.upstream.username, operator=h.operator, subject=h.subject,
                                 rcpts=list(h.rcpts), reason=reason, ref=str(message_id))
        reject_held(session=s, audit=st.audit, spool_dir=st.spool_dir, message_id=message_id, actor=who,
                    reason=reason, notice=notice)
    out.print(f"rejected message {message_id}; {h.operator} will be told why")

