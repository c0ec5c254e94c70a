"""``mailwarden backup`` / ``restore``: the store, its files and its keys, while the gateway runs.

A backup is a folder::

    manifest.json        what it holds (format, time, the database kind, counts)
    mailwarden.db        the SQLite database, a consistent snapshot (SQLite's online backup API)
    audit.key            the audit chain's key (not with ``backup --without-key``)
    audit.key.head       the chain's recorded head, as it was just before the snapshot
    data/                spool/, originals/, messages/, blobs/ and tls/ of the data directory

The order makes it consistent without stopping anything: the head record is read before the
snapshot (so it never names an event the snapshot lacks; one older than the snapshot's last
event is what ``audit verify`` accepts), and the files are copied after it.  Blobs are written
before the rows that name them and never change, and a spool file is committed before its row and
later only renamed from ``spool/`` to ``messages/`` (copied in that order), so every file the
snapshot names is in the copy.  Files newer than the snapshot may be in it too: harmless (an
unused blob; a spool file without a row is swept at the next start).

A PostgreSQL store is ``pg_dump``'s to back up (it takes a consistent snapshot of its own, blobs
included): :func:`backup` refuses it with the commands to use.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import sqlite_path
from .blobs import fsync_path

FORMAT = "mailwarden-backup 1"
MANIFEST = "manifest.json"
DATABASE = "mailwarden.db"
KEY, HEAD = "audit.key", "audit.key.head"
FILES = "data"
# In this order: a message filed as sent moves from spool/ to messages/ while we copy.
FOLDERS = ("spool", "originals", "messages", "blobs", "tls", "rules")  # rules: the imported word lists
# What a data directory may hold that is no part of a backup (locks, the metrics' scratch files).
SCRATCH = {"delivery.lock", "sync.lock", "metrics"}


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says what to do."""


@dataclass(frozen=True)
class Summary:
    where: Path
    database_bytes: int
    files: int


def _pg_refusal(url: str) -> BackupError:
    where = url.split("@")[-1]
    return BackupError(
        f"the store is PostgreSQL ({where}): back up the database with pg_dump, which takes a consistent "
        "snapshot (blobs included), e.g. pg_dump --format=custom --file mailwarden.pgdump DATABASE, and restore it "
        "with pg_restore --clean --if-exists --dbname DATABASE; keep the audit key and the data directory's spool/, "
        "messages/ and tls/ with it (copied after pg_dump finished)")


