"""IMAP commands as values: what the command parser makes of a client's line and literals, and
what a session acts on.  No I/O and no policy here.

Names of mailboxes are kept as the client sent them (``bytes`` of an astring or list-mailbox):
a session canonicalises them (:mod:`.names`) before any access check, never the parser.
Strings a client searches for are ``bytes`` in the command's charset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Union

# --- sequence sets --------------------------------------------------------------------------

STAR = 0  # "*" in a sequence set: the largest number in use (resolved per mailbox)


@dataclass(frozen=True)
class SequenceSet:
    """``1:4,7,9:*`` as ranges ``(low, high)`` where either end may be :data:`STAR`; ``$`` (the
    saved search result, RFC 5182) is ``saved=True`` with no ranges."""

    ranges: tuple[tuple[int, int], ...]
    saved: bool = False

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """The ranges with ``*`` replaced by ``largest``, each ordered low ≤ high (``4:2`` is
        ``2:4``).  With ``largest`` 0 (an empty mailbox) ``*`` is 0, which matches nothing."""
        out = []
        for low, high in self.ranges:
            a = largest if low == STAR else low
            b = largest if high == STAR else high
            out.append((min(a, b), max(a, b)))
        return out

    def contains(self, number: int, largest: int) -> bool:
        return any(a <= number <= b for a, b in self.resolve(largest))


# --- SEARCH ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One search key.  ``name`` upper-case as RFC 3501 spells it (``ALL``, ``SEEN``, ``FROM``,
    ``HEADER``, ``SINCE``, ``LARGER``, ``UID``, ``KEYWORD`` …, plus ``SEQ`` for a bare sequence
    set and ``MODSEQ``, ``YOUNGER``/``OLDER``).  ``value``: bytes for strings, a
    :class:`datetime.date` for dates, int for sizes/modseq/seconds, :class:`SequenceSet` for
    ``UID``/``SEQ``, ``(field: str, needle: bytes)`` for ``HEADER``, ``str`` for keywords."""

    name: str
    value: object = None


@dataclass(frozen=True)
class And:
    keys: tuple[SearchKey, ...]


@dataclass(frozen=True)
class Or:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True)
class Not:
    key: SearchKey


SearchKey = Union[Key, And, Or, Not]


