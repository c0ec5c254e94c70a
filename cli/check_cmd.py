"""mailwarden check: is everything the gateway needs there and working?"""

from __future__ import annotations

import asyncio

import typer
from mailwarden.gateway.health import run_checks
from mailwarden.gateway.server import SECTIONS

from .common import err, out, store


def check(ctx: typer.Context) -> None:
    """Check what the gateway needs: one line each, exit 1 on any failure.

    The config, the store (schema, file permissions), the clock, the TLS certificate and the
    shared account's upstream SMTP and IMAP logins."""
    with store(ctx, SECTIONS, migrate=False) as (cfg, st):  # the config was validated on the way in
        found = asyncio.run(run_checks(cfg, st))
    out.print(f"ok    config: {cfg.path}")
    for f in found:
        (out if f.ok else err).print(f.line(), markup=False)
    failed = sum(1 for f in found if not f.ok)
    if failed:
        err.print(f"{failed} check{'s' if failed > 1 else ''} failed", markup=False)
        raise typer.Exit(1)
