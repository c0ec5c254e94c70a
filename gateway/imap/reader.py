"""The IMAP server's reading side, sans-I/O: the client's bytes in, commands out.

:class:`CommandReader` knows no sockets.  :meth:`~CommandReader.feed` it what arrived and take
:meth:`~CommandReader.next_event` until it gives None (it needs more bytes).  It frames commands
(lines, and literals ``{n}``, ``{n+}``, ``~{n}`` between them) and hands each whole command to
:func:`~.parse.parse_command`.  The events are :mod:`.commands` values:

* a :class:`~.commands.Command`;
* :class:`~.commands.Continue` — a synchronising literal's header was read: answer ``+`` (the
  client then sends the bytes) or, when ``refused``, ``<tag> NO`` (the client sends nothing
  more of that command, and the reader has already dropped it);
* :class:`~.commands.Bad` — not a command; the reader has skipped all of it, literals included.
  ``fatal`` (a line past ``max_line``, a LITERAL+ past the limits whose bytes are on their way):
  answer and close, the reader gives nothing more;
* :class:`~.commands.Line` — after :meth:`~CommandReader.line_mode`, one raw line.

The events are the same however the bytes are cut into chunks, and a literal's bytes are
copied once, so a large APPEND costs time in proportion to its size.
"""

from __future__ import annotations

import re

from .commands import Bad, Continue, Event, Line
from .parse import ParseError, parse_command, tag_of

__all__ = ["CommandReader"]

_LITERAL_END = re.compile(rb"(~?)\{([0-9]+)(\+?)\}\Z")


class CommandReader:
    """Frames and parses one connection's commands (see the module docstring).

    ``max_line``: bytes of one line (between literals), CRLF not counted; ``max_literal``: bytes
    of one literal; ``max_command``: a command's lines and literals together.  ``utf8`` is set by
    the session once the client enabled UTF8=ACCEPT (RFC 6855): quoted strings may hold UTF-8.
    """

    def __init__(self, *, max_line: int = 65536, max_literal: int = 64 * 2**20,
                 max_command: int = 80 * 2**20) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_command = max_command
        self.utf8 = False
        self._buf = bytearray()
        self._scan = 0  # the buffer holds no LF before this offset
        self._parts: list[bytes] = []  # the command so far: line, literal, line, …
        self._tag: str | None = None
        self._size = 0
        self._literal: bytearray | None = None  # while a literal's bytes are read
        self._need = 0
        self._line_mode = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """A fatal :class:`~.commands.Bad` was given: nothing more is read."""
        return self._closed

    def pending(self) -> bool:
        """Bytes are buffered that no event has taken yet (after STARTTLS: sent in the clear
        before the handshake, and never to be read as if they came through TLS)."""
        return bool(self._buf) or self._literal is not None

    def feed(self, data: bytes) -> None:
        """Take bytes the client sent."""
        if self._closed or not data:
            return
        if self._literal is not None and not self._buf:
            # A literal's bytes go where they belong at once, never through the line buffer.
            n = min(self._need, len(data))
            self._literal += data[:n] if n < len(data) else data
            self._need -= n
            data = data[n:]
        self._buf += data

    def line_mode(self) -> None:
        """Make the next event one raw :class:`~.commands.Line` (an AUTHENTICATE response,
        IDLE's ``DONE``)."""
        self._line_mode = True

    def next_event(self) -> Event | None:
        """The next event, or None when more bytes are needed."""
        while not self._closed:
            if self._literal is not None:
                if self._need and self._buf:
                    n = min(self._need, len(self._buf))
                    with memoryview(self._buf) as view:
                        self._literal += view[:n]
                    del self._buf[:n]
                    self._need -= n
                if self._need:
                    return None
                self._parts.append(bytes(self._literal))
                self._literal = None
                continue
            end = self._buf.find(b"\n", self._scan)
            if end < 0:
                self._scan = len(self._buf)
                if len(self._buf) > self.max_line + 1:
                    return self._fatal(self._current_tag(), "line too long")
                return None
            line = bytes(self._buf[:end])
            del self._buf[:end + 1]
            self._scan = 0
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_line:
                return self._fatal(self._current_tag(line), "line too long")
            if self._line_mode:
                self._line_mode = False
                return Line(line)
            if not self._parts and not line:
                continue  # empty lines between commands are let pass (some clients send them)
            event = self._line(line)
            if event is not None:
                return event
        return None

    def _current_tag(self, line: bytes | None = None) -> str | None:
        if self._parts:
            return self._tag
        return tag_of(bytes(self._buf[:200]) if line is None else line)

    def _fatal(self, tag: str | None, text: str) -> Bad:
        self._closed = True
        self._buf.clear()
        self._parts = []
        self._literal = None
        return Bad(tag, text, fatal=True)

    def _line(self, line: bytes) -> Event | None:
        if not self._parts:
            self._tag = tag_of(line)
            self._size = 0
        tag = self._tag
        self._size += len(line) + 2
        m = _LITERAL_END.search(line)
        if m is None:
            parts, self._parts = self._parts + [line], []
            if self._size > self.max_command:
                return Bad(tag, f"command longer than {self.max_command} bytes")
            try:
                return parse_command(parts, utf8=self.utf8)
            except ParseError as e:
                return Bad(tag, str(e))
        digits = m.group(2)
        size = int(digits) if len(digits) <= 20 else 10**20
        sync = not m.group(3)
        if size > self.max_literal or self._size + size > self.max_command:
            self._parts = []
            if size > self.max_literal:
                text = f"literal of {size} bytes is larger than the limit of {self.max_literal}"
            else:
                text = f"command of {self._size + size} bytes with its literals is larger than the limit of " \
                       f"{self.max_command}"
            if sync:
                return Continue(size, refused=text, tag=tag)
            return self._fatal(tag, text)  # its bytes are on their way and cannot be told from commands
        self._parts.append(line)
        self._size += size
        self._literal = bytearray()
        self._need = size
        return Continue(size, tag=tag) if sync else None
