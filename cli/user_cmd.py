"""mailwarden user …: salespeople and their logins."""

from __future__ import annotations

import typer
from mailwarden.store.directory import (
    LANGUAGES,
    add_user,
    edit_user,
    list_users,
    require_user,
    set_enabled,
    set_password,
)
from mailwarden.store.models import ROLES
from mailwarden.store.throttle import unlock as forget_failures
from rich.table import Table

from .common import actor, fail, out, print_json_lines, read_password_stdin, store

app = typer.Typer(help="Add, list, edit, disable, enable and unlock users (salespeople, supervisors, admins).",
                  no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    login: str = typer.Argument(..., help="Login name, e.g. zhang"),
    name: str = typer.Option(..., "--name", help="Display name shown to customers, e.g. 'Zhang San'"),
    role: str = typer.Option("sales", "--role", help=f"One of: {', '.join(ROLES)}"),
    team: str = typer.Option(None, "--team", help="Team name (supervisors see their team)"),
    title: str = typer.Option(None, "--title", help="Job title for the signature"),
    phone: str = typer.Option(None, "--phone", help="Official phone or extension for the signature"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input"),
) -> None:
    """Add a user.  Without --password-stdin the password is asked for twice."""
    password = read_password_stdin(prompt=not password_stdin)
    with store(ctx) as (_cfg, st), st.session() as s:
        user = add_user(session=s, login=login, name=name, password=password, role=role, team=team, title=title, phone=phone)
        st.audit.append(actor=actor(), action="user.add", target=user.login, session=s, role=role, team=team)
    out.print(f"added {user.login} ({user.name}, {user.role})")


@app.command("list")
def list_(ctx: typer.Context, json_: bool = typer.Option(False, "--json", help="JSON Lines for scripts")) -> None:
    """List users."""
    with store(ctx) as (_cfg, st), st.session() as s:
        users = list_users(session=s)
        rows = [{"login": u.login, "name": u.name, "role": u.role, "team": u.team, "lang": u.lang,
                 "enabled": u.enabled} for u in users]
    if json_:
        print_json_lines(rows)
        return
    table = Table("login", "name", "role", "team", "lang", "enabled")
    for r in rows:
        table.add_row(r["login"], r["name"], r["role"], r["team"] or "", r["lang"] or "",
                      "yes" if r["enabled"] else "NO")
    out.print(table)


@app.command("edit")
def edit(
    ctx: typer.Context,
    login: str = typer.Argument(..., help="The user to change"),
    name: str = typer.Option(None, "--name", help="Display name shown to customers"),
    team: str = typer.Option(None, "--team", help="Team name (supervisors see their team); '' for none"),
    role: str = typer.Option(None, "--role", help=f"One of: {', '.join(ROLES)}"),
    lang: str = typer.Option(None, "--lang", help=f"Language of refusals and notices to them: {', '.join(LANGUAGES)}; "
                             "'' for the config's"),
) -> None:
    """Change a user's name, team, role or language.  A new role or team changes whose mail they
    (and their supervisors) see over IMAP from their next command on."""
    if name is None and team is None and role is None and lang is None:
        fail("nothing to change: give --name, --team, --role or --lang")
    with store(ctx) as (_cfg, st), st.session() as s:
        user, changes = edit_user(session=s, login=login, name=name, team=team, role=role, lang=lang)
        if changes:
            st.audit.append(actor=actor(), action="user.edit", target=user.login, session=s,
                            **{k: {"before": b, "after": a} for k, (b, a) in changes.items()})
    if not changes:
        out.print(f"{user.login}: nothing changed")
        return
    out.print(f"{user.login}: " + "; ".join(f"{k} {b or '(none)'} → {a or '(none)'}" for k, (b, a) in changes.items()))


def _toggle(ctx: typer.Context, login: str, enabled: bool) -> None:
    with store(ctx) as (_cfg, st), st.session() as s:
        user = set_enabled(session=s, login=login, enabled=enabled)
        st.audit.append(actor=actor(), action="user.enable" if enabled else "user.disable", target=user.login, session=s)
    out.print(f"{user.login} {'enabled' if enabled else 'disabled: their next login fails and open sessions are closed'}")


@app.command("disable")
def disable(ctx: typer.Context, login: str = typer.Argument(...)) -> None:
    """Disable a user at once: logins fail, open sessions are cut."""
    _toggle(ctx, login, False)


@app.command("enable")
def enable(ctx: typer.Context, login: str = typer.Argument(...)) -> None:
    """Enable a disabled user again."""
    _toggle(ctx, login, True)


@app.command("passwd")
def passwd(
    ctx: typer.Context,
    login: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from standard input"),
) -> None:
    """Set a user's password (their open sessions are closed)."""
    password = read_password_stdin(prompt=not password_stdin)
    with store(ctx) as (_cfg, st), st.session() as s:
        require_user(session=s, login=login)
        user = set_password(session=s, login=login, password=password)
        st.audit.append(actor=actor(), action="user.passwd", target=user.login, session=s)
    out.print(f"password of {user.login} changed")


@app.command("unlock")
def unlock(
    ctx: typer.Context,
    login: str = typer.Argument(..., help="The user locked out after failed logins"),
    address: str = typer.Option(None, "--address", help="Also clear this client address's failures (for any login)"),
) -> None:
    """Clear a user's failed logins (from every address): the lockout ends at once."""
    with store(ctx) as (_cfg, st), st.session() as s:
        user = require_user(session=s, login=login)
        n = forget_failures(s, user.login, address)
        st.audit.append(actor=actor(), action="user.unlock", target=user.login, session=s, address=address,
                        counters=n)
    out.print(f"{user.login} unlocked ({n} failure counter{'s' if n != 1 else ''} cleared)")
