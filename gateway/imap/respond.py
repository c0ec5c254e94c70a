"""Small pieces of IMAP responses: strings, flag lists and sequence sets as the server writes them."""

from __future__ import annotations

import re
from typing import Iterable

__all__ = ["astring", "flag_list", "nstring", "quoted", "sequence_set"]

_ATOM = re.compile(rb'[^(){ %*"\\\x00-\x1f\x7f-\xff]+')  # ASTRING-CHAR: ATOM-CHAR or "]"
_NEEDS_LITERAL = re.compile(rb"[\r\n\x00]")


def quoted(value: bytes | str, *, utf8: bool = False) -> bytes:
    """A quoted string, ``"`` and ``\\`` escaped; a literal (``{n}\\r\\n`` then the bytes) when
    quoting cannot carry *value*: CR, LF, NUL, or 8-bit bytes (allowed quoted only with
    ``utf8``, UTF8=ACCEPT, and then only when they are UTF-8)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    literal = _NEEDS_LITERAL.search(value) is not None
    if not literal and not value.isascii():
        literal = not utf8 or not _is_utf8(value)
    if literal:
        return b"{%d}\r\n" % len(value) + value
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def astring(value: bytes | str, *, utf8: bool = False) -> bytes:
    """An atom when *value* is one (and is not NIL), else :func:`quoted`."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if _ATOM.fullmatch(value) and value.upper() != b"NIL":
        return value
    return quoted(value, utf8=utf8)


def nstring(value: bytes | str | None, *, utf8: bool = False) -> bytes:
    """NIL or :func:`quoted`."""
    return b"NIL" if value is None else quoted(value, utf8=utf8)


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Forwarded)``."""
    return b"(" + " ".join(flags).encode("ascii") + b")"


def sequence_set(numbers: Iterable[int]) -> str:
    """``1:3,7`` for 3, 1, 2, 7 (sorted, repeats dropped, runs joined); ``""`` for none."""
    out: list[str] = []
    start = prev = None
    for n in sorted(set(numbers)):
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    if start is not None:
        out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)
