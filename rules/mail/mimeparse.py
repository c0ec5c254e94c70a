"""``parse_bytes``: the same ``Message`` tree as ``BytesParser(policy=compat32).parsebytes``, faster.

The stdlib feed parser walks a message line by line in Python (about 2 µs a line, ~3 ms for a
100 KB body), while the rules only need each part's headers and payload. Here only the header
blocks go through the stdlib parser; bodies are cut out with ``str.find`` at the boundary
lines, following the feed parser's rules exactly:

* lines end at ``\\n`` (a message with a bare ``\\r`` is handed to the stdlib parser, which also
  breaks lines there);
* a part's headers run up to the first empty line, and every header line must look like one
  (the feed parser's ``headerRE``), not start with ``--`` and, but for the first, not with
  ``From``;
* a multipart's children lie between lines that match its boundary exactly as the feed parser's
  ``boundaryre`` does; the line ending before a boundary line belongs to the boundary;
* a multipart part ends at the first boundary line of an enclosing multipart.

Anything else — no empty line after the headers, no boundary or no close boundary, two boundary
lines in a row, ``message/*`` parts, ``multipart/digest`` — is left to the stdlib parser (a
:class:`_Fallback`), so the result never differs from it. ``tests/rules/test_mimeparse.py``
compares the two on well-formed and malformed messages.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
from email.message import Message
from email.parser import BytesParser, Parser
from typing import NamedTuple

__all__ = ["Parsed", "Span", "parse", "parse_bytes", "parse_headers"]

_POLICY = email.policy.compat32
_HEADERS = Parser(policy=_POLICY)
# feedparser.headerRE, without its "^": it is used with match(text, pos), where "^" never holds.
_HEADER_LINE = re.compile(r"(From |[\041-\071\073-\176]*:|[\t ])")
_BOL = re.compile(r"\r\n|\r|\n")  # feedparser.NLCRE_bol (used with match)
MAX_PARTS = 2000


def _strip_eol(s: str) -> str:
    """*s* without one final line ending (``feedparser.NLCRE_eol``, without a regex scan)."""
    if s.endswith("\r\n"):
        return s[:-2]
    if s.endswith(("\r", "\n")):
        return s[:-1]
    return s


_MISSING = object()


class _Fallback(Exception):
    """The fast path cannot promise the stdlib parser's result for this message."""


class Span(NamedTuple):
    """Where one entity lies in the message, as :mod:`.structure` counts it: headers in
    ``[start, header_end)``, body in ``[body_start, end)`` (without the line ending that
    belongs to the next boundary line); ``entity``: the parsed entity itself."""

    start: int
    header_end: int
    body_start: int
    end: int
    entity: Message
    children: tuple[Span, ...]


class Parsed(NamedTuple):
    """The message tree and, when the fast path found it on the way, its :class:`Span` s
    (None when the stdlib parser did the work, or the byte-offset scanner of
    :mod:`.structure` would read a boundary line differently from the feed parser)."""

    tree: Message
    spans: Span | None


def parse_bytes(message: bytes) -> Message:
    """Parse *message* like ``BytesParser(policy=compat32).parsebytes(message)``."""
    return parse(message).tree


def parse(message: bytes) -> Parsed:
    """:func:`parse_bytes`, plus the spans of the entities when the fast path found them."""
    text = message.decode("ascii", "surrogateescape")
    if "\r" not in text or text.count("\r") == text.count("\r\n"):
        scanner = _Scanner(text)
        try:
            msg, span = scanner.part(0, len(text), top=True)
        except _Fallback:
            pass
        else:
            return Parsed(msg, span if scanner.spans_ok else None)
    return Parsed(BytesParser(policy=_POLICY).parsebytes(message), None)


def _field(name: str, lines: list[str]) -> tuple[str, str]:
    """One field as ``compat32.header_source_parse`` keeps it."""
    return name, (lines[0].split(":", 1)[1].lstrip(" \t") + "".join(lines[1:])).rstrip("\r\n")


def _header_block(text: str, start: int, stop: int) -> Message:
    """``Parser(policy=compat32).parsestr(text[start:stop], headersonly=True)`` for field lines
    already checked (each ends with ``\n`` and looks like a field or a continuation): each field
    kept as the feed parser keeps it (``compat32.header_source_parse``), without its line-by-line
    machinery.  Its special cases (a continuation line first, a ``From `` line, a field with no
    name) go to it."""
    msg = Message(policy=_POLICY)
    name, lines = "", []  # the field being read and its lines
    pos = start
    while pos < stop:
        nl = text.index("\n", pos, stop) + 1
        line = text[pos:nl]
        pos = nl
        if line[0] in " \t":
            if not name:
                return _HEADERS.parsestr(text[start:stop], headersonly=True)
            lines.append(line)
            continue
        if name:
            msg.set_raw(*_field(name, lines))
        colon = line.find(":")
        if colon <= 0 or line.startswith("From "):
            return _HEADERS.parsestr(text[start:stop], headersonly=True)
        name, lines = line[:colon], [line]
    if name:
        msg.set_raw(*_field(name, lines))
    msg.set_payload("")
    return msg


