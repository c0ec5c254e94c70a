"""MIME surgery helpers: decode a text body, encode it back, edit a raw header block.

The signature engine changes one or two text parts of a message that may carry megabytes of
attachments. Parsing the whole message into ``email.message`` objects and serialising it again
copies every attachment several times and may re-fold headers the client wrote. Instead it
works on the message's byte-offset structure (:mod:`mailwarden.rules.mail.structure`, part
of the mail model): only the changed parts are decoded and rebuilt here, and the result is
spliced between ``memoryview`` slices of the original, so the big parts are copied once,
into the output.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from email.message import Message

from mailwarden.rules.mail.structure import Part

MAX_LINE = 998
_ASCII_BYTES = bytes(range(128))


# ------------------------------------------------------------------ bodies


def _normalise_charset(name: str | None) -> str:
    name = (name or "us-ascii").strip().strip('"').lower()
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name


# Decode with a superset of what is declared: mail labelled gb2312 is usually GBK, big5 is cp950.
_DECODE_AS = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs", "cp950": "big5hkscs",
              "ascii": "cp1252", "iso8859-1": "cp1252", "euc_kr": "cp949", "shift_jis": "cp932"}


def decode_text(data: bytes, charset: str | None) -> tuple[str, str] | None:
    """Decode a text body: (text, codec name), or None if the charset is unknown to Python.

    Undecodable bytes become surrogates so they can be written back unchanged.
    """
    declared = _normalise_charset(charset)
    codec = _DECODE_AS.get(declared, declared)
    if codec == "cp1252" and data.isascii():  # the same text, ten times faster than the charmap codec
        return data.decode("ascii"), declared
    try:
        return data.decode(codec, "surrogateescape"), declared
    except LookupError:
        return None


def encode_text(text: str, declared: str) -> bytes:
    """*text* back in the codec :func:`decode_text` read *declared* with (surrogates become
    the bytes they stood for)."""
    codec = _DECODE_AS.get(declared, declared)
    if codec == "cp1252" and text.isascii():  # the same bytes, a hundred times faster
        return text.encode("ascii")
    return text.encode(codec, "surrogateescape")


def can_encode(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def transfer_encode(data: bytes, cte: str, nl: bytes) -> tuple[bytes, str]:
    """Encode a body for the wire, keeping the part's encoding where it is still valid.

    Returns (encoded bytes, the Content-Transfer-Encoding actually used).
    """
    if cte not in ("base64", "quoted-printable"):
        lines_ok = len(data) <= MAX_LINE or max(map(len, data.split(b"\n"))) <= MAX_LINE + 1  # +1: CR
        ascii_ok = data.isascii()
        if lines_ok and ascii_ok:
            return _with_newline(data, nl), cte if cte in ("7bit", "8bit") else "7bit"
        if lines_ok and cte in ("8bit", "binary"):
            return _with_newline(data, nl), "8bit"
        # Mostly-ASCII text stays readable as quoted-printable; CJK text is shorter in base64.
        high = len(data.translate(None, _ASCII_BYTES))
        cte = "quoted-printable" if high * 5 < len(data) else "base64"
    if cte == "base64":
        canon = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return _with_newline(base64.encodebytes(canon), nl), cte
    encoded = binascii.b2a_qp(data.replace(b"\r\n", b"\n"), quotetabs=False, istext=True, header=False)
    return _with_newline(encoded, nl), cte


def _with_newline(data: bytes, nl: bytes) -> bytes:
    data = data.replace(b"\r\n", b"\n")
    return data if nl == b"\n" else data.replace(b"\n", nl)


# ------------------------------------------------------------------ headers


def _field_spans(block: bytes) -> list[tuple[bytes, int, int]]:
    """(lower-case name, start, end) of each header field, continuation lines included."""
    spans: list[tuple[bytes, int, int]] = []
    pos = 0
    while pos < len(block):
        nxt = block.find(b"\n", pos)
        nxt = len(block) if nxt == -1 else nxt + 1
        if block[pos : pos + 1] in (b" ", b"\t") and spans:
            name, s, _ = spans[-1]
            spans[-1] = (name, s, nxt)
        else:
            colon = block.find(b":", pos, nxt)
            name = block[pos:colon].strip().lower() if colon != -1 else b""
            spans.append((name, pos, nxt))
        pos = nxt
    return spans


def edit_headers(block: bytes, changes: dict[str, str | None], nl: bytes) -> bytes:
    """Replace (or add, or with None remove) header fields in a raw header block.

    Fields not named keep their exact bytes. New values must be ASCII and already folded.
    """
    out: list[bytes] = []
    done: set[str] = set()
    for name, s, e in _field_spans(block):
        key = name.decode("ascii", "replace")
        if key in changes:
            if key not in done and changes[key] is not None:
                out.append(f"{_canonical(key)}: {changes[key]}".encode("ascii") + nl)
            done.add(key)
        else:
            out.append(block[s:e])
    for key, value in changes.items():
        if key not in done and value is not None:
            out.append(f"{_canonical(key)}: {value}".encode("ascii") + nl)
    return b"".join(out)


def split_header_block(block: bytes, keep: set[str]) -> tuple[bytes, bytes]:
    """Split a header block into (fields named in ``keep``, all the others), bytes unchanged."""
    mine: list[bytes] = []
    rest: list[bytes] = []
    for name, s, e in _field_spans(block):
        (mine if name.decode("ascii", "replace") in keep else rest).append(block[s:e])
    return b"".join(mine), b"".join(rest)


def _canonical(key: str) -> str:
    if key == "mime-version":
        return "MIME-Version"
    if key == "content-id":
        return "Content-ID"
    return "-".join(w.capitalize() for w in key.split("-"))


def content_type_value(part: Part, charset: str | None) -> str:
    """The part's Content-Type value with its charset parameter set to ``charset``."""
    msg = Message()
    msg["Content-Type"] = part.headers.get("content-type", "text/plain")
    if charset is not None:
        msg.set_param("charset", charset)
    value = str(msg["Content-Type"])
    return value if value.isascii() else value.encode("ascii", "replace").decode("ascii")


def leaf_changes(part: Part, cte: str, charset: str | None) -> dict[str, str | None]:
    """The header fields a leaf part whose body was rebuilt needs changed: the charset
    parameter when it is now ``charset`` (None: as it was), the Content-Transfer-Encoding
    when it is now ``cte``."""
    changes: dict[str, str | None] = {}
    if charset is not None:
        changes["content-type"] = content_type_value(part, charset)
    if cte != part.cte:
        changes["content-transfer-encoding"] = cte
    return changes


def rebuilt_leaf(raw: bytes, part: Part, body: bytes, changes: dict[str, str | None], nl: bytes) -> bytes:
    """A leaf part of ``raw`` with its header fields changed (:func:`edit_headers`; the top
    level gains MIME-Version, or readers ignore the Content-* fields), its blank line and
    ``body``."""
    headers = raw[part.start : part.header_end]
    if changes:
        if part.parent is None and "mime-version" not in {k.lower() for k in part.headers.keys()}:
            changes = {**changes, "mime-version": "1.0"}
        headers = edit_headers(headers, changes, nl)
    return headers + raw[part.header_end : part.body_start] + body
