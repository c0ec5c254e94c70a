"""Message bytes, content-addressed: a blob's name is the SHA-256 of its bytes.

The same bytes are stored once however often they arrive (a message in INBOX and in Gmail's
All Mail, an import run twice), and a name says what it holds, so a blob is never changed in
place.  :class:`FileBlobs` keeps them as files under ``<data_dir>/blobs/ab/cd/<sha256>``
(SQLite stores); :class:`DbBlobs` keeps them in the ``blob_chunks`` table in pieces of
:data:`PIECE` bytes (PostgreSQL stores, shared by several gateways).  Both write a blob whole
before its name is used, so a crash leaves at most an unused blob (harmless: the next import of
the same bytes finds it), never a row that names a half-written one.

Reading: :meth:`read` gives the whole blob, :meth:`read_range` a slice (an IMAP partial FETCH
of a large message reads only what it sends).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

PIECE = 1024 * 1024  # bytes per row of blob_chunks


def name_of(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobMissing(LookupError):
    """No blob of that name (the store's files were moved or damaged)."""


class Blobs(Protocol):
    def put(self, data: bytes, name: str | None = None) -> str: ...
    def read(self, name: str) -> bytes: ...
    def read_range(self, name: str, start: int, end: int) -> bytes: ...
    def exists(self, name: str) -> bool: ...
    def sync(self) -> None: ...


def _check(name: str) -> str:
    if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
        raise ValueError(f"not a blob name: {name!r}")
    return name


def _syncfs() -> object:
    """Linux's syncfs(2): one call makes every file written on a filesystem durable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _syncfs()


class FileBlobs:
    """Blobs as files, written to a temporary name and renamed into place.

    :meth:`sync` makes the blobs written since the last call durable, files and names: call it
    before committing rows that name them.  On Linux that is one ``syncfs`` of the store's
    filesystem for a whole batch of blobs; elsewhere each file and folder is flushed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirty: set[Path] = set()  # files written and not yet made durable

    def path(self, name: str) -> Path:
        _check(name)
        return self.root / name[:2] / name[2:4] / name

    def put(self, data: bytes, name: str | None = None) -> str:
        """Store ``data`` (``name``: its :func:`name_of`, when the caller has it already)."""
        name = name or name_of(data)
        path = self.path(name)
        try:
            if path.stat().st_size == len(data):  # there already (a file cut short by a crash is written again)
                return name
        except FileNotFoundError:
            pass
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if _SYNCFS is None:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._dirty.add(path)
        return name

    def sync(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        if _SYNCFS is not None:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if _SYNCFS(fd) == 0:  # type: ignore[operator]
                    return
            finally:
                os.close(fd)
            for path in dirty:  # syncfs failed: one file at a time
                fsync_path(path)
        for d in {p.parent for p in dirty} | {p.parent.parent for p in dirty} | {self.root}:
            fsync_path(d)

    def read(self, name: str) -> bytes:
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"blob {name} is missing from {self.root}") from None

    def read_range(self, name: str, start: int, end: int) -> bytes:
        try:
            with self.path(name).open("rb") as f:
                return os.pread(f.fileno(), max(0, end - start), start)
        except FileNotFoundError:
            raise BlobMissing(f"blob {name} is missing from {self.root}") from None

    def exists(self, name: str) -> bool:
        return self.path(name).exists()


def fsync_path(path: Path) -> None:
    """Flush a file or a folder (its entries: new names, renames) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DbBlobs:
    """Blobs in the database, in pieces of :data:`PIECE` bytes; each blob in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, data: bytes, name: str | None = None) -> str:
        name = name or name_of(data)
        if self.exists(name):
            return name
        view = memoryview(data)
        insert = text("INSERT INTO blob_chunks (sha256, seq, data) VALUES (:sha256, :seq, :data) ON CONFLICT DO NOTHING")
        with self.engine.begin() as conn:
            # A piece at a time (a large message is not copied whole); two gateways importing the
            # same message at once write the same bytes, and the second one's rows are skipped.
            for seq, off in enumerate(range(0, max(len(data), 1), PIECE)):
                conn.execute(insert, {"sha256": name, "seq": seq, "data": bytes(view[off:off + PIECE])})
        return name

    def sync(self) -> None:
        """Nothing to do: each :meth:`put` commits."""

    def read(self, name: str) -> bytes:
        with self.engine.connect() as conn:
            out, pieces = bytearray(), 0
            for piece in conn.execute(text("SELECT data FROM blob_chunks WHERE sha256 = :n ORDER BY seq"),
                                      {"n": _check(name)}).scalars():
                out += piece
                pieces += 1
        if not pieces:
            raise BlobMissing(f"blob {name} is missing from the database")
        return bytes(out)

    def read_range(self, name: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        first, last = start // PIECE, (end - 1) // PIECE
        with self.engine.connect() as conn:
            pieces = conn.execute(text("SELECT data FROM blob_chunks WHERE sha256 = :n AND seq BETWEEN :a AND :b "
                                       "ORDER BY seq"), {"n": _check(name), "a": first, "b": last}).scalars().all()
        if not pieces:
            raise BlobMissing(f"blob {name} is missing from the database")
        joined = b"".join(bytes(p) for p in pieces)
        return joined[start - first * PIECE:end - first * PIECE]

    def exists(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM blob_chunks WHERE sha256 = :n AND seq = 0"),
                                {"n": _check(name)}).first() is not None


def blobs_for(engine: Engine, data_dir: Path) -> Blobs:
    """Files beside a SQLite store; the database itself for any other (shared by gateways)."""
    if engine.dialect.name == "sqlite":
        return FileBlobs(data_dir / "blobs")
    return DbBlobs(engine)
