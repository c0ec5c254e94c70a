"""The header fields FETCH is made of, read from one entity's header as IMAP servers read it.

``fields(raw, start, stop)`` finds, in the header block ``raw[start:stop]`` (as
:class:`~mailwarden.rules.mail.structure.Part` delimits it), the fields ENVELOPE and
BODYSTRUCTURE are written from (``Content-*``, ``MIME-Version`` and the ten envelope fields),
without walking the other lines one by one: a header of a million ``Received`` lines costs
one regular-expression scan. A value starts after the colon and the blanks after it, its
continuation lines are joined with ``\\n`` (carriage returns before line feeds dropped), and a
name is what comes before the colon without the blanks before it; a line that is no field
does not end the header — the reading Dovecot's header parser gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain

__all__ = ["fields"]

_NAMES = rb"(content-[!-9;-~]*|mime-version|date|subject|from|sender|reply-to|to|cc|bcc|in-reply-to|message-id)[ \t]*:"
_FIRST = re.compile(_NAMES, re.IGNORECASE)
_NEXT = re.compile(rb"\n" + _NAMES, re.IGNORECASE)  # a leading literal: the scan jumps from line feed to line feed


def _field_end(raw: bytes, pos: int, stop: int) -> int:
    """Where the field whose value starts at *pos* ends: after its last line's line feed."""
    while True:
        nl = raw.find(b"\n", pos, stop)
        if nl == -1:
            return stop
        pos = nl + 1
        if pos >= stop or raw[pos] not in (0x20, 0x09):
            return pos


def fields(raw: bytes, start: int, stop: int) -> Iterator[tuple[bytes, bytes]]:
    """(name, value) of every IMAP-relevant field in ``raw[start:stop]``, in order; the name
    as written."""
    head = _FIRST.match(raw, start, stop)
    for m in chain((head,) if head else (), _NEXT.finditer(raw, start, stop)):
        end = _field_end(raw, m.end(), stop)
        value = raw[m.end():end].replace(b"\r\n", b"\n")
        if value.endswith(b"\n"):
            value = value[:-1]
        first_end = value.find(b"\n")
        first = value if first_end == -1 else value[:first_end]
        stripped = first.lstrip(b" \t")
        skip = len(first) - len(stripped) if stripped or not first else 1  # only blanks: drop one
        yield m.group(1), value[skip:]
