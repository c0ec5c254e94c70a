"""The tokens of an IMAP client command (RFC 3501 section 9, RFC 9051): atoms, numbers,
quoted strings, literals, sequence sets, flags and dates, read from one command's parts.

A command arrives as *parts*: the line, then for each literal its bytes and the line that
follows it (``[line, literal, line, …, line]``); every line but the last ends with the
literal's header (``{5}``, ``{5+}``, ``~{5}``), as :class:`~.reader.CommandReader` splits them.
Everything wrong raises :class:`ParseError` with a sentence that names what was expected.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Final

from .commands import STAR, SequenceSet

__all__ = ["ParseError", "Tokens", "tag_of"]

MAX_NUMBER: Final = 2**32 - 1  # number, nz-number (RFC 3501 9)
MAX_MODSEQ: Final = 2**63 - 1  # mod-sequence-value (RFC 7162 7)
MAX_DEPTH: Final = 32  # parenthesised lists inside one another (search keys, ID)

_ATOM = re.compile(rb'[^(){ %*"\\\]\x00-\x1f\x7f-\xff]+')
_ASTRING_ATOM = re.compile(rb'[^(){ %*"\\\x00-\x1f\x7f-\xff]+')  # ATOM-CHAR / "]"
_LIST_ATOM = re.compile(rb'[^(){ "\\\x00-\x1f\x7f-\xff]+')  # list-char: also % * ]
_TAG = re.compile(rb'[^(){ %*"\\+\x00-\x1f\x7f-\xff]+')  # ASTRING-CHAR but "+"
_NUMBER = re.compile(rb"[0-9]+")
_QUOTED = re.compile(rb'"((?:[^"\\\x00]|\\["\\])*)"')
_QUOTED_ESCAPE = re.compile(rb'\\(["\\])')
_LITERAL = re.compile(rb"(~?)\{([0-9]+)(\+?)\}")
_SEQ_NUMBER = rb"(?:[0-9]+|\*)"
_SEQSET = re.compile(rb"\$|%s(?::%s)?(?:,%s(?::%s)?)*" % ((_SEQ_NUMBER,) * 4))
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME = re.compile(rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"')
_MONTHS: Final = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
SYSTEM_FLAGS: Final = {f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")}


class ParseError(ValueError):
    """The command cannot be read; the text is what the client is told after ``BAD``."""


def tag_of(line: bytes) -> str | None:
    """The tag that starts *line* when it is a valid one (no ``+``, no specials), else None."""
    m = _TAG.match(line)
    if m is None or (m.end() < len(line) and line[m.end()] != 0x20):
        return None
    return m.group().decode("ascii")


class Tokens:
    """A cursor over one command's parts; ``what`` prefixes every error (the command's name)."""

    def __init__(self, parts: list[bytes], *, utf8: bool = False) -> None:
        self.parts = parts
        self.utf8 = utf8
        self.what = "command"
        self._i = 0
        self.line = parts[0]
        self.pos = 0
        self.depth = 0

    # --- plumbing --------------------------------------------------------------------

    def fail(self, text: str) -> ParseError:
        return ParseError(f"{self.what}: {text}")

    def peek(self) -> int | None:
        """The next byte of the current line, None at its end (a literal or the command's end)."""
        return self.line[self.pos] if self.pos < len(self.line) else None

    def at_end(self) -> bool:
        return self.pos == len(self.line) and self._i == len(self.parts) - 1

    def end(self) -> None:
        """Nothing may follow."""
        if not self.at_end():
            raise self.fail(f"unexpected {self.shown()} after the arguments")

    def shown(self) -> str:
        """What comes next, for an error message."""
        rest = self.line[self.pos:self.pos + 20]
        if not rest:
            return "literal"
        return '"' + rest.decode("ascii", "replace") + ('…"' if len(self.line) > self.pos + 20 else '"')

    def sp(self) -> None:
        if self.peek() != 0x20:
            raise self.fail("expected a space" if self.peek() is not None or not self.at_end()
                            else "missing arguments")
        self.pos += 1

    def more(self) -> bool:
        """A space follows (and is taken): another argument comes."""
        if self.peek() == 0x20:
            self.pos += 1
            return True
        return False

    def take(self, char: bytes) -> bool:
        """Take *char* when it comes next."""
        if self.line[self.pos:self.pos + 1] == char:
            self.pos += 1
            return True
        return False

    def expect(self, char: bytes, what: str) -> None:
        if not self.take(char):
            raise self.fail(f"expected {what}")

    def _match(self, pattern: re.Pattern[bytes]) -> bytes | None:
        m = pattern.match(self.line, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        return m.group()

    def open(self) -> None:
        """Take ``(`` of a list that may nest."""
        self.expect(b"(", '"("')
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail("lists nested too deep")

    def close(self) -> None:
        self.expect(b")", '")"')
        self.depth -= 1

    # --- atoms and numbers -----------------------------------------------------------

    def atom(self, what: str = "an atom") -> bytes:
        value = self._match(_ATOM)
        if value is None:
            raise self.fail(f"expected {what}")
        return value

    def keyword(self, what: str) -> str:
        """An atom upper-cased, for names the protocol spells (commands, items, options)."""
        return self.atom(what).decode("ascii").upper()

    def number(self, what: str = "a number", *, nonzero: bool = False, limit: int = MAX_NUMBER) -> int:
        digits = self._match(_NUMBER)
        if digits is None:
            raise self.fail(f"expected {what}")
        value = int(digits) if len(digits) <= 20 else limit + 1
        if value > limit or (nonzero and value == 0):
            raise self.fail(f"{what} out of range: {digits[:24].decode()}")
        return value

    def modseq(self, *, zero: bool = False) -> int:
        return self.number("a mod-sequence", nonzero=not zero, limit=MAX_MODSEQ)

    # --- strings ---------------------------------------------------------------------

    def literal(self) -> tuple[bytes, bool]:
        """A literal's bytes and whether it was a literal8 (``~{n}``)."""
        m = _LITERAL.match(self.line, self.pos)
        if m is None:
            raise self.fail("expected a literal")
        if m.end() != len(self.line) or self._i + 1 >= len(self.parts):
            raise self.fail("a literal's header must end the line")
        data = self.parts[self._i + 1]
        self._i += 2
        self.line = self.parts[self._i]
        self.pos = 0
        return data, bool(m.group(1))

    def quoted(self) -> bytes:
        m = _QUOTED.match(self.line, self.pos)
        if m is None:
            raise self.fail("bad quoted string (unterminated, a NUL, or a backslash before other "
                            "than \\ or \")")
        value = _QUOTED_ESCAPE.sub(rb"\1", m.group(1))
        if not value.isascii():
            if not self.utf8:
                raise self.fail("8-bit characters in a quoted string (send a literal)")
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail("a quoted string that is not UTF-8") from None
        self.pos = m.end()
        return value

    def string(self, what: str = "a string") -> bytes:
        """A quoted string or a literal (not a literal8)."""
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            return self._plain_literal()
        raise self.fail(f"expected {what}")

    def _plain_literal(self) -> bytes:
        data, eight = self.literal()
        if eight:
            raise self.fail("literal8 (~{n}) is only for APPEND")
        return data

    def astring(self, what: str = "a string") -> bytes:
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B or self.line[self.pos:self.pos + 2] == b"~{":
            return self._plain_literal()
        value = self._match(_ASTRING_ATOM)
        if value is None:
            raise self.fail(f"expected {what}")
        return value

    def nil(self) -> bool:
        """NIL comes next (and is taken)."""
        if self.line[self.pos:self.pos + 3].upper() == b"NIL" and not _ASTRING_ATOM.match(self.line, self.pos + 3):
            self.pos += 3
            return True
        return False

    def nstring(self) -> bytes | None:
        return None if self.nil() else self.string("a string or NIL")

    def list_mailbox(self) -> bytes:
        """A LIST pattern: a string, or an atom that may hold ``%``, ``*`` and ``]``."""
        c = self.peek()
        if c == 0x22 or c == 0x7B or self.line[self.pos:self.pos + 2] == b"~{":
            return self.astring()
        value = self._match(_LIST_ATOM)
        if value is None:
            raise self.fail("expected a mailbox pattern")
        return value

    # --- sequence sets, flags, dates -------------------------------------------------

    def starts_sequence(self) -> bool:
        c = self.peek()
        return c is not None and (0x30 <= c <= 0x39 or c in (0x2A, 0x24))

    def sequence_set(self) -> SequenceSet:
        text = self._match(_SEQSET)
        if text is None:
            raise self.fail("expected a sequence set (such as 1:4,7 or 1:*)")
        if text == b"$":
            return SequenceSet((), saved=True)
        ranges = []
        for item in text.split(b","):
            low, _, high = item.partition(b":")
            a = self._seq_number(low)
            ranges.append((a, self._seq_number(high) if high else a))
        return SequenceSet(tuple(ranges))

    def _seq_number(self, text: bytes) -> int:
        if text == b"*":
            return STAR
        value = int(text) if len(text) <= 11 else 0
        if not 0 < value <= MAX_NUMBER:
            raise self.fail(f"sequence number out of range: {text[:24].decode()}")
        return value

    def flag(self) -> str:
        """``\\Seen`` (system flags in their usual case), ``\\Other``, or a keyword as sent."""
        backslash = self.take(b"\\")
        name = self._match(_ATOM)
        if name is None:
            raise self.fail("expected a flag")
        text = name.decode("ascii")
        if not backslash:
            return text
        if text.upper() == "RECENT":
            raise self.fail("\\Recent cannot be set by a client")
        return SYSTEM_FLAGS.get("\\" + text.upper(), "\\" + text)

    def flag_keyword(self) -> str:
        """A keyword (an atom; no backslash)."""
        return self.atom("a keyword").decode("ascii")

    def flag_list(self) -> tuple[str, ...]:
        self.expect(b"(", "a flag list")
        flags = []
        if not self.take(b")"):
            flags.append(self.flag())
            while self.more():
                flags.append(self.flag())
            self.expect(b")", '")" after the flags')
        return tuple(flags)

    def date(self) -> date:
        """``1-Feb-1994``, bare or quoted (SEARCH)."""
        quoted = self.take(b'"')
        m = _DATE.match(self.line, self.pos)
        if m is None or (quoted and self.line[m.end():m.end() + 1] != b'"'):
            raise self.fail("expected a date such as 1-Feb-1994")
        month = _MONTHS.get(m.group(2).upper().decode())
        try:
            if month is None:
                raise ValueError
            value = date(int(m.group(3)), month, int(m.group(1)))
        except ValueError:
            raise self.fail(f"not a date: {m.group().decode()}") from None
        self.pos = m.end() + quoted
        return value

    def date_time(self) -> datetime:
        """``"17-Jul-1996 02:44:25 -0700"`` (APPEND), as an aware datetime."""
        m = _DATE_TIME.match(self.line, self.pos)
        if m is None:
            raise self.fail('expected a date-time such as "17-Jul-1996 02:44:25 -0700"')
        day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
        month = _MONTHS.get(mon.upper().decode())
        try:
            if month is None or int(zm) > 59:
                raise ValueError
            offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == b"-" else 1)
            value = datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=timezone(offset))
        except ValueError:
            raise self.fail(f"not a date-time: {m.group().decode()}") from None
        self.pos = m.end()
        return value
