"""An IMAP server's responses, read sans-I/O: bytes in, events (:mod:`.imapwire`) out.

:class:`ResponseParser` takes whatever pieces the socket delivers (:meth:`~ResponseParser.feed`)
and hands back whole responses (:meth:`~ResponseParser.next_event`, or :data:`NEED_DATA`).  A
response is its lines, each but the last ending in a literal's announcement (``{n}``, ``{n+}``,
``~{n}``) followed by that many bytes, which may span any number of pieces.  Every size is
bounded: a longer line, a larger literal or response, or a deeper list raises
:exc:`~.imapwire.ProtocolError` instead of growing (Dovecot's own parser does the same).
The grammar (RFC 3501 section 9, with ESEARCH and VANISHED) is in :class:`_Reader`.
"""

from __future__ import annotations

import re
from enum import Enum

from mailwarden.gateway.upstream.imapwire import (
    Capability, Code, Continuation, Data, ESearch, Event, Exists, Expunge, Fetch, Flags, ListItem,
    ProtocolError, Recent, Search, Status, Untagged, Value, Vanished, parse_set)

MAX_LINE = 64 * 1024  # one line of a response, literals not counted
MAX_LITERAL = 64 * 1024 * 1024  # one literal (a message body the sync fetches)
MAX_RESPONSE = 2 * MAX_LITERAL  # all of one response (a FETCH with several literals)
MAX_DEPTH = 32  # nested parenthesised lists (BODYSTRUCTURE goes a few deep)


