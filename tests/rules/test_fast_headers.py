"""Header fast paths against what they replaced: the memoised address-header parse equals
``email.utils.getaddresses`` on every call (first and remembered), and the ASCII shortcut of
``decode_header_value`` decodes as the per-character surrogate scan did."""

from __future__ import annotations

import email.utils
import random

from mailwarden.rules.mail import segments as message
from mailwarden.rules.mail.charset import decode_bytes

_BITS = ["Tom", " ", "<", ">", "sales@brightlight.cn", "buyer@ACME-imports.com ", ",", ";", ":", "\"",
         "\"Li, Tom\"", "(comment)", "john.acme@gmail.com", "undisclosed-recipients:;", "@", "x@", "@y",
         "=?utf-8?b?5p2O5rGk?=", "李汤姆", "\\", "group:", "a@b.c", "\t", "Ünïcode <u@x.de>"]


def _reference(raw: str) -> tuple[list[str], str]:
    try:
        pairs = email.utils.getaddresses([raw])
    except Exception:  # noqa: BLE001
        pairs = []
    return ([a.strip().lower() for _, a in pairs if "@" in a], " ".join(n for n, _ in pairs if n))


def test_address_memo_equals_getaddresses() -> None:
    rng = random.Random(61)
    values = ["".join(rng.choice(_BITS) for _ in range(rng.randint(0, 14))) for _ in range(1500)]
    values.append("x" * 1200 + " <long@example.com>")  # too long to remember
    for _ in range(3):  # first calls, then remembered answers
        for v in values:
            addrs, names = message._address_list(v)
            assert (list(addrs), names) == _reference(v), v
    assert len(message._address_memo) <= 2048


def _reference_decode(value: str) -> str:
    value = value.replace("\r", "").replace("\n", "")
    if any("\udc80" <= c <= "\udcff" for c in value):
        value, _ok = decode_bytes(value.encode("utf-8", "surrogateescape"), None)
    return value


def test_decode_header_ascii_shortcut() -> None:
    rng = random.Random(62)
    raw_bits = [b"Tom ", b"\xe6\x9d\x8e", b"\xc0\xc7", b"=?utf-8?b?5p2O5rGk?=", b"\r\n ", b"plain", b"\xff"]
    for _ in range(3000):
        raw = b"".join(rng.choice(raw_bits) for _ in range(rng.randint(0, 8)))
        value = raw.decode("utf-8", "surrogateescape")
        if "=?" in value:
            continue  # the encoded-word path is unchanged
        assert message.decode_header_value(value) == _reference_decode(value).strip(), raw
