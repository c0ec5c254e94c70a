"""What every command shares: the config, the store, errors a person can act on."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

import typer
from mailwarden.gateway.config import Config, ConfigError, load_config
from mailwarden.gateway.confread import parse_duration
from mailwarden.store import StoreHandle, open_store
from mailwarden.store.directory import DirectoryError
from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True, markup=False)  # names come from users: never markup
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code)


def config(ctx: typer.Context, sections: set[str]) -> Config:
    path = (ctx.find_root().obj or {}).get("config_path")
    try:
        return load_config(path, sections)
    except ConfigError as exc:
        fail(str(exc))


@contextmanager
def store(ctx: typer.Context, extra_sections: set[str] = frozenset(),  # type: ignore[assignment]
          migrate: bool = True) -> Iterator[tuple[Config, StoreHandle]]:
    cfg = config(ctx, {"store", *extra_sections})
    assert cfg.store is not None
    try:
        handle = open_store(cfg.store, migrate=migrate)
    except Exception as exc:  # a database that cannot be opened or migrated
        fail(f"cannot open the store at {cfg.store.url.split('@')[-1]}: {exc}")
    try:
        yield cfg, handle
    except DirectoryError as exc:
        fail(str(exc))
    finally:
        handle.close()


def actor() -> str:
    """CLI actions are attributed to the operating-system account that ran them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


# --by is the older name: kept so that scripts written for it go on working.
REVIEWER = typer.Option(None, "--user", "--by", help="Supervisor or admin login acting (checked: supervisors see "
                        "their team only)")


def reviewer(session, login: str | None):  # type: ignore[no-untyped-def]
    """Who acts (the OS account when no login is named) and whose mail they may see (None: all)."""
    from mailwarden.store.quarantine import may_review  # noqa: PLC0415

    if login is None:
        return actor(), None
    return login, may_review(session=session, reviewer=login)


def parse_time(option: str, value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """A point in time given on the command line: ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM`` (UTC unless
    it says otherwise) or a time ago (``90m``, ``24h``, ``7d``).  ``end_of_day``: a bare date means
    the end of that day (``--until 2026-12-07`` includes the 7th)."""
    if not value:
        return None
    try:
        ago = parse_duration(value)
    except ValueError:
        ago = None
    if ago is not None and not value.strip().isdigit():
        return datetime.now(timezone.utc) - timedelta(seconds=ago)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: give a date as YYYY-MM-DD (or YYYY-MM-DDTHH:MM, UTC) or a time ago as 24h or 7d")
    if end_of_day and len(value.strip()) == 10:
        ts += timedelta(days=1)
    # In UTC: SQLite keeps times without their zone, so only UTC compares right.
    return ts.astimezone(timezone.utc) if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


def read_password_stdin(prompt: bool) -> str:
    if prompt:
        if not sys.stdin.isatty():
            fail("no terminal to ask for the password: use --password-stdin")
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            fail("the two passwords differ")
        return first
    line = sys.stdin.readline()
    if not line:
        fail("--password-stdin: nothing on standard input")
    return line.rstrip("\r\n")


def print_json_lines(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
