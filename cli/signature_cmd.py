"""mailwarden signature …: see a salesperson's signature, and a message as the customer gets it.

``apply`` runs :func:`mailwarden.signatures.apply_signature`, the same code path the gateway
uses, and prints the resulting message (bytes, unchanged encoding) on standard output; notes
(template used, fallback, why a message was left untouched) go to standard error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from mailwarden.gateway.config import ConfigError
from mailwarden.gateway.engines import signature_inputs
from mailwarden.signatures import (
    SignatureSet,
    SignatureTemplateError,
    SignatureUser,
    apply_signature,
    load_signatures,
    render,
)

from .common import config, err, fail, out, store

app = typer.Typer(help="Preview signatures and sign a message file as the gateway would.", no_args_is_help=True)

def lookup_user(ctx: typer.Context, login: str) -> SignatureUser:
    """The salesperson ``login`` from the store, as the signature engine sees them."""
    from mailwarden.store.directory import require_user

    with store(ctx) as (_cfg, st), st.session() as s:
        user: Any = require_user(session=s, login=login)
        return SignatureUser(login=user.login, name=user.name, title=user.title, phone=user.phone,
                             email=getattr(user, "email", None), team=user.team, role=user.role)


def _load(ctx: typer.Context) -> SignatureSet:
    cfg = config(ctx, {"company"})
    try:
        settings, company = signature_inputs(cfg)
        return load_signatures(settings, company)
    except (ConfigError, SignatureTemplateError) as exc:
        fail(str(exc))


@app.command("preview")
def preview(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", "-u", help="Login of the salesperson"),
    customer: str = typer.Option(None, "--customer", help="Customer name, for templates that use it"),
    html: bool = typer.Option(False, "--html", help="Show the HTML variant instead of the plain text"),
) -> None:
    """Show the signature rendered for a user (the template chosen by team, role, company)."""
    sigs = _load(ctx)
    person = lookup_user(ctx, user)
    try:
        rendered = render(sigs, person, customer)
    except SignatureTemplateError as exc:
        fail(f"{exc}\n(at send time this user's mail would carry the plain company signature)", code=1)
    err.print(f"template: {rendered.template}", markup=False)
    out.print(rendered.html if html else "-- \n" + rendered.text)


@app.command("apply")
def apply(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="Message file (.eml)"),
    user: str = typer.Option(..., "--user", "-u", help="Login of the salesperson sending it"),
    customer: str = typer.Option(None, "--customer", help="Customer name, for templates that use it"),
) -> None:
    """Print the message as the customer will receive it (the gateway's own code path)."""
    sigs = _load(ctx)
    person = lookup_user(ctx, user)
    result = apply_signature(file.read_bytes(), sigs, person, customer)
    if result.untouched_reason:
        policy = sigs.settings.unalterable
        err.print(f"left untouched: {result.untouched_reason} (policy for such messages: {policy})", markup=False)
    elif result.fallback:
        err.print(f"template failed, the plain company signature was used: {result.detail}", markup=False)
    if result.stripped_client_signature:
        err.print("the client's own signature was removed", markup=False)
    sys.stdout.buffer.write(result.message)
    sys.stdout.buffer.flush()
