"""SEARCH's arguments: ``[RETURN (…)] [CHARSET x] keys`` (RFC 3501 6.4.4, RFC 4731 ESEARCH,
RFC 7162 MODSEQ, RFC 5032 YOUNGER/OLDER).  Keys side by side are an :class:`~.commands.And`."""

from __future__ import annotations

from typing import Final

from .commands import And, Key, Not, Or, SearchKey
from .tokens import MAX_DEPTH, Tokens

__all__ = ["search_arguments"]

_BARE: Final = frozenset({"ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
                          "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN"})
_STRING: Final = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
_DATE: Final = frozenset({"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"})
_SIZE: Final = frozenset({"LARGER", "SMALLER"})
_SECONDS: Final = frozenset({"YOUNGER", "OLDER"})
_KEYWORD: Final = frozenset({"KEYWORD", "UNKEYWORD"})
_WITH_ARGUMENT: Final = _STRING | _DATE | _SIZE | _SECONDS | _KEYWORD | {"UID", "HEADER"}
RETURN_OPTIONS: Final = ("MIN", "MAX", "COUNT", "ALL", "SAVE")


def search_arguments(t: Tokens) -> tuple[tuple[str, ...] | None, str | None, SearchKey]:
    """(returns, charset, criteria).  ``RETURN ()`` is ``("ALL",)`` (RFC 4731 3.1)."""
    returns = None
    charset = None
    word = t.line[t.pos:t.pos + 8].upper()
    if word.startswith(b"RETURN "):
        t.pos += 7
        returns = _returns(t)
        t.sp()
        word = t.line[t.pos:t.pos + 8].upper()
    if word.startswith(b"CHARSET "):
        t.pos += 8
        raw = t.astring("a charset name")
        if not raw.isascii():
            raise t.fail("a charset name is ASCII")
        charset = raw.decode("ascii").upper()
        t.sp()
    keys = [search_key(t)]
    while t.more():
        keys.append(search_key(t))
    return returns, charset, keys[0] if len(keys) == 1 else And(tuple(keys))


def _returns(t: Tokens) -> tuple[str, ...]:
    t.expect(b"(", '"(" after RETURN')
    options: list[str] = []
    if not t.take(b")"):
        while True:
            option = t.keyword("a RETURN option")
            if option not in RETURN_OPTIONS:
                raise t.fail(f"unknown RETURN option {option}")
            if option not in options:
                options.append(option)
            if not t.more():
                break
        t.expect(b")", '")" after the RETURN options')
    return tuple(options) or ("ALL",)


def search_key(t: Tokens) -> SearchKey:
    """One key, a parenthesised group, ``NOT key``, ``OR key key``, or a sequence set."""
    if t.starts_sequence():
        return Key("SEQ", t.sequence_set())
    if t.peek() == 0x28:
        t.open()
        keys = [search_key(t)]
        while t.more():
            keys.append(search_key(t))
        t.close()
        return keys[0] if len(keys) == 1 else And(tuple(keys))
    name = t.keyword("a search key")
    if name in _BARE:
        return Key(name)
    if name in ("NOT", "OR"):
        t.sp()
        t.depth += 1  # NOT NOT NOT … nests as deep as parentheses do
        if t.depth > MAX_DEPTH:
            raise t.fail("search keys nested too deep")
        first = search_key(t)
        if name == "NOT":
            t.depth -= 1
            return Not(first)
        t.sp()
        second = search_key(t)
        t.depth -= 1
        return Or(first, second)
    if name == "MODSEQ":
        t.sp()
        if t.peek() == 0x22:  # entry-name entry-type-req: per-flag mod-sequences are not kept apart
            t.quoted()
            t.sp()
            entry_type = t.keyword("an entry type")
            if entry_type not in ("PRIV", "SHARED", "ALL"):
                raise t.fail(f"unknown MODSEQ entry type {entry_type}")
            t.sp()
        return Key(name, t.modseq(zero=True))
    if name not in _WITH_ARGUMENT:
        raise t.fail(f"unknown search key {name}")
    t.sp()
    if name in _STRING:
        return Key(name, t.astring(f"a string after {name}"))
    if name in _DATE:
        return Key(name, t.date())
    if name in _SIZE:
        return Key(name, t.number(f"a size after {name}"))
    if name in _SECONDS:
        return Key(name, t.number(f"seconds after {name}", nonzero=True))
    if name in _KEYWORD:
        return Key(name, t.flag_keyword())
    if name == "HEADER":
        field = t.astring("a header field name")
        if not field.isascii():
            raise t.fail("a header field name is ASCII")
        t.sp()
        return Key(name, (field.decode("ascii"), t.astring("a string after the HEADER field")))
    return Key(name, t.sequence_set())  # UID
