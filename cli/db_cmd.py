"""mailwarden db …: schema migrations."""

from __future__ import annotations

import typer
from mailwarden.store.migrate import current_revision, head_revision

from .common import out, store

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations (also done on every start)."""
    with store(ctx) as (_cfg, st):
        out.print(f"schema at revision {current_revision(st.engine)} (newest: {head_revision()})")
