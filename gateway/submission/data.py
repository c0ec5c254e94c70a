"""The body of an SMTP DATA command, read sans-I/O: bytes in, message out.

Reading DATA one line at a time into a list of small buffers and joining them
costs CPU on every line and holds a large message about four times over (what
aiosmtpd did).  :class:`DataReader` takes whatever chunks the socket delivers, finds the
``<CRLF>.<CRLF>`` terminator with ``bytes.find``, checks the size and line-length
limits as it goes, and appends them to an ``io.BytesIO``, whose buffer grows in
place (a large one is remapped, not copied, and given back whole when freed:
thousands of small chunks would leave the heap holding the message's size after
they are gone) and *is* the ``bytes`` that ``getvalue()`` returns: the message is
never copied, so a large one is held once.  The dot-stuffing (RFC 5321 4.5.2) is
undone in a single ``replace``, only when a line starts with a dot.
"""

from __future__ import annotations

import io

TERMINATOR = b"\r\n.\r\n"


def has_run_without_lf(data: bytes, start: int, n: int) -> bool:
    """Whether ``data[start:]`` holds ``n`` bytes in a row none of which is LF.

    What ``re.search(b"[^\\n]{n}", data, start)`` says, in one ``find`` and
    ``rfind`` per ``n`` bytes instead of a scan from every position (that regex
    took most of the CPU time of receiving a large message)."""
    end = len(data)
    tail = 0  # bytes without LF at the end of what was looked at so far
    pos = start
    while pos < end:
        stop = min(pos + n, end)
        first = data.find(b"\n", pos, stop)
        if first < 0:
            tail += stop - pos
            if tail >= n:
                return True
        else:
            if tail + first - pos >= n:
                return True
            tail = stop - data.rfind(b"\n", pos, stop) - 1
        pos = stop
    return False


class DataReader:
    """Feed chunks; once :attr:`done`, read :meth:`message` or :attr:`problem`.

    ``size_limit``: refuse a message larger than this many bytes.
    ``line_limit``: refuse a line longer than this many characters before its CRLF.
    """

    def __init__(self, *, size_limit: int | None, line_limit: int = 999) -> None:
        self.size_limit = size_limit
        self.line_limit = line_limit
        self._too_long_run = line_limit + 2  # text + CR + one more
        self._buf = io.BytesIO()
        self._size = 0             # bytes in _buf (asking the BytesIO would pin its buffer)
        self._received = 0         # bytes fed so far (the stream position)
        self._tail = b"\r\n"       # the stream's last bytes; starts as a virtual CRLF so "." alone ends it
        self._line = 0             # length of the unfinished line so far (without its LF)
        self.too_big = False
        self.too_long = False
        self.done = False
        self.leftover = b""        # bytes after the terminator (the client's next command)

    @property
    def problem(self) -> str | None:
        if self.too_big:
            return "too-big"
        if self.too_long:
            return "line-too-long"
        return None

    def feed(self, chunk: bytes) -> bool:
        """Take the next bytes; True once the terminator has been seen."""
        if self.done:
            self.leftover += chunk
            return True
        # Where the terminator begins in tail + chunk, without making that copy of the chunk: one
        # that begins in the tail ends within the chunk's first 4 bytes.
        tail = self._tail
        idx = (tail + chunk[:4]).find(TERMINATOR)
        if idx < 0:
            idx = chunk.find(TERMINATOR)
            if idx >= 0:
                idx += len(tail)
        if idx >= 0:
            end = self._received - len(tail) + idx + 2  # stream position after the body's last CRLF
            self.leftover = chunk[idx + len(TERMINATOR) - len(tail):]
            body_part = chunk[: max(0, end - self._received)]
            self._check_lines(body_part)
            self._store(body_part)
            self._trim(max(0, end))
            self.done = True
            return True
        self._check_lines(chunk)
        self._store(chunk)
        self._received += len(chunk)
        self._tail = chunk[-4:] if len(chunk) >= 4 else (tail + chunk)[-4:]
        return False

    def message(self) -> bytes:
        """The message, dot-stuffing undone.  Call once, when done and without a problem."""
        data = self._buf.getvalue()  # the buffer itself, not a copy, when nothing else holds a view of it
        self._buf = io.BytesIO()
        if b"\r\n.." in data:
            data = data.replace(b"\r\n..", b"\r\n.")
        if data.startswith(b".."):
            data = data[1:]
        return data

    def _store(self, part: bytes) -> None:
        if not part or self.too_big or self.too_long:
            return
        if self.size_limit is not None and self._size + len(part) > self.size_limit:
            self.too_big = True
            self._buf = io.BytesIO()  # keep reading to the terminator, but keep nothing
            return
        self._buf.write(part)
        self._size += len(part)

    def _trim(self, end: int) -> None:
        """Drop stored bytes past ``end`` (the terminator began in an earlier chunk)."""
        if end < self._size:
            self._buf.truncate(end)
            self._buf.seek(end)
            self._size = end

    def _check_lines(self, part: bytes) -> None:
        if self.too_long or not part:
            return
        first = part.find(b"\n")
        if first < 0:
            self._line += len(part)
        else:
            if self._line + first > self.line_limit + 1:
                self.too_long = True
            elif has_run_without_lf(part, first + 1, self._too_long_run):
                self.too_long = True
            self._line = len(part) - part.rfind(b"\n") - 1
        if self._line > self.line_limit + 1:
            self.too_long = True