# --- FETCH ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """``BODY[1.2.HEADER.FIELDS (From To)]``: ``part`` (1, 2), ``text`` one of ``""``,
    ``HEADER``, ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT``, ``TEXT``, ``MIME``; ``fields``
    upper-cased for the two HEADER.FIELDS forms."""

    part: tuple[int, ...] = ()
    text: str = ""
    fields: tuple[str, ...] = ()

    def spec(self) -> str:
        """The section as :func:`.sections.locate` takes it (``"1.2.HEADER"``); HEADER.FIELDS
        locates the header it filters."""
        text = "HEADER" if self.text.startswith("HEADER") else self.text
        return ".".join([*(str(n) for n in self.part), *([text] if text else [])])

    def label(self) -> str:
        """As the response names it: ``1.2.HEADER.FIELDS (FROM TO)``."""
        out = ".".join([*(str(n) for n in self.part), *([self.text] if self.text else [])])
        if self.text.startswith("HEADER.FIELDS"):
            out += " (" + " ".join(self.fields) + ")"
        return out


@dataclass(frozen=True)
class FetchItem:
    """One fetch attribute.  ``name``: ``FLAGS``, ``UID``, ``INTERNALDATE``, ``RFC822.SIZE``,
    ``ENVELOPE``, ``BODYSTRUCTURE``, ``BODY`` (the non-extensible structure), ``BODY[]`` (any
    section: see ``section``), ``BINARY[]``, ``BINARY.SIZE``, ``RFC822``, ``RFC822.HEADER``,
    ``RFC822.TEXT``, ``MODSEQ``.  Macros (ALL, FAST, FULL) arrive expanded."""

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None  # <offset.count>
    peek: bool = False  # BODY.PEEK / BINARY.PEEK: does not set \\Seen

    def label(self) -> str:
        """How the response names this item: ``BODY[HEADER]<0>`` for ``BODY.PEEK[HEADER]<0.10>``."""
        if self.name in ("BODY[]", "BINARY[]", "BINARY.SIZE"):
            head = self.name[:-2] if self.name.endswith("[]") else self.name
            out = f"{head}[{self.section.label() if self.section else ''}]"
            if self.partial is not None:
                out += f"<{self.partial[0]}>"
            return out
        return self.name


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """What every command has: its tag and its name (upper-case; ``UID FETCH`` is ``FETCH``
    with ``uid=True``)."""

    tag: str
    name: str


@dataclass(frozen=True)
class Simple(Command):
    """CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE UNSELECT EXPUNGE IDLE NAMESPACE; and
    ``UID EXPUNGE <set>`` (``uid=True``, ``messages``)."""

    uid: bool = False
    messages: SequenceSet | None = None


@dataclass(frozen=True)
class Login(Command):
    user: bytes = b""
    password: bytes = b""


@dataclass(frozen=True)
class Authenticate(Command):
    mechanism: str = ""  # upper-case
    initial: bytes | None = None  # SASL-IR, base64 as sent ("=" is an empty response)


@dataclass(frozen=True)
class Id(Command):
    fields: dict[str, str | None] | None = None  # None for ID NIL


@dataclass(frozen=True)
class Enable(Command):
    capabilities: tuple[str, ...] = ()  # upper-case


@dataclass(frozen=True)
class Select(Command):
    """SELECT / EXAMINE (``name`` says which)."""

    mailbox: bytes = b""
    condstore: bool = False
    qresync: tuple[int, int, SequenceSet | None] | None = None  # (uidvalidity, modseq, known uids)
    qresync_match: tuple[SequenceSet, SequenceSet] | None = None  # QRESYNC's (known seqs, their uids)


@dataclass(frozen=True)
class MailboxCommand(Command):
    """CREATE DELETE SUBSCRIBE UNSUBSCRIBE: one mailbox name."""

    mailbox: bytes = b""


@dataclass(frozen=True)
class Rename(Command):
    old: bytes = b""
    new: bytes = b""


@dataclass(frozen=True)
class List(Command):
    """LIST / LSUB, with RFC 5258 selection and return options (upper-case)."""

    reference: bytes = b""
    patterns: tuple[bytes, ...] = ()
    select: tuple[str, ...] = ()  # SUBSCRIBED, SPECIAL-USE, REMOTE, RECURSIVEMATCH
    returns: tuple[str, ...] = ()  # SUBSCRIBED, CHILDREN, SPECIAL-USE (STATUS in status_items)
    status_items: tuple[str, ...] = ()  # RETURN (STATUS (MESSAGES UNSEEN))
    extended: bool = False  # any selection/return option or a pattern list was given


@dataclass(frozen=True)
class Status(Command):
    mailbox: bytes = b""
    items: tuple[str, ...] = ()  # MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE


@dataclass(frozen=True)
class Append(Command):
    mailbox: bytes = b""
    flags: tuple[str, ...] = ()
    date: datetime | None = None
    message: bytes = b""
    binary: bool = False  # sent as a literal8 (~{n}, RFC 3516): may hold NUL and need no CRLF


@dataclass(frozen=True)
class Search(Command):
    uid: bool = False
    charset: str | None = None  # upper-case; None when not given
    criteria: SearchKey = Key("ALL")
    returns: tuple[str, ...] | None = None  # ESEARCH: RETURN (MIN MAX COUNT ALL SAVE); None: plain SEARCH


@dataclass(frozen=True)
class Fetch(Command):
    uid: bool = False
    messages: SequenceSet = SequenceSet(())
    items: tuple[FetchItem, ...] = ()
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True)
class Store(Command):
    uid: bool = False
    messages: SequenceSet = SequenceSet(())
    mode: str = ""  # "", "+", "-"
    silent: bool = False
    flags: tuple[str, ...] = ()
    unchanged_since: int | None = None


@dataclass(frozen=True)
class Copy(Command):
    """COPY / MOVE."""

    uid: bool = False
    messages: SequenceSet = SequenceSet(())
    mailbox: bytes = b""


# --- what the reader gives besides commands ---------------------------------------------------


@dataclass(frozen=True)
class Continue:
    """The client sent a synchronising literal ``{n}``: answer ``+`` so it sends the bytes (or
    refuse, when ``refused`` says why: too large; the reader then drops the command)."""

    size: int
    refused: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class Bad:
    """A line that is not a command: answer ``<tag> BAD <text>`` (``*`` when no tag was read).
    ``fatal``: the stream cannot be followed any more (a refused synchronising literal whose
    bytes may follow, a line past the limit): answer and close."""

    tag: str | None
    text: str
    fatal: bool = False


@dataclass(frozen=True)
class Line:
    """A raw line read in line mode (an AUTHENTICATE response, IDLE's ``DONE``), CRLF removed."""

    data: bytes


Event = Union[Command, Continue, Bad, Line]