class NeedData(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = NeedData.NEED_DATA
"""What :meth:`ResponseParser.next_event` returns while a response is incomplete."""

_LITERAL_END = re.compile(rb"~?\{(\d{1,20})\+?\}\Z")


class ResponseParser:
    """Feed the server's bytes; take whole responses with :meth:`next_event`.

    After a :exc:`~.imapwire.ProtocolError` the parser is spent: close the connection.
    """

    def __init__(self, *, max_line: int = MAX_LINE, max_literal: int = MAX_LITERAL,
                 max_response: int = MAX_RESPONSE, max_depth: int = MAX_DEPTH) -> None:
        self.max_line, self.max_literal = max_line, max_literal
        self.max_response, self.max_depth = max_response, max_depth
        self._buf = bytearray()
        self._lines: list[bytes] = []  # the response's lines so far, each announcing a literal
        self._literals: list[bytes] = []
        self._need: int | None = None  # size of the literal being read
        self._size = 0  # bytes of the response so far

    @property
    def pending(self) -> int:
        """Bytes received that are not yet part of an event (none may follow STARTTLS's OK)."""
        return len(self._buf) + self._size

    def feed(self, data: bytes) -> None:
        """Take the next bytes the server sent."""
        self._buf += data

    def next_event(self) -> Event | NeedData:
        """The next whole response, or :data:`NEED_DATA`."""
        buf = self._buf
        while True:
            if self._need is not None:
                if len(buf) < self._need:
                    return NEED_DATA
                with memoryview(buf) as view:  # one copy, not two
                    self._literals.append(bytes(view[:self._need]))
                del buf[:self._need]
                self._need = None
            end = buf.find(b"\n", 0, self.max_line + 2)
            if end < 0:
                if len(buf) > self.max_line + 1:
                    raise ProtocolError(f"response line longer than {self.max_line} bytes")
                return NEED_DATA
            line = bytes(buf[:end - 1 if end and buf[end - 1] == 0x0D else end])
            del buf[:end + 1]
            if len(line) > self.max_line:
                raise ProtocolError(f"response line longer than {self.max_line} bytes")
            self._size += len(line) + 2
            m = _LITERAL_END.search(line)
            if m:
                size = int(m.group(1))
                if size > self.max_literal:
                    raise ProtocolError(f"literal of {size} bytes is over the limit of {self.max_literal}")
                self._size += size
                if self._size > self.max_response:
                    raise ProtocolError(f"response larger than {self.max_response} bytes")
                self._lines.append(line[:m.start()] + b"{}")  # the literal's place, for the reader
                self._need = size
                continue
            lines, literals = self._lines + [line], self._literals
            self._lines, self._literals, self._size = [], [], 0
            return _Reader(lines, literals, self.max_depth).response()


_ATOM_RUN = re.compile(rb'[^\x00-\x20(){"\]\[\x7f]*')  # up to a special, or a section's "["
_STATUS = frozenset({"OK", "NO", "BAD", "PREAUTH", "BYE"})


class _Reader:
    """The grammar over one response: ``lines[i]`` ends with ``{}`` where ``literals[i]`` goes."""

    def __init__(self, lines: list[bytes], literals: list[bytes], max_depth: int) -> None:
        self.lines, self.literals, self.max_depth = lines, literals, max_depth
        self.k = 0  # the line being read
        self.line = lines[0]
        self.pos = 0

    # -- tokens --
    def peek(self) -> int | None:
        return self.line[self.pos] if self.pos < len(self.line) else None

    def at_end(self) -> bool:
        return self.pos >= len(self.line) and self.k == len(self.lines) - 1

    def fail(self, what: str) -> ProtocolError:
        return ProtocolError(f"{what} at byte {self.pos} of {self.line[:200]!r}")

    def space(self) -> None:
        if self.peek() != 0x20:
            raise self.fail("expected a space")
        while self.peek() == 0x20:  # be lenient: some servers double them
            self.pos += 1

    def atom(self) -> str:
        line, start = self.line, self.pos
        while True:
            self.pos = _ATOM_RUN.match(line, self.pos).end()  # type: ignore[union-attr]  # matches empty
            if line[self.pos:self.pos + 1] != b"[":
                break
            close = line.find(b"]", self.pos)  # a section (BODY[HEADER.FIELDS (TO)]) runs to its "]"
            if close < 0:
                raise self.fail("unclosed [")
            self.pos = close + 1
        if self.pos == start:
            raise self.fail("expected an atom")
        return line[start:self.pos].decode("utf-8", "replace")  # 8-bit only from UTF8=ACCEPT servers

    def quoted(self) -> bytes:
        line, out = self.line, bytearray()
        self.pos += 1
        while True:
            end = line.find(b'"', self.pos)
            esc = line.find(b"\\", self.pos, end if end >= 0 else len(line))
            if esc >= 0:
                if esc + 1 >= len(line):
                    raise self.fail("unterminated quoted string")
                out += line[self.pos:esc] + line[esc + 1:esc + 2]
                self.pos = esc + 2
                continue
            if end < 0:
                raise self.fail("unterminated quoted string")
            out += line[self.pos:end]
            self.pos = end + 1
            return bytes(out)

    def literal(self) -> bytes:
        if self.line[self.pos:] != b"{}" or self.k >= len(self.literals):
            raise self.fail("a literal's announcement must end the line")
        data = self.literals[self.k]
        self.k += 1
        self.line, self.pos = self.lines[self.k], 0
        return data

    def value(self, depth: int = 0) -> Value:
        c = self.peek()
        if c == 0x28:  # (
            if depth >= self.max_depth:
                raise self.fail(f"lists nested deeper than {self.max_depth}")
            self.pos += 1
            items: list[Value] = []
            while self.peek() != 0x29:
                if items:
                    self.space()
                    if self.peek() == 0x29:
                        break
                items.append(self.value(depth + 1))
            self.pos += 1
            return tuple(items)
        if c == 0x22:  # "
            return self.quoted()
        if c == 0x7B:  # where the framing took a literal out ({n}, {n+}, ~{n})
            return self.literal()
        if c is None:
            raise self.fail("expected a value")
        atom = self.atom()
        if atom.isdigit():
            return int(atom)
        return None if atom.upper() == "NIL" else atom

    def values(self) -> tuple[Value, ...]:
        """Values separated by spaces, to the end of the response."""
        out: list[Value] = []
        while not self.at_end():
            self.space()
            if self.at_end():
                break
            out.append(self.value())
        return tuple(out)

    def text(self) -> str:
        """The rest of the line, as text (what follows a status and its code)."""
        if self.peek() == 0x20:
            self.pos += 1
        text = self.line[self.pos:].decode("utf-8", "replace")
        self.pos = len(self.line)
        return text

    # -- responses --
    def response(self) -> Event:
        if self.line[:1] == b"+":
            self.pos = 1
            return Continuation(self.text())
        if self.line[:2] == b"* ":
            self.pos = 2
            return self.untagged()
        tag = self.atom()
        self.space()
        status = self.atom().upper()
        if status not in ("OK", "NO", "BAD"):
            raise self.fail(f"tagged response {status!r}")
        return self.status(tag, status)

    def status(self, tag: str | None, status: str) -> Status:
        code = None
        if self.peek() == 0x20 and self.line[self.pos + 1:self.pos + 2] == b"[":
            self.pos += 2
            code = self.code()
        return Status(tag, status, code, self.text())

    def code(self) -> Code:
        start = self.pos
        name = self.atom().upper()
        args: tuple[Value, ...] = ()
        try:
            items: list[Value] = []
            while self.peek() == 0x20:
                self.space()
                items.append(self.value())
            if self.peek() != 0x5D:
                raise self.fail("expected ]")
            args = tuple(items)
        except ProtocolError:  # a code of free text ([ALERT] is fine; some servers are not): keep it raw
            close = self.line.find(b"]", start)
            if close < 0:
                raise self.fail("unclosed response code") from None
            self.pos = close
        raw = self.line[start:self.pos].decode("utf-8", "replace")
        self.pos += 1
        return Code(name, args, raw)

    def untagged(self) -> Untagged | Status:
        first = self.atom()
        if first.isdigit():
            number = int(first)
            self.space()
            name = self.atom().upper()
            if name == "EXISTS":
                return Exists(number)
            if name == "RECENT":
                return Recent(number)
            if name == "EXPUNGE":
                return Expunge(number)
            if name == "FETCH":
                self.space()
                pairs = self.value()
                if not isinstance(pairs, tuple) or len(pairs) % 2:
                    raise self.fail("FETCH wants a list of name value pairs")
                return Fetch(number, {str(pairs[i]).upper(): pairs[i + 1] for i in range(0, len(pairs), 2)})
            return Data(name, number, self.values())
        name = first.upper()
        if name in _STATUS:
            return self.status(None, name)
        if name == "CAPABILITY":
            return Capability(frozenset(str(v).upper() for v in self.values()))
        if name == "FLAGS":
            self.space()
            flags = self.value()
            return Flags(tuple(str(f) for f in flags) if isinstance(flags, tuple) else ())
        if name == "SEARCH":
            return self.search()
        if name == "ESEARCH":
            return self.esearch()
        if name == "VANISHED":
            self.space()
            earlier = self.peek() == 0x28
            if earlier:
                modifier = self.value()
                if not (isinstance(modifier, tuple) and [str(m).upper() for m in modifier] == ["EARLIER"]):
                    raise self.fail("VANISHED wants (EARLIER)")
                self.space()
            return Vanished(earlier, parse_set(self.value()))
        if name in ("LIST", "LSUB", "XLIST"):  # XLIST: old Gmail, QQ Mail
            return self.list_item(name)
        return Data(name, None, self.values())

    def list_item(self, name: str) -> ListItem:
        self.space()
        flags = self.value()
        self.space()
        delimiter = self.value()
        self.space()
        mailbox = self.value()
        if not isinstance(flags, tuple) or not isinstance(delimiter, bytes | None) or not isinstance(mailbox, bytes | str):
            raise self.fail(f"malformed {name}")
        return ListItem(tuple(str(f) for f in flags), None if delimiter is None else delimiter.decode("ascii", "replace"),
                        mailbox.decode("utf-8", "replace") if isinstance(mailbox, bytes) else mailbox)

    def search(self) -> Search:
        numbers: list[int] = []
        modseq = None
        for v in self.values():
            if isinstance(v, int):
                numbers.append(v)
            elif isinstance(v, tuple) and len(v) == 2 and str(v[0]).upper() == "MODSEQ" and isinstance(v[1], int):
                modseq = v[1]  # RFC 7162: (MODSEQ n) ends it
            else:
                raise self.fail("SEARCH wants numbers")
        return Search(tuple(numbers), modseq)

    def esearch(self) -> ESearch:
        values = list(self.values())
        tag = None
        if values and isinstance(values[0], tuple):
            corr = values.pop(0)
            if len(corr) == 2 and str(corr[0]).upper() == "TAG" and isinstance(corr[1], bytes):
                tag = corr[1].decode("ascii", "replace")
        uid = bool(values) and str(values[0]).upper() == "UID"
        if uid:
            values.pop(0)
        if len(values) % 2:
            raise self.fail("ESEARCH wants name value pairs")
        return ESearch(tag, uid, {str(values[i]).upper(): values[i + 1] for i in range(0, len(values), 2)})
