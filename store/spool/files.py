"""The spool's files: a message's bytes, written durably before its row is committed.

:func:`write_blob` writes, fsyncs, renames and (unless the caller batches it) fsyncs the
folder.  A file without a row (a crash between the two) is swept by :func:`sweep_orphans`;
a message the upstream took is filed under ``messages/YYYY/MM`` by :func:`file_sent`.

A message's SHA-256 is taken while it is written and kept in its row; :func:`damage` compares
the file with it before the file is sent, so a spool file emptied, replaced or deleted after
the 250 is never delivered as it is now.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select

from ..models import SpoolItem, utcnow
from ..blobs import fsync_path as _fsync_dir

RETRY_MARK = ".retry-"  # in the name of an item split off to retry some recipients


def write_blob(spool_dir: Path, chunks: Sequence[bytes | memoryview], *, sync_dir: bool = True) -> tuple[str, int]:
    """Durably write the chunks to a new file in ``spool_dir``; returns its name and size.

    With ``sync_dir=False`` the caller must fsync the folder (:func:`sync_dirs`)
    before committing the rows that name the file — the gateway does that once
    per group commit instead of once per message."""
    name, size, _digest = _write(spool_dir, chunks, sync_dir=sync_dir)
    return name, size


def _write(spool_dir: Path, chunks: Sequence[bytes | memoryview], *, sync_dir: bool,
           digest: bool = False) -> tuple[str, int, str | None]:
    """:func:`write_blob`, and the SHA-256 (hex) of what was written when ``digest``."""
    name = f"{utcnow():%Y%m%d%H%M%S}-{uuid.uuid4().hex}.eml"
    tmp = spool_dir / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    sha = hashlib.sha256() if digest else None
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            size += len(view)
            if sha is not None:
                sha.update(view)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, spool_dir / name)
    if sync_dir:
        _fsync_dir(spool_dir)
    return name, size, sha.hexdigest() if sha is not None else None


DIGEST_INLINE = 1 << 20  # files up to this size are checked on the caller's thread (microseconds)


def damage(path: Path, digest: str | None) -> str | None:
    """What is wrong with a spool file, compared with the ``digest`` recorded when it was
    accepted (None: the row predates digests, nothing to compare); None when it is intact."""
    if digest is None:
        return None
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            size = 0
            while piece := f.read(1 << 20):
                size += len(piece)
                sha.update(piece)
    except FileNotFoundError:
        return "the spool file is missing (deleted after the message was accepted)"
    except OSError as exc:
        return f"the spool file cannot be read: {exc.strerror or exc}"
    if sha.hexdigest() == digest:
        return None
    if size == 0:
        return "the spool file was emptied after the message was accepted"
    return f"the spool file was altered after the message was accepted ({size} bytes, SHA-256 {sha.hexdigest()[:16]}… " \
           f"where {digest[:16]}… was recorded)"


def needs_thread(path: Path) -> bool:
    """Whether checking ``path`` (:func:`damage`) is worth a thread: a large file."""
    try:
        return path.stat().st_size > DIGEST_INLINE
    except OSError:
        return False


def link_twin(spool_dir: Path, blob: str) -> str:
    """A second name for a spool file (a hard link), for an item split off to retry some of
    its recipients: each item files its own name.  The caller makes the name durable
    (:func:`sync_dirs`) before committing the row that names it."""
    twin = f"{blob[:-4]}{RETRY_MARK}{uuid.uuid4().hex[:8]}.eml"
    os.link(spool_dir / blob, spool_dir / twin)
    return twin


def is_retry_twin(blob: str) -> bool:
    """The item retries some of a message's recipients: the first delivery filed its Sent copy."""
    return RETRY_MARK in blob


@dataclass
class Blobs:
    """The files of one accepted message, written before its rows are committed."""

    message: str
    size: int
    notices: list[str]
    written: list[Path]
    original: str | None = None  # file name under originals/ (the message before redaction)
    digest: str | None = None  # SHA-256 (hex) of the message file, checked before it is sent

    def discard(self) -> None:
        """Remove the files again (the commit failed: nothing may be left half-written)."""
        for p in self.written:
            p.unlink(missing_ok=True)


def originals_dir(spool_dir: Path) -> Path:
    """Where the message before a redaction is kept (admins only)."""
    return spool_dir.parent / "originals"


def archive_dir(spool_dir: Path) -> Path:
    """Where the bytes of the messages the upstream took are filed."""
    return spool_dir.parent / "messages"


def sync_dirs(*dirs: Path) -> None:
    """Make the names of files written with ``sync_dir=False`` durable."""
    for d in dirs:
        if d.exists():
            _fsync_dir(d)


def write_blobs(spool_dir: Path, chunks: Sequence[bytes | memoryview], notices: Sequence[bytes] = (),
                original: bytes | None = None, *, sync_dir: bool = True) -> Blobs:
    """Durably write a message, its notices and (when redacted) its original."""
    name, size, digest = _write(spool_dir, chunks, sync_dir=sync_dir, digest=True)
    blobs = Blobs(name, size, [], [spool_dir / name], digest=digest)
    try:
        for n in notices:
            blobs.notices.append(write_blob(spool_dir, [n], sync_dir=sync_dir)[0])
            blobs.written.append(spool_dir / blobs.notices[-1])
        if original is not None:
            kept = originals_dir(spool_dir)
            kept.mkdir(mode=0o700, exist_ok=True)
            blobs.original = write_blob(kept, [original], sync_dir=sync_dir)[0]
            blobs.written.append(kept / blobs.original)
    except BaseException:
        blobs.discard()
        raise
    return blobs


def file_sent(spool_dir: Path, blob: str) -> None:
    """Keep the message as sent under messages/YYYY/MM (a rename; gone already is fine: a
    retry of some recipients, or a record made twice)."""
    # Runs on the delivery loop for every message: plain os calls, and the rename first (the
    # month's folder exists for all but its first message), not a mkdir that fails each time.
    src = os.path.join(spool_dir, blob)
    dest_dir = os.path.join(archive_dir(spool_dir), blob[:4], blob[4:6])
    try:
        os.replace(src, os.path.join(dest_dir, blob))
        return
    except FileNotFoundError:
        if not os.path.exists(src):
            return
    os.makedirs(dest_dir, exist_ok=True)
    try:
        os.replace(src, os.path.join(dest_dir, blob))
    except FileNotFoundError:
        pass


def sweep_orphans(*, session: Session, spool_dir: Path, older_than: timedelta = timedelta(hours=1)) -> int:
    """Remove spool files no row refers to (left by a crash between write and commit)."""
    known = set(session.exec(select(SpoolItem.blob)).all())
    cutoff = (utcnow() - older_than).timestamp()
    removed = 0
    for p in spool_dir.iterdir():
        if p.name.endswith(".eml") and p.name not in known and p.stat().st_mtime < cutoff:
            p.unlink(missing_ok=True)
            removed += 1
        elif p.name.startswith(".") and p.name.endswith(".tmp") and p.stat().st_mtime < cutoff:
            p.unlink(missing_ok=True)
    return removed
