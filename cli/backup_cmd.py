"""mailwarden backup DIR / restore DIR: the store, its files and keys, taken while serve runs."""

from __future__ import annotations

from pathlib import Path

import typer
from mailwarden.store import open_store
from mailwarden.store.backup import BackupError
from mailwarden.store.backup import backup as take_backup
from mailwarden.store.backup import restore as put_back

from .common import config, err, fail, out


def backup(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A new or empty folder for the backup", file_okay=False),
    without_key: bool = typer.Option(False, "--without-key", help="Leave the audit key out (keep it apart: with "
                                     "it, whoever holds the backup could rewrite the chain unnoticed)"),
) -> None:
    """Back up the store, its files and keys into a new folder, while the gateway runs.

    The SQLite database by its online backup API (one consistent snapshot), the audit key and
    its head record, then spool, sent mail, originals, blobs and the TLS pair.  A PostgreSQL
    store is pg_dump's to back up (the message says how)."""
    cfg = config(ctx, {"store"})
    assert cfg.store is not None
    try:
        done = take_backup(url=cfg.store.url, data_dir=cfg.store.data_dir, audit_key_file=cfg.store.audit_key_file,
                           target=directory, with_key=not without_key)
    except BackupError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"backup to {directory} failed, nothing was kept: {exc}")
    out.print(f"backed up to {done.where}: database {done.database_bytes} bytes, {done.files} files")


def restore(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A folder written by mailwarden backup", file_okay=False),
    force: bool = typer.Option(False, "--force", help="Replace a data directory that is not empty"),
) -> None:
    """Restore a backup into the config's data directory, then verify the audit chain.

    The data directory must be new or empty (--force replaces it) and no gateway may run on it;
    migrations are applied; exit 1 if the restored audit chain does not hold."""
    cfg = config(ctx, {"store"})
    assert cfg.store is not None
    if not directory.is_dir():
        fail(f"{directory}: no such folder")
    try:
        done = put_back(url=cfg.store.url, data_dir=cfg.store.data_dir, audit_key_file=cfg.store.audit_key_file,
                        source=directory, force=force)
    except BackupError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"restore from {directory} failed: {exc}")
    st = open_store(cfg.store)  # a backup of an older version is migrated here
    try:
        result = st.audit.verify()
    finally:
        st.close()
    out.print(f"restored {directory} into {cfg.store.data_dir}: database {done.database_bytes} bytes, {done.files} files")
    if not result.ok:
        err.print(f"audit chain: FAILED after {result.checked} events: {result.problem}", markup=False)
        raise typer.Exit(1)
    out.print(f"audit chain: ok ({result.checked} events)")
