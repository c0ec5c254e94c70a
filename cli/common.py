"""What every command shares: the config, the store, errors a person can act on."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from mailwarden.gateway.config import Config, ConfigError, load_config
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
