"""The byte-offset structure of a MIME message: where each part's headers and body lie.

The signature engine changes one or two text parts of a message that may carry megabytes of
attachments, and the rules cut big media parts out before decoding; both need to know where
the parts are in the original bytes, not a copy of them. Each :class:`Part` knows where its
header block and body lie; only the small header blocks are parsed (as :mod:`email` parses
them).

:func:`scan` finds the structure on its own. When :func:`~.mimeparse.parse_bytes` takes its
fast path it finds the same structure on the way (see :class:`~.mimeparse.Parsed`), and the
mail model (:mod:`.model`) then uses that one instead of scanning again.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from email.message import Message

from .mimeparse import Span, parse_headers

__all__ = ["MAX_DEPTH", "Part", "decode_body", "from_spans", "newline_of", "scan", "scan_parts"]

MAX_DEPTH = 20  # multiparts nested deeper are not descended into


@dataclass(eq=False)
class Part:
    """One MIME entity: ``raw[start:body_start]`` are its headers (and the blank line),
    ``raw[body_start:end]`` its body. ``children`` only for multipart/*.

    ``headers`` is read only: it may be the entity of the parsed tree itself (payload
    included), see :func:`from_spans`."""

    start: int
    header_end: int
    body_start: int
    end: int
    headers: Message
    parent: Part | None = None
    children: list[Part] = field(default_factory=list)
    # Header values the signature engine asks for again and again, parsed once.
    _ctype: str | None = field(default=None, repr=False)
    _params: dict[str, str] | None = field(default=None, repr=False)
    _cte: str | None = field(default=None, repr=False)
    _disposition: str | None = field(default=None, repr=False)

    @property
    def ctype(self) -> str:
        """The content type, lower case (``text/plain`` when none is given)."""
        if self._ctype is None:
            self._ctype = self.headers.get_content_type()
        return self._ctype

    @property
    def maintype(self) -> str:
        """The content type's main type (``multipart``, ``text`` …)."""
        return self.ctype.split("/", 1)[0]

    def param(self, name: str) -> str | None:
        """A Content-Type parameter (``headers.get_param(name)``, RFC 2231 encoded ones
        decoded); None when absent."""
        params = self._params
        if params is None:
            # One parse of the header for all parameters; get_param takes the first of a name.
            params = {}
            for key, value in self.headers.get_params(failobj=[]):
                if isinstance(value, tuple):  # RFC 2231 encoded parameter
                    value = value[2]
                params.setdefault(key.lower(), str(value))
            self._params = params
        return params.get(name.lower())

    @property
    def cte(self) -> str:
        """The Content-Transfer-Encoding, lower case (``7bit`` when none is given)."""
        if self._cte is None:
            self._cte = str(self.headers.get("content-transfer-encoding", "7bit")).strip().lower()
        return self._cte

    @property
    def disposition(self) -> str:
        """The Content-Disposition type, lower case (empty when none is given)."""
        if self._disposition is None:
            self._disposition = str(self.headers.get("content-disposition", "")).split(";", 1)[0].strip().lower()
        return self._disposition

    def walk(self) -> list[Part]:
        """This part and all parts inside it, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def newline_of(raw: bytes) -> bytes:
    """The line ending the message uses (CRLF on the wire, often LF in .eml files)."""
    i = raw.find(b"\n")
    return b"\r\n" if i > 0 and raw[i - 1 : i] == b"\r" else b"\n"


def _split_headers(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """(header_end, body_start): header_end includes the last header line's line ending."""
    if raw.startswith(b"\r\n", start):
        return start, start + 2
    if raw.startswith(b"\n", start):
        return start, start + 1
    i = raw.find(b"\n\r\n", start, end)
    j = raw.find(b"\n\n", start, end if i == -1 else i)  # bounded: CRLF mail has no LF LF
    if i == -1 and j == -1:
        return end, end
    if j == -1 or (i != -1 and i < j):
        return i + 1, i + 3
    return j + 1, j + 2


def _part_at(raw: bytes, start: int, end: int, parent: Part | None, depth: int) -> Part:
    header_end, body_start = _split_headers(raw, start, end)
    headers = parse_headers(raw[start:header_end])
    part = Part(start, header_end, body_start, end, headers, parent)
    if part.maintype == "multipart" and depth < MAX_DEPTH:
        boundary = part.param("boundary")
        if boundary:
            _scan_children(raw, part, boundary.encode("ascii", "surrogateescape"), depth)
    return part


def _scan_children(raw: bytes, part: Part, boundary: bytes, depth: int) -> None:
    delim = b"--" + boundary
    pos, end = part.body_start, part.end
    child_start: int | None = None
    while True:
        i = raw.find(delim, pos, end)
        if i == -1:
            break
        after = i + len(delim)
        at_line_start = i == part.body_start or raw[i - 1 : i] == b"\n"
        closing = raw.startswith(b"--", after)
        rest_end = raw.find(b"\n", after, end)
        rest_end = end if rest_end == -1 else rest_end + 1
        tail = raw[after + (2 if closing else 0) : rest_end].strip()
        if not at_line_start or tail:
            pos = after
            continue
        # The line ending before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
        body_end = i - 2 if raw[i - 2 : i] == b"\r\n" else i - 1 if i > part.body_start else i
        if child_start is not None:
            part.children.append(_part_at(raw, child_start, max(body_end, child_start), part, depth + 1))
        if closing:
            return
        child_start = pos = rest_end
    if child_start is not None:  # no close delimiter: the last part runs to the end
        part.children.append(_part_at(raw, child_start, end, part, depth + 1))


def scan(raw: bytes, start: int = 0, end: int | None = None) -> Part:
    """Scan the MIME structure of ``raw`` (or of the entity in ``raw[start:end]``, such as the
    body of a message/rfc822 part: offsets stay those of ``raw``). message/rfc822 parts are
    not descended into."""
    return _part_at(raw, start, len(raw) if end is None else end, None, 0)


def scan_parts(raw: bytes, part: Part, boundary: str) -> list[Part]:
    """The parts of the multipart *part* when delimited by *boundary*: for a reader that takes
    the boundary from the header fields another way (the IMAP side reads them as IMAP servers
    do, where a line that is no field does not end the header). *part* is left as it is."""
    shell = Part(part.start, part.header_end, part.body_start, part.end, part.headers, part.parent)
    if boundary:
        _scan_children(raw, shell, boundary.encode("ascii", "surrogateescape"), 0)
    for child in shell.children:
        child.parent = part
    return shell.children


def from_spans(span: Span, parent: Part | None = None, depth: int = 0) -> Part:
    """The structure :func:`scan` finds, from the spans the tree parser found
    (:func:`~.mimeparse.parse`); ``tests/rules/test_mail_model.py`` compares the two."""
    part = Part(span.start, span.header_end, span.body_start, span.end, span.entity, parent)
    if depth < MAX_DEPTH:
        part.children = [from_spans(child, part, depth + 1) for child in span.children]
    return part


def decode_body(raw: bytes, part: Part) -> bytes:
    """The part's body with its Content-Transfer-Encoding undone (strict base64/QP)."""
    data = raw[part.body_start : part.end]
    cte = part.cte
    if cte == "base64":
        return binascii.a2b_base64(data)
    if cte == "quoted-printable":
        return binascii.a2b_qp(data)
    return data
