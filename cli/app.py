"""The ``mailwarden`` command."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer
from mailwarden.gateway import logsetup

from . import (
    audit_cmd,
    backup_cmd,
    check_cmd,
    clientconfig_cmd,
    customer_cmd,
    db_cmd,
    demo_cmd,
    mail_cmd,
    quarantine_cmd,
    queue_cmd,
    rules_cmd,
    serve_cmd,
    signature_cmd,
    sync_cmd,
    user_cmd,
)
from .common import fail

app = typer.Typer(
    name="mailwarden",
    help="Shared-mailbox gateway and email compliance proxy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Path = typer.Option(
        None, "--config", "-c", envvar="MAILWARDEN_CONFIG", help="Configuration file (TOML).",
        show_envvar=True, dir_okay=False,
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details."),
    log_format: str = typer.Option(
        "text", "--log-format", envvar=logsetup.ENV_FORMAT, show_envvar=True,
        help="Log lines as text or json (one JSON object per line: ts, level, logger, pid, message).",
    ),
) -> None:
    ctx.obj = {"config_path": config}
    try:
        fmt = logsetup.log_format(log_format)
    except ValueError as exc:
        fail(str(exc))
    os.environ[logsetup.ENV_FORMAT] = fmt  # serve's delivery process logs the same way
    # Admin commands print their results; only serve and demo log their progress (INFO).
    logsetup.configure(logging.DEBUG if verbose else logging.WARNING, fmt)


app.add_typer(user_cmd.app, name="user")
user_cmd.app.command("client-config")(clientconfig_cmd.client_config)
app.add_typer(customer_cmd.app, name="customer")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(db_cmd.app, name="db")
app.add_typer(quarantine_cmd.app, name="quarantine")
app.add_typer(queue_cmd.app, name="queue")
app.add_typer(mail_cmd.app, name="mail")
app.add_typer(sync_cmd.app, name="sync")
app.add_typer(rules_cmd.app, name="rules")
app.add_typer(signature_cmd.app, name="signature")
app.command("check")(check_cmd.check)
app.command("serve")(serve_cmd.serve)
app.command("demo")(demo_cmd.demo)
app.command("backup")(backup_cmd.backup)
app.command("restore")(backup_cmd.restore)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        fail("interrupted", code=130)
