"""mailwarden sync …: import the company mailbox into the store, and see how the sync is doing."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone

import typer
from mailwarden.gateway.config import ConfigError
from mailwarden.gateway.sync.service import Progress as SyncProgress
from mailwarden.gateway.sync.service import hold_sync_lock, initial_import, make_sync
from mailwarden.gateway.upstream.budget import ConnectionBudget
from mailwarden.gateway.upstream.source import TemporaryFailure
from mailwarden.rules import RulesConfigError
from mailwarden.store.mails import folder_counts, list_folders, sync_status
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .common import err, fail, out, print_json_lines, store

SECTIONS = {"company", "upstream", "sync", "filing", "outbound"}

app = typer.Typer(help="Import the company mailbox into the store; see the sync's state.", no_args_is_help=True,
                  invoke_without_command=True)


@app.callback()
def sync(
    ctx: typer.Context,
    initial: bool = typer.Option(False, "--initial", help="Import the whole mailbox now (INBOX, Sent and the "
                                 "[sync] folders), with a progress bar; stopped, it resumes where it was"),
) -> None:
    """Import the company mailbox (--initial), or `sync status`."""
    if ctx.invoked_subcommand is not None:
        return
    if not initial:
        out.print(ctx.get_help())
        raise typer.Exit(0)
    with store(ctx, SECTIONS) as (cfg, st):
        assert cfg.upstream is not None and cfg.sync is not None
        lock = hold_sync_lock(cfg.data_dir)
        if lock is None:
            fail("a running `mailwarden serve` keeps this mailbox in sync already (it imports what is missing "
                 "itself); see `mailwarden sync status`")
        try:
            budget = ConnectionBudget({"imap": cfg.upstream.imap_connections})
            try:
                syncer = make_sync(cfg, st, budget)
            except (ConfigError, RulesConfigError) as exc:
                fail(str(exc))
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=err, transient=False) as bar:
                tasks: dict[str, int] = {}

                def report(p: SyncProgress) -> None:
                    if p.folder not in tasks:
                        tasks[p.folder] = bar.add_task(p.folder, total=p.total or None)
                    bar.update(tasks[p.folder], completed=p.done, total=max(p.total, p.done) or None)

                try:
                    stored = asyncio.run(initial_import(syncer, report))
                except TemporaryFailure as exc:
                    fail(f"cannot import: {exc} (what was imported is kept; run the command again)", code=1)
            with st.session() as s:
                failed = [(f.name, f.last_error) for f in list_folders(session=s) if f.last_error]
        finally:
            os.close(lock)
    out.print(f"imported {stored} new messages")
    for name, error in failed:
        err.print(f"folder {name}: {error}", markup=False)
    if failed:
        raise typer.Exit(1)


@app.command("status")
def status(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help="JSON Lines for scripts"),
) -> None:
    """The sync's connections (last IDLE event, state, errors) and each folder's UID state."""
    with store(ctx) as (_cfg, st), st.session() as s:
        parts = sync_status(session=s)
        folders = list_folders(session=s)
        counts = folder_counts(session=s)
    now = datetime.now(timezone.utc)

    def ago(ts: datetime | None) -> str:
        if ts is None:
            return "never"
        ts = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
        return f"{int((now - ts).total_seconds())} s ago"

    def iso(ts: datetime | None) -> str | None:
        return None if ts is None else (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).isoformat()

    if json_:
        print_json_lines([{"kind": "connection", "component": p.component, "state": p.state, "detail": p.detail,
                           "last_event": iso(p.last_event_at), "updated": iso(p.updated_at)} for p in parts]
                         + [{"kind": "folder", "folder": f.name, "role": f.role, "uidvalidity": f.uidvalidity,
                             "uid_next": f.uid_next, "upstream_count": f.message_count, "stored": counts.get(f.id, 0),
                             "highest_modseq": f.highest_modseq, "synced": iso(f.synced_at), "problem": f.last_error}
                            for f in folders])
        return
    if not parts and not folders:
        out.print("nothing synced yet: start `mailwarden serve`, or run `mailwarden sync --initial`")
        return
    conns = Table("connection", "state", "last event", "updated", "detail")
    for p in parts:
        conns.add_row(p.component, p.state, ago(p.last_event_at), ago(p.updated_at), p.detail)
    out.print(conns)
    table = Table("folder", "role", "UIDVALIDITY", "next UID", "upstream", "stored", "lag", "synced", "problem")
    for f in folders:
        lag = max(0, f.message_count - counts.get(f.id, 0))
        table.add_row(f.name, f.role, str(f.uidvalidity or "-"), str(f.uid_next), str(f.message_count),
                      str(counts.get(f.id, 0)), str(lag), ago(f.synced_at), f.last_error or "")
    out.print(table)
