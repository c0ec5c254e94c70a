"""mailwarden user client-config LOGIN: a mail client's settings file for one salesperson."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from mailwarden.gateway import clientconfig
from mailwarden.store.directory import require_user

from .common import err, fail, store

FORMATS = {"thunderbird": "config-v1.1.xml", "apple": ".mobileconfig"}


def client_config(
    ctx: typer.Context,
    login: str = typer.Argument(..., help="The salesperson the file is for"),
    format_: str = typer.Option(..., "--format", "-f", help="thunderbird (autoconfig XML, clientConfig v1.1) or apple "
                                "(a .mobileconfig profile for macOS Mail, iPhone and iPad)"),
    output: Path = typer.Option(None, "--out", "-o", dir_okay=False, help="Write to this file (default: standard output)"),
) -> None:
    r"""Write a mail client's settings file for a user (Thunderbird, Apple Mail, iPhone).

    It names the gateway's host name (\[listen] hostname), its IMAP and SMTP ports and TLS
    (\[listen] imaps/imap, smtps/smtp, or client_ports) and their login, never a password: the
    mail program asks for it once."""
    kind = format_.strip().lower()
    if kind not in FORMATS:
        fail(f"--format {format_!r}: use thunderbird or apple")
    with store(ctx, {"company", "listen"}, migrate=False) as (cfg, st), st.session() as s:
        assert cfg.company is not None and cfg.listen is not None
        user = require_user(session=s, login=login)
        if not user.enabled:
            fail(f"{user.login} is disabled: enable them first (mailwarden user enable {user.login})")
        login, name = user.login, user.name
    if cfg.listen.hostname.lower() in ("localhost", "localhost.localdomain") or cfg.listen.hostname.startswith("127."):
        err.print(f"warning: [listen] hostname is {cfg.listen.hostname!r}: the file sends the mail program to its own "
                  "machine; set it to the name salespeople reach the gateway by", markup=False)
    try:
        if kind == "thunderbird":
            data = clientconfig.thunderbird(cfg.listen, cfg.company, username=login)
        else:
            data = clientconfig.apple(cfg.listen, cfg.company, login=login, name=name, address=_address(cfg.raw, login,
                                                                                                    cfg.company.domains[0]))
    except clientconfig.ClientConfigError as exc:
        fail(str(exc))
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"cannot write {output}: {exc.strerror or exc}")
    err.print(f"wrote {output} ({kind}, for {login}; hand it to them: it holds no password)", markup=False)


def _address(raw: dict, login: str, domain: str) -> str:  # type: ignore[type-arg]
    """The address the client shows as the account's: the company mailbox (what the gateway
    sends as), read without loading [upstream] and its password; else login@domain."""
    upstream = raw.get("upstream")
    username = upstream.get("username") if isinstance(upstream, dict) else None
    return username if isinstance(username, str) and "@" in username else f"{login}@{domain}"
