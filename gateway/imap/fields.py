"""The header fields of one entity, as IMAP FETCH reads them: raw bytes, folding kept.

``fields(raw, start, stop)`` walks ``raw[start:stop]`` (a header block as
:class:`~mailwarden.rules.mail.structure.Part` delimits it) line by line without copying the
block: a field's value starts after the colon and the blanks after it, its continuation lines
are joined with ``\\n`` (carriage returns dropped), a line without a colon is a field with an
empty name, and a name is what comes before the colon without the blanks before it — the
reading Dovecot's header parser gives, so ENVELOPE and BODYSTRUCTURE strings match it.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["fields"]

_NAME_MAX = 1000  # longer names: the whole line is the value (RFC 5322 2.1.1)


def _field(lines: list[bytes]) -> tuple[bytes, bytes]:
    first = lines[0]
    colon = first.find(b":")
    if colon == -1 or colon > _NAME_MAX:
        name, value = b"", first
    else:
        name, value = first[:colon].rstrip(b" \t"), first[colon + 1:]
        stripped = value.lstrip(b" \t")
        value = stripped if stripped or not value else value[1:]  # only blanks: drop one
    if len(lines) > 1:
        value = b"\n".join([value, *lines[1:]])
    return name, value


def fields(raw: bytes, start: int, stop: int) -> Iterator[tuple[bytes, bytes]]:
    """(name, value) for every field in ``raw[start:stop]``, in order; the name as written."""
    pos = start
    current: list[bytes] = []
    while pos < stop:
        nl = raw.find(b"\n", pos, stop)
        line_end = stop if nl == -1 else nl + 1
        line = raw[pos:line_end].rstrip(b"\n")
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)
        else:
            if current:
                yield _field(current)
            if not line:
                return  # the empty line that ends the header
            current = [line]
        pos = line_end
    if current:
        yield _field(current)
