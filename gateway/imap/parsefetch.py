"""FETCH's arguments: the items (RFC 3501 6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ) and the
modifiers (``CHANGEDSINCE``, ``VANISHED``)."""

from __future__ import annotations

import re
from typing import Final

from .commands import FetchItem, Section
from .tokens import Tokens

__all__ = ["fetch_items", "fetch_modifiers"]

_PLAIN: Final = frozenset({"ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE", "UID", "MODSEQ",
                           "BODY"})
# RFC822.* are BODY[…] in all but the label: RFC822.HEADER does not set \Seen (RFC 3501 6.4.5)
_RFC822: Final = {
    "RFC822": (Section(), False),
    "RFC822.HEADER": (Section(text="HEADER"), True),
    "RFC822.TEXT": (Section(text="TEXT"), False),
}
_MACROS: Final = {
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_SECTIONED: Final = {  # name as sent → (FetchItem.name, peek, binary)
    "BODY": ("BODY[]", False, False),
    "BODY.PEEK": ("BODY[]", True, False),
    "BINARY": ("BINARY[]", False, True),
    "BINARY.PEEK": ("BINARY[]", True, True),
    "BINARY.SIZE": ("BINARY.SIZE", False, True),
}
_ITEM_NAME = re.compile(rb"[A-Za-z0-9.\-]+")
_SECTION_TEXT = re.compile(rb"[A-Za-z.]+")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII but ":" (RFC 5322 ftext)
_TEXTS: Final = ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME")


def fetch_items(t: Tokens) -> tuple[FetchItem, ...]:
    """``ALL`` / ``FAST`` / ``FULL``, one item, or a parenthesised list of items."""
    if t.take(b"("):
        items = [_item(t)]
        while t.more():
            items.append(_item(t))
        t.expect(b")", '")" after the fetch items')
        return tuple(items)
    m = _ITEM_NAME.match(t.line, t.pos)
    if m is not None and m.group().upper().decode() in _MACROS and t.line[m.end():m.end() + 1] != b"[":
        t.pos = m.end()
        return tuple(FetchItem(name) for name in _MACROS[m.group().upper().decode()])
    return (_item(t),)


def _item(t: Tokens) -> FetchItem:
    m = _ITEM_NAME.match(t.line, t.pos)
    if m is None:
        raise t.fail(f"expected a fetch item, not {t.shown()}")
    t.pos = m.end()
    name = m.group().decode("ascii").upper()
    if name in _SECTIONED and (t.peek() == 0x5B or name != "BODY"):
        kind, peek, binary = _SECTIONED[name]
        t.expect(b"[", f'"[" after {name}')
        section = _binary_section(t, name) if binary else _section(t, name)
        partial = None
        if t.take(b"<"):
            if name == "BINARY.SIZE":
                raise t.fail("BINARY.SIZE takes no <partial>")
            offset = t.number("a partial offset")
            t.expect(b".", '"." in <offset.count>')
            partial = (offset, t.number("a partial count", nonzero=True))
            t.expect(b">", '">" after <offset.count>')
        return FetchItem(kind, section=section, partial=partial, peek=peek)
    if name in _PLAIN:
        return FetchItem(name)
    if name in _RFC822:
        section, peek = _RFC822[name]
        return FetchItem(name, section=section, peek=peek)
    if name in _MACROS:
        raise t.fail(f"{name} is a macro and cannot be in a list of items")
    raise t.fail(f"unknown item {name}")


def _parts(t: Tokens) -> tuple[int, ...]:
    numbers = []
    while t.peek() is not None and 0x30 <= t.peek() <= 0x39:
        numbers.append(t.number("a part number", nonzero=True))
        if not (t.line[t.pos:t.pos + 1] == b"." and t.line[t.pos + 1:t.pos + 2].isdigit()):
            break
        t.pos += 1
    return tuple(numbers)


def _section(t: Tokens, name: str) -> Section:
    part = _parts(t)
    text = ""
    fields: tuple[str, ...] = ()
    if t.peek() != 0x5D:
        if part:
            t.expect(b".", f'"." or "]" in the {name}[] section')
        m = _SECTION_TEXT.match(t.line, t.pos)
        text = m.group().decode().upper() if m else ""
        if text not in _TEXTS:
            raise t.fail(f"unknown section {text or t.shown()} in {name}[]")
        if text == "MIME" and not part:
            raise t.fail("MIME needs a part number (such as 1.MIME)")
        t.pos = m.end()
        if text.startswith("HEADER.FIELDS"):
            fields = _header_list(t, text)
    t.expect(b"]", f'"]" to end the {name}[] section')
    return Section(part=part, text=text, fields=fields)


def _header_list(t: Tokens, text: str) -> tuple[str, ...]:
    t.sp()
    t.expect(b"(", f'"(" and the field names after {text}')
    fields = []
    while True:
        raw = t.astring("a header field name")
        field = raw.decode("ascii", "replace").upper()
        if not _FIELD_NAME.fullmatch(field):
            raise t.fail(f"not a header field name: {field!r}")
        fields.append(field)
        if not t.more():
            break
    t.expect(b")", f'")" after the {text} field names')
    return tuple(fields)


def _binary_section(t: Tokens, name: str) -> Section:
    part = _parts(t)
    if t.peek() != 0x5D:
        raise t.fail(f"{name}[] takes only part numbers (such as {name}[1.2])")
    t.pos += 1
    return Section(part=part)


def fetch_modifiers(t: Tokens, uid: bool) -> tuple[int | None, bool]:
    """``(CHANGEDSINCE n [VANISHED])`` (RFC 7162 3.1.4, 3.2.6): (changed_since, vanished)."""
    changed_since = None
    vanished = False
    t.expect(b"(", '"(" and fetch modifiers')
    while True:
        word = t.keyword("a fetch modifier")
        if word == "CHANGEDSINCE" and changed_since is None:
            t.sp()
            changed_since = t.modseq(zero=True)
        elif word == "VANISHED" and not vanished:
            vanished = True
        else:
            raise t.fail(f"unknown or repeated fetch modifier {word}")
        if not t.more():
            break
    t.expect(b")", '")" after the fetch modifiers')
    if vanished and (not uid or changed_since is None):
        raise t.fail("VANISHED needs UID FETCH and CHANGEDSINCE")
    return changed_since, vanished