def _empty_or_new(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError(f"{path} is not an empty folder: {what} goes into a new or empty one")


def _copy_tree(src: Path, dst: Path) -> int:
    """Copy the files under ``src`` (skipping temporary ones) to ``dst``; files that vanish while
    we walk (a spool file being filed) are skipped.  Returns the number copied."""
    n = 0
    for root, dirs, files in os.walk(src):
        dirs.sort()
        rel = Path(root).relative_to(src)
        (dst / rel).mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in sorted(files):
            if name.startswith(".") and name.endswith(".tmp"):
                continue
            try:
                shutil.copy2(Path(root) / name, dst / rel / name)
            except FileNotFoundError:
                continue
            n += 1
    return n


def _snapshot(db: Path, target: Path) -> None:
    """SQLite's online backup: one consistent copy while the gateway goes on writing."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = sqlite3.connect(db, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: a snapshot no concurrent commit can tear
        finally:
            dst.close()
    finally:
        src.close()


def backup(*, url: str, data_dir: Path, audit_key_file: Path, target: Path, with_key: bool = True) -> Summary:
    """Write a backup of the store at ``url`` (with ``data_dir`` and, unless not ``with_key``, the
    audit key) to ``target``, a new or empty folder; written beside it under a temporary name and
    renamed when complete."""
    db = sqlite_path(url)
    if db is None:
        raise _pg_refusal(url) if url.startswith("postgresql") else BackupError(f"cannot back up the store {url}")
    if not db.is_file():
        raise BackupError(f"{db}: no database here ([store] url / data_dir): nothing to back up")
    if not audit_key_file.is_file():
        raise BackupError(f"{audit_key_file}: the audit key is missing ([store] audit_key_file)")
    _empty_or_new(target, "a backup")
    target = target.resolve()
    work = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700, parents=True)
    try:
        if with_key:
            shutil.copy2(audit_key_file, work / KEY)
        head = audit_key_file.with_name(audit_key_file.name + ".head")
        if head.is_file():  # before the snapshot: see the module's docstring
            shutil.copy2(head, work / HEAD)
        _snapshot(db, work / DATABASE)
        files = sum(_copy_tree(data_dir / folder, work / FILES / folder)
                    for folder in FOLDERS if (data_dir / folder).is_dir())
        size = (work / DATABASE).stat().st_size
        (work / MANIFEST).write_text(json.dumps({
            "format": FORMAT, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "database": "sqlite", "database_bytes": size, "files": files, "folders": list(FOLDERS), "key": with_key,
        }, indent=2) + "\n")
        for path in (work / DATABASE, work / MANIFEST, work):
            fsync_path(path)
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Summary(target, size, files)


def read_manifest(source: Path) -> dict[str, object]:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source}: no {MANIFEST}: not a mailwarden backup (or one cut short)") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source / MANIFEST}: cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST}: not a {FORMAT!r} backup")
    for name in (DATABASE, KEY) if manifest.get("key", True) else (DATABASE,):
        if not (source / name).is_file():
            raise BackupError(f"{source}: {name} is missing: the backup is incomplete")
    return manifest


def restore(*, url: str, data_dir: Path, audit_key_file: Path, source: Path, force: bool = False) -> Summary:
    """Put the backup in ``source`` back: the database at ``url``, the files in ``data_dir``, the
    key at ``audit_key_file``.  Refuses a data directory that holds anything but an empty store's
    scratch files, or an existing key, unless ``force`` (then the backup's replace them).  A
    backup made without the key needs the key in place already (it is kept, and checks the chain)."""
    db = sqlite_path(url)
    if db is None:
        raise _pg_refusal(url) if url.startswith("postgresql") else BackupError(f"cannot restore into {url}")
    has_key = bool(read_manifest(source).get("key", True))
    if not has_key and not audit_key_file.is_file():
        raise BackupError(f"{source} holds no audit key (backup --without-key): put the key kept apart at "
                          f"{audit_key_file} ([store] audit_key_file) first")
    if not force:
        present = sorted(p.name for p in data_dir.iterdir()
                         if p.name not in SCRATCH and (has_key or p != audit_key_file)) if data_dir.is_dir() else []
        if present or db.exists() or (has_key and audit_key_file.exists()):
            found = ", ".join(present[:5]) or str(db if db.exists() else audit_key_file)
            raise BackupError(f"{data_dir} is not empty ({found}): restore into an empty data directory, or give "
                              "--force to replace what is there with the backup")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _refuse_running(data_dir)
    db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.restore-{os.getpid()}")
    shutil.copyfile(source / DATABASE, tmp)
    os.chmod(tmp, 0o600)
    for stale in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)  # a WAL of the database replaced would be applied to the restored one
    os.replace(tmp, db)
    audit_key_file.parent.mkdir(parents=True, exist_ok=True)
    keys = ((KEY, audit_key_file),) if has_key else ()
    for name, dst in (*keys, (HEAD, audit_key_file.with_name(audit_key_file.name + ".head"))):
        if (source / name).is_file():
            shutil.copyfile(source / name, dst)
            os.chmod(dst, 0o600)
        else:
            dst.unlink(missing_ok=True)
    files = _copy_tree(source / FILES, data_dir) if (source / FILES).is_dir() else 0
    return Summary(source, db.stat().st_size, files)


def _refuse_running(data_dir: Path) -> None:
    """A gateway delivering from this data directory holds ``delivery.lock``: never restore under it."""
    import fcntl  # noqa: PLC0415 - POSIX only, like the lock

    lock = data_dir / "delivery.lock"
    if not lock.exists():
        return
    fd = os.open(lock, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"a gateway is running on {data_dir} (it holds delivery.lock): stop it before "
                              "restoring") from None
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
