"""mailwarden audit …: read and verify the audit chain."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import typer
from mailwarden.store.audit import anchor_line, parse_anchors
from mailwarden.store.auditquery import find_events
from rich import box
from rich.table import Table
from rich.text import Text

from .common import fail, out, parse_time, print_json_lines, store

app = typer.Typer(help="Read, verify and anchor the audit chain.", no_args_is_help=True)


@app.command("log")
def log(
    ctx: typer.Context,
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many of the newest events that match"),
    since: str = typer.Option(None, "--since", help="From then on: YYYY-MM-DD[THH:MM] (UTC) or a time ago (24h, 7d)"),
    until: str = typer.Option(None, "--until", help="Before then (a bare date: to the end of that day)"),
    user: str = typer.Option(None, "--user", "--actor", help="Only events by or about this login"),
    customer: str = typer.Option(None, "--customer", help="Only events about this customer or mail to it"),
    action: str = typer.Option(None, "--action", help="Only events whose action starts with this, e.g. 'auth' or 'send'"),
    json_: bool = typer.Option(False, "--json", help="JSON Lines for scripts"),
) -> None:
    """Show the newest audit events that match, oldest first."""
    start, end = parse_time("--since", since), parse_time("--until", until, end_of_day=True)
    with store(ctx) as (_cfg, st), st.session() as s:
        events = find_events(session=s, since=start, until=end, user=user, customer=customer, action=action,
                             limit=limit)
    if json_:
        print_json_lines([{"seq": e.seq, "ts": _utc(e.ts).isoformat(), "actor": e.actor, "action": e.action,
                           "target": e.target, "peer": e.peer, "detail": json.loads(e.detail)} for e in events])
        return
    # The short columns keep their words whole. Target and detail share the last column, one
    # under the other, and wrap at spaces: at 80 columns a column each left too little room
    # for one key=value pair, which was then cut in the middle.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("#", "time (UTC)", "actor", "action"):
        table.add_column(name, no_wrap=True)
    table.add_column("target · detail", overflow="fold", ratio=1)
    for e in events:
        target = (e.target or "").replace(",", ", ")
        detail = Text(_detail(e.detail), style="dim")
        cell = Text("\n").join(t for t in (Text(target), detail) if t.plain)
        table.add_row(str(e.seq), f"{e.ts:%Y-%m-%d %H:%M:%S}", e.actor, e.action, cell)
    out.print(table)


def _utc(ts: datetime) -> datetime:
    """SQLite gives the stored UTC time back without its zone."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


def _detail(raw: str) -> str:
    """``key=value`` pairs, shorter to read than the stored JSON (``--json`` gives that)."""
    try:
        detail = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(detail, dict):
        return raw
    return "  ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
                     for k, v in detail.items() if v not in (None, "", [], {}))


@app.command("verify")
def verify(
    ctx: typer.Context,
    anchor: Path = typer.Option(None, "--anchor", help="A file of anchors kept away from the gateway (from "
                                                       "`audit anchor`): the chain must still hold each"),
) -> None:
    """Check the whole chain; exit 1 and name the first bad event if any was edited or removed,
    or the end that was cut off."""
    anchors = []
    if anchor is not None:
        try:
            anchors = parse_anchors(anchor.read_text(encoding="utf-8"), str(anchor))
        except OSError as exc:
            fail(f"cannot read the anchor file {anchor}: {exc.strerror}")
        except (ValueError, UnicodeDecodeError) as exc:
            fail(str(exc))
    with store(ctx) as (_cfg, st):
        result = st.audit.verify(anchors)
    if result.ok:
        against = f", {len(anchors)} anchor{'' if len(anchors) == 1 else 's'} held" if anchors else ""
        out.print(f"audit chain intact: {result.checked} event{'' if result.checked == 1 else 's'}{against}")
        return
    fail(f"audit chain broken after {result.checked} good events: {result.problem}", code=1)


@app.command("anchor")
def anchor_(
    ctx: typer.Context,
    append_to: Path = typer.Option(None, "--out", help="Append the anchor to this file (keep it on another "
                                                       "machine or medium) instead of printing it"),
) -> None:
    """Print the chain's anchor (its number of events and the newest event's MAC) for
    `audit verify --anchor`: kept where the gateway cannot change it, it shows events removed
    from either end even by someone holding the audit key."""
    with store(ctx) as (_cfg, st):
        line = anchor_line(st.engine).line()
    if append_to is None:
        out.print(line)
        return
    try:
        with append_to.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError as exc:
        fail(f"cannot append to {append_to}: {exc.strerror}")
    out.print(f"anchor appended to {append_to}: {line}")
