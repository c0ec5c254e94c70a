"""Mailbox names: modified UTF-7 (RFC 3501 5.1.3), the one canonical spelling every access
check compares, and LIST patterns."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable

from .respond import quoted

__all__ = ["canonical", "decode_mutf7", "encode_mutf7", "list_matcher", "wire_name"]


def decode_mutf7(raw: bytes) -> str:
    """A name as the client wrote it; ValueError for anything RFC 3501 does not allow."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == 0x26:  # &
            end = raw.find(b"-", i + 1)
            if end < 0:
                raise ValueError("unterminated & in a mailbox name (modified UTF-7)")
            chunk = raw[i + 1:end]
            if not chunk:
                out.append("&")
            else:
                if not re.fullmatch(rb"[A-Za-z0-9+,]+", chunk):
                    raise ValueError("bad base64 in a mailbox name (modified UTF-7)")
                padded = chunk.replace(b",", b"/") + b"=" * (-len(chunk) % 4)
                try:
                    data = base64.b64decode(padded, validate=True)
                    text = data.decode("utf-16-be")
                except (binascii.Error, UnicodeDecodeError):
                    raise ValueError("bad base64 in a mailbox name (modified UTF-7)") from None
                if len(data) % 2 or any(0x20 <= ord(c) <= 0x7E for c in text):
                    raise ValueError("printable ASCII encoded in base64 in a mailbox name (modified UTF-7)")
                if encode_mutf7(text)[1:-1] != chunk:
                    raise ValueError("a mailbox name not in the shortest modified UTF-7")
                out.append(text)
            i = end + 1
            continue
        if not 0x20 <= ch <= 0x7E:
            raise ValueError("8-bit or control byte in a mailbox name (use modified UTF-7)")
        out.append(chr(ch))
        i += 1
    return "".join(out)


def encode_mutf7(name: str) -> bytes:
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
            out.extend(b"&-" if ch == "&" else ch.encode())
        else:
            run.append(ch)
    flush()
    return bytes(out)


def canonical(raw: bytes, *, utf8: bool = False, delimiter: str = "/") -> str:
    """The one spelling of a mailbox name that lookups and access checks compare; ValueError
    with the reason for a name that is none."""
    try:
        name = raw.decode("utf-8") if utf8 else decode_mutf7(raw)
    except UnicodeDecodeError:
        raise ValueError("a mailbox name that is not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ValueError("a control character in a mailbox name")
    if name.endswith(delimiter):
        name = name[:-1]
    if not name:
        raise ValueError("an empty mailbox name")
    parts = name.split(delimiter)
    if any(not p for p in parts):
        raise ValueError(f"an empty level in the mailbox name (a leading or doubled {delimiter!r})")
    if any(p in (".", "..") for p in parts):
        raise ValueError("'.' and '..' are no mailbox names")
    if any(c in name for c in "*%"):
        raise ValueError("* and % are wildcards, not part of a mailbox name")
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
    return unicodedata.normalize("NFC", delimiter.join(parts))


def list_matcher(reference: str, pattern: str, delimiter: str = "/") -> Callable[[str], bool]:
    """Whether a canonical name matches LIST's reference and pattern (``*`` anything, ``%``
    anything but the delimiter; INBOX in any case)."""
    if pattern.startswith(delimiter) or not reference:
        full = pattern
    elif reference.endswith(delimiter):
        full = reference + pattern
    else:
        full = reference + delimiter + pattern
    full = unicodedata.normalize("NFC", full)
    rx = "".join(".*" if c == "*" else f"[^{re.escape(delimiter)}]*" if c == "%" else re.escape(c) for c in full)
    inbox = re.compile(r"(?i:INBOX)(?=/|\Z)")
    compiled = re.compile(rx + r"\Z", re.DOTALL)
    folded = re.compile(inbox.sub("INBOX", rx) + r"\Z", re.DOTALL) if full[:5].upper() == "INBOX" else compiled

    def match(name: str) -> bool:
        return bool(compiled.match(name) or folded.match(name))

    return match


def wire_name(name: str, *, utf8: bool = False) -> bytes:
    """A canonical name as LIST, STATUS and the like write it."""
    return quoted(name if utf8 else encode_mutf7(name), utf8=utf8)
