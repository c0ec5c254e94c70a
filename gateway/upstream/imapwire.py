"""The IMAP client's wire vocabulary, sans-I/O: the events a server's responses become, the
values inside them, and commands written as bytes.  :mod:`.imapresponse` turns bytes into
these events; :mod:`.imap` only moves bytes between them and a socket.

Events (frozen): the tagged or untagged :class:`Status` (with its response code, e.g.
``[TRYCREATE]``), :class:`Continuation` (``+``), and the untagged data the sync needs --
:class:`Capability`, :class:`Flags`, :class:`Exists`, :class:`Recent`, :class:`Expunge`,
:class:`Fetch`, :class:`Search`, :class:`ESearch`, :class:`Vanished`, :class:`ListItem`, and
:class:`Data` for anything else.

Values inside responses (:data:`Value`): numbers are ``int``, atoms (flags, names, sets) are
``str``, quoted strings and literals are ``bytes``, NIL is ``None``, lists are ``tuple``.

:func:`format_command` writes a command, each argument as an atom, a quoted string or a
literal; :func:`encode_mailbox` gives a mailbox name in modified UTF-7 (RFC 3501 5.1.3).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Mapping

Value = int | str | bytes | None | tuple["Value", ...]


class ProtocolError(Exception):
    """The server sent something that is not IMAP, or more than a limit allows: the
    connection cannot be trusted to be in step any more."""


@dataclass(frozen=True)
class Code:
    """A response code: ``[TRYCREATE]``, ``[PERMANENTFLAGS (\\Seen \\*)]``, ``[UIDNEXT 7]``..."""

    name: str  # upper case
    args: tuple[Value, ...] = ()
    raw: str = ""  # as the server wrote it, between the brackets


@dataclass(frozen=True)
class Status:
    """``tag OK|NO|BAD [code] text``; untagged (``tag`` None) also PREAUTH and BYE."""

    tag: str | None
    status: str  # upper case
    code: Code | None
    text: str

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def __str__(self) -> str:
        return (f"{self.status} [{self.code.raw}] {self.text}" if self.code else f"{self.status} {self.text}")[:300]


@dataclass(frozen=True)
class Continuation:
    """``+ text``: the server waits for the literal (or the next step of an exchange)."""

    text: str


@dataclass(frozen=True)
class Capability:
    names: frozenset[str]  # upper case


@dataclass(frozen=True)
class Flags:
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Exists:
    count: int


@dataclass(frozen=True)
class Recent:
    count: int


@dataclass(frozen=True)
class Expunge:
    seq: int


@dataclass(frozen=True)
class Fetch:
    """``* seq FETCH (name value ...)``; names upper case, e.g. ``UID``, ``FLAGS``, ``BODY[]``."""

    seq: int
    items: Mapping[str, Value]


@dataclass(frozen=True)
class Search:
    numbers: tuple[int, ...]
    modseq: int | None = None


@dataclass(frozen=True)
class ESearch:
    """RFC 4731: ``* ESEARCH (TAG "a1") UID COUNT 3 ALL 1:3``; result names upper case."""

    tag: str | None
    uid: bool
    results: Mapping[str, Value]


@dataclass(frozen=True)
class Vanished:
    """RFC 7162: UIDs expunged; ``earlier`` when they answer a FETCH (VANISHED), not news."""

    earlier: bool
    uids: tuple[tuple[int, int], ...]  # inclusive ranges


@dataclass(frozen=True)
class ListItem:
    """``* LIST (\\HasNoChildren) "/" name`` (and LSUB); the name as sent (modified UTF-7)."""

    flags: tuple[str, ...]
    delimiter: str | None
    name: str


@dataclass(frozen=True)
class Data:
    """Any other untagged response: ``* [number] NAME values...``."""

    name: str
    number: int | None
    values: tuple[Value, ...]


Untagged = Capability | Flags | Exists | Recent | Expunge | Fetch | Search | ESearch | Vanished | ListItem | Data
Event = Status | Continuation | Untagged

# -- commands -----------------------------------------------------------------------------


class Raw(str):
    """A command argument written as it is: a keyword (``HEADER``), a flag list, a set."""


@dataclass(frozen=True)
class Streamed:
    """A literal of ``size`` bytes that the caller writes itself once the server asks for it
    (a message streamed from its file): :func:`format_command` only announces it."""

    size: int


_ATOM = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~\[\]]+")  # ASTRING-CHAR without % * \ "
_QUOTABLE = re.compile(r"[\x20-\x7e]*")


Argument = str | bytes | int | Streamed


def argument(arg: Argument) -> tuple[bytes, bytes | None]:
    """How an argument goes on the wire: ``(text, None)``, or ``(b"{n}", literal)`` for bytes
    and for a string only a literal can carry (8-bit, CR, LF); ``(b"{n}", b"")`` for a
    :class:`Streamed` one."""
    if isinstance(arg, Streamed):
        return b"{%d}" % arg.size, b""
    if isinstance(arg, int):
        return str(arg).encode(), None
    if isinstance(arg, Raw):
        if "\r" in arg or "\n" in arg or "\0" in arg:
            raise ValueError("a raw IMAP argument cannot hold CR, LF or NUL")
        return arg.encode("ascii"), None
    if isinstance(arg, str):
        if _ATOM.fullmatch(arg) and arg.upper() != "NIL":
            return arg.encode("ascii"), None
        if _QUOTABLE.fullmatch(arg):
            return b'"' + arg.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"', None
        arg = arg.encode("utf-8")
    return b"{%d}" % len(arg), bytes(arg)


def format_command(tag: str, name: str, *args: Argument) -> list[bytes]:
    """``tag NAME args...`` in pieces: each piece but the last ends with a literal's
    announcement (``{n}`` CRLF) and the next starts with that literal, so that a client
    sends the next piece only once the server has asked for it (``+``)."""
    pieces: list[bytes] = []
    line = tag.encode("ascii") + b" " + name.encode("ascii")
    for arg in args:
        text, literal = argument(arg)
        line += b" " + text
        if literal is not None:
            pieces.append(line + b"\r\n")
            line = literal
    pieces.append(line + b"\r\n")
    return pieces


def encode_mailbox(name: str) -> str:
    """A mailbox name for the wire: modified UTF-7 when it has characters beyond ASCII; an
    ASCII name is taken to be written that way already (as a configuration names it)."""
    if name.isascii():
        return name
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            b64 = base64.b64encode("".join(run).encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
            out.append("&" + b64.decode("ascii") + "-")
            run.clear()

    for ch in name:
        if "\x20" <= ch <= "\x7e":
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode_mailbox(name: str) -> str:
    """The readable form of a modified UTF-7 mailbox name (as LIST gives it)."""
    def one(m: re.Match[str]) -> str:
        b64 = m.group(1)
        if not b64:
            return "&"
        b64 = b64.replace(",", "/")
        return base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be")
    try:
        return re.sub(r"&([A-Za-z0-9+,]*)-", one, name)
    except ValueError as exc:  # bad base64 or UTF-16
        raise ProtocolError(f"mailbox name {name!r} is not modified UTF-7") from exc


def parse_set(value: Value) -> tuple[tuple[int, int], ...]:
    """``2,10:12`` (a sequence or UID set, as an atom or a number) as inclusive ranges."""
    ranges = []
    try:
        for part in str(value).split(","):
            lo, _, hi = part.partition(":")
            a, b = int(lo), int(hi or lo)
            ranges.append((min(a, b), max(a, b)))
    except ValueError:
        raise ProtocolError(f"not a set of numbers: {value!r}") from None
    return tuple(ranges)