def parse_headers(block: bytes) -> Message:
    """``BytesHeaderParser(policy=compat32).parsebytes(block)`` for a header block (its last line
    ending included, the empty line after it optional), fast when every line is a plain field or
    continuation; anything else goes to the stdlib parser."""
    text = block.decode("ascii", "surrogateescape")
    stop = len(text) - 2 if text.endswith("\n\r\n") else len(text) - 1 if text.endswith("\n\n") else len(text)
    if not text.endswith("\n") or ("\r" in text and text.count("\r") != text.count("\r\n")):
        return _HEADERS.parsestr(text, headersonly=True)
    pos = 0
    while pos < stop:
        if text.startswith(("--", "\n", "\r\n"), pos) or _HEADER_LINE.match(text, pos) is None or (
                pos and text.startswith("From ", pos)):
            return _HEADERS.parsestr(text, headersonly=True)
        pos = text.index("\n", pos) + 1
    return _header_block(text, 0, stop)


# What the byte-offset scanner (structure._scan_children) strips from the rest of a boundary
# line: bytes.strip()'s whitespace, which is more than the feed parser's [ \t]*.
_BYTES_WS = " \t\n\r\x0b\x0c"


class _Scanner:
    __slots__ = ("text", "parts", "spans_ok")

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts = 0
        self.spans_ok = True

    def part(self, start: int, end: int, top: bool = False, child: bool = False) -> tuple[Message, Span]:
        """The entity in ``text[start:end]`` (*end* is a line start or the end of the text),
        and its span.  ``child``: a part of a multipart, whose body, when it is not a multipart
        itself, loses the line ending before the next boundary line."""
        self.parts += 1
        if self.parts > MAX_PARTS or (start >= end and not top):
            raise _Fallback
        text = self.text
        pos = start
        while True:
            if pos >= end:
                # Headers up to the end of the entity: no empty line (the feed parser still
                # parses them, but leaves an empty body in a way not worth copying).
                raise _Fallback
            nl = text.find("\n", pos, end)
            if nl == -1:
                raise _Fallback
            if nl == pos or (nl == pos + 1 and text[pos] == "\r"):
                body = nl + 1
                break
            if text.startswith("--", pos) or _HEADER_LINE.match(text, pos) is None or (
                    pos > start and text.startswith("From ", pos)):
                raise _Fallback  # a misplaced "From " line may start the body
            pos = nl + 1
        msg = _header_block(text, start, pos)  # pos: the empty line
        ctype = msg.get_content_type()
        maintype = ctype.partition("/")[0]
        if maintype == "message" or ctype == "multipart/digest":
            raise _Fallback
        children: tuple[Span, ...] = ()
        if maintype == "multipart":
            children = self._multipart(msg, body, end)
        else:
            msg.set_payload(_strip_eol(text[body:end]) if child else text[body:end])
        if top:
            span_end = end
        else:  # the line ending before the boundary line is the boundary's
            span_end = max(end - 2 if text.endswith("\r\n", start, end) else end - 1, start)
        return msg, Span(start, pos, body, span_end, msg, children)

    def _multipart(self, msg: Message, body: int, end: int) -> tuple[Span, ...]:
        # msg.get_boundary(), keeping the parameter as .structure's scanner takes it
        param = msg.get_param("boundary", _MISSING)
        if param is _MISSING:
            raise _Fallback
        boundary = email.utils.collapse_rfc2231_value(param).rstrip()  # type: ignore[arg-type]
        if not boundary or param != boundary:
            self.spans_ok = False
        text = self.text
        sep = "--" + boundary
        boundary_re = re.compile(
            "(?P<sep>" + re.escape(sep) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
        )
        # Boundary lines: (line start, line end, close boundary?, line ending present?)
        lines: list[tuple[int, int, bool, bool]] = []
        pos = body
        while True:
            i = text.find(sep, pos, end)
            if i == -1:
                break
            nl = text.find("\n", i, end)
            line_end = end if nl == -1 else nl + 1
            if i == body or text[i - 1] == "\n":
                m = boundary_re.match(text[i:line_end])
                if m is not None:
                    lines.append((i, line_end, m.group("end") is not None,
                                  m.group("linesep") is not None))
                    if m.group("end") is not None:
                        break
                else:
                    after = i + len(sep)
                    if not text[after + 2 if text.startswith("--", after) else after:
                                line_end].strip(_BYTES_WS):
                        self.spans_ok = False  # a boundary line to .structure, not here
            pos = line_end
        if not lines or lines[0][2] or not lines[-1][2]:
            raise _Fallback  # no start boundary, or no close boundary
        first = lines[0][0]
        if first > body:
            msg.preamble = _strip_eol(text[body:first])
        msg.set_payload(None)
        spans = []
        for (_s, child_start, _c, _l), (child_end, _e, _c2, _l2) in zip(lines, lines[1:]):
            if child_end == child_start:
                raise _Fallback  # two boundary lines in a row: the feed parser skips the second
            child, span = self.part(child_start, child_end, child=True)
            spans.append(span)
            if child.get_content_maintype() == "multipart":
                epilogue = child.epilogue
                if epilogue == "":
                    child.epilogue = None
                elif epilogue is not None:
                    child.epilogue = _strip_eol(epilogue)
            msg.attach(child)
        close_end, has_linesep = lines[-1][1], lines[-1][3]
        epilogue = text[close_end:end]
        if not has_linesep:
            bol = _BOL.match(epilogue)
            if bol:
                epilogue = epilogue[bol.end():]
        msg.epilogue = epilogue
        return tuple(spans)
