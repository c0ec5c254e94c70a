"""Mailbox names: modified UTF-7 (RFC 3501 5.1.3), the one canonical form a session compares
and checks access on, LIST patterns (RFC 3501 6.3.8) and names as a response writes them.

A name a client sent is bytes until :func:`canonical` makes it a ``str``: decoded (modified
UTF-7, or UTF-8 once UTF8=ACCEPT is on), checked, ``INBOX`` in one case, NFC-normalised, so
two spellings of one mailbox are one name everywhere below.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import Callable

from .respond import quoted

__all__ = ["canonical", "decode_mutf7", "encode_mutf7", "list_matcher", "wire_name"]

_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def decode_mutf7(raw: bytes) -> str:
    """*raw* decoded strictly: ``&-`` is ``&``, ``&…-`` base64 of UTF-16 with ``,`` for ``/``.
    Raises ValueError naming the fault for 8-bit or control bytes, an ``&`` never closed, bad
    base64, printable ASCII or two runs side by side where one plain run belongs (encodings
    that are not the only one, so two spellings could name one mailbox)."""
    out: list[str] = []
    i = 0
    n = len(raw)
    after_run = False
    while i < n:
        c = raw[i]
        if c < 0x20 or c > 0x7E:
            raise ValueError(f"byte 0x{c:02x} at {i} is not allowed in a modified UTF-7 name")
        if c != 0x26:  # "&"
            out.append(chr(c))
            i += 1
            after_run = False
            continue
        end = raw.find(b"-", i + 1)
        if end < 0:
            raise ValueError(f'"&" at {i} is not closed by "-"')
        if end == i + 1:
            out.append("&")
            i = end + 1
            after_run = False
            continue
        if after_run:
            raise ValueError(f"two encoded runs side by side at {i} (they are one run)")
        out.append(_decode_run(raw[i + 1:end], i))
        i = end + 1
        after_run = True
    return "".join(out)


def _decode_run(run: bytes, at: int) -> str:
    if not set(run) <= _B64_CHARS:
        raise ValueError(f"not modified base64 in the run at {at}")
    bits = len(run) * 6
    if bits % 16 >= 6:
        raise ValueError(f"the run at {at} has a character too many")
    padded = run.replace(b",", b"/") + b"=" * (-len(run) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
    except binascii.Error:
        raise ValueError(f"bad base64 in the run at {at}") from None
    data = data[:bits // 16 * 2]
    # the bits past the last UTF-16 unit must be zero, or other text encodes the same name
    if base64.b64encode(data).rstrip(b"=").replace(b"/", b",") != run:
        raise ValueError(f"the run at {at} does not end in zero bits")
    try:
        text = data.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError(f"the run at {at} is not UTF-16 (a lone surrogate)") from None
    if any(0x20 <= ord(ch) <= 0x7E for ch in text):
        raise ValueError(f"the run at {at} encodes printable ASCII, which stands for itself")
    return text


def encode_mutf7(name: str) -> bytes:
    """*name* in modified UTF-7: printable ASCII as itself, ``&`` as ``&-``, the rest in runs."""
    out = bytearray()
    run: list[str] = []

    def flush() -> None:
        if run:
            data = "".join(run).encode("utf-16-be")
            out.extend(b"&" + base64.b64encode(data).rstrip(b"=").replace(b"/", b",") + b"-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.extend(b"&-" if ch == "&" else ch.encode("ascii"))
        else:
            run.append(ch)
    flush()
    return bytes(out)


def canonical(raw: bytes, *, utf8: bool = False, delimiter: str = "/") -> str:
    """The name a client sent (*raw*, an astring's bytes) as the one form the gateway keeps.

    Decoded from modified UTF-7, or UTF-8 with ``utf8``; refused (ValueError with the reason)
    when empty, with a control character, an empty level (``a//b``) or a leading delimiter;
    a LIST wildcard (``*``, ``%``) in it; one trailing delimiter dropped (``Sent/`` is ``Sent``); ``inbox`` in any case as the first
    level is ``INBOX``; NFC-normalised."""
    if utf8:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"the name is not UTF-8 (byte {e.start})") from None
    else:
        name = decode_mutf7(raw)
    for ch in name:
        if unicodedata.category(ch) == "Cc":
            raise ValueError(f"control character U+{ord(ch):04X} in the name")
    name = unicodedata.normalize("NFC", name)
    if name.endswith(delimiter):
        name = name[:-1]
    if not name:
        raise ValueError("empty mailbox name")
    levels = name.split(delimiter)
    if levels[0] == "":
        raise ValueError(f'the name starts with the delimiter "{delimiter}"')
    if "" in levels:
        raise ValueError(f'an empty level in the name ("{delimiter}{delimiter}")')
    if "*" in name or "%" in name:
        raise ValueError("* and % are LIST wildcards, not part of a mailbox name")
    if levels[0].upper() == "INBOX":
        levels[0] = "INBOX"
    return delimiter.join(levels)


def list_matcher(reference: str, pattern: str, delimiter: str = "/") -> Callable[[str], bool]:
    """A test of canonical names against LIST's *reference* and *pattern*: ``*`` matches
    anything, ``%`` anything but the delimiter.  The reference is put before the pattern (one
    delimiter where both have it); ``INBOX`` as the first level matches in any case."""
    if reference and pattern.startswith(delimiter) and reference.endswith(delimiter):
        pattern = pattern[len(delimiter):]
    full = reference + pattern
    if not full:
        return lambda name: False  # LIST "" "" asks for the delimiter, no name
    regex = re.compile(_pattern_regex(full, delimiter, fold_first=False), re.DOTALL)
    inbox = re.compile(_pattern_regex(full, delimiter, fold_first=True), re.DOTALL)

    def match(name: str) -> bool:
        # "inbox", "In%" find INBOX, whose case the client cannot know
        first = name.partition(delimiter)[0]
        return (inbox if first == "INBOX" else regex).fullmatch(name) is not None
    return match


def _pattern_regex(pattern: str, delimiter: str, *, fold_first: bool) -> str:
    out = []
    first_level = fold_first
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(delimiter)}]*")
        elif first_level and ch.isascii() and ch.isalpha():
            out.append(f"[{ch.upper()}{ch.lower()}]")
        else:
            out.append(re.escape(ch))
        if ch == delimiter:
            first_level = False
    return "".join(out)


def wire_name(name: str, *, utf8: bool = False) -> bytes:
    """A canonical name as a response writes it: modified UTF-7 (or UTF-8 with ``utf8``),
    quoted, or a literal when quoting cannot carry it."""
    return quoted(name.encode("utf-8") if utf8 else encode_mutf7(name), utf8=utf8)
