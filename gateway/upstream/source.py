"""What the upstream clients send and how they fail: a message as a :class:`Source`, streamed
from its spool file in pieces of :data:`CHUNK` bytes (a large message is never held whole), and
the two kinds of failure every upstream call raises.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO


class TemporaryFailure(Exception):
    """Try again later (4xx, connection trouble, timeouts)."""


class PermanentFailure(Exception):
    """Give up and bounce (5xx)."""


CHUNK = 512 * 1024  # bytes read from a spool file, stuffed and written at a time
INLINE_READ = 64 * 1024  # a spool file up to this size is read on the event loop


class Source:
    """The bytes of one message to send: ``head`` (in memory: tag headers, a small
    message) followed by the spool file at ``path``, if any.

    :meth:`open` opens the file (raising ``OSError`` when it is gone) and learns the
    size; :meth:`chunks` yields the bytes in pieces of about :data:`CHUNK`, from the
    start on every call (for a second attempt).  :meth:`close` when done.
    """

    def __init__(self, head: bytes = b"", path: Path | None = None) -> None:
        self.head, self.path = head, path
        self.size = len(head)
        self._file: IO[bytes] | None = None
        self._first = b""  # the file's first piece, read with the opening (one thread hop for a small message)

    async def open(self) -> None:
        if self.path is not None and self._file is None:
            # A small file (nearly every message) is read on the spot: a thread hop costs more
            # than opening and reading 64 KB a moment after it was written.  Larger ones in a thread.
            self._file, self._first, size = _open_spool(self.path, min(INLINE_READ, CHUNK))
            if len(self._first) < min(size, CHUNK):
                self._first = await asyncio.to_thread(os.pread, self._file.fileno(), min(CHUNK, size), 0)
            self.size = len(self.head) + size

    async def chunks(self) -> AsyncIterator[bytes]:
        await self.open()
        if self._file is None:
            if self.head:
                yield self.head
            return
        fd, size, pos = self._file.fileno(), self.size - len(self.head), len(self._first)
        yield self.head + self._first if self.head else self._first
        while pos < size:
            piece = await asyncio.to_thread(os.pread, fd, min(CHUNK, size - pos), pos)
            if not piece:
                raise OSError(f"spool file {self.path} shrank while being sent")
            pos += len(piece)
            yield piece

    def close(self) -> None:
        f, self._file, self._first = self._file, None, b""
        if f is not None:
            f.close()


def _open_spool(path: Path, first: int) -> tuple[IO[bytes], bytes, int]:
    f = path.open("rb")
    try:
        size = os.fstat(f.fileno()).st_size
        return f, os.pread(f.fileno(), min(first, size), 0), size
    except BaseException:
        f.close()
        raise
