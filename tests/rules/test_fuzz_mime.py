"""The MIME path under fuzzing (Hypothesis): whatever bytes arrive, the rules decide, the
signature step answers, and neither raises nor runs past its budget.

Two generators: raw bytes (around a few real header lines), and messages built from the
pieces attacks use — nested multiparts with odd boundaries, every transfer encoding, charset
labels Python knows and does not know (UTF-7, HZ, ISO-2022 …), attachments named like the
documents the readers open, with random contents. ``CORPUS`` holds inputs that once broke
something, replayed every run.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mailwarden.rules import ACTIONS, RulesSettings, evaluate, load_policy
from mailwarden.rules.mail import Mail
from mailwarden.signatures import apply_signature

from tests.rules.rulesutil import COMPANY, CTX
from tests.signatures.sigkit import ZHANG, sigs

FUZZ = settings(max_examples=400, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_POLICY = None
_SIGS = None


def _check(raw: bytes) -> None:
    global _POLICY, _SIGS
    if _POLICY is None:
        _POLICY = load_policy(COMPANY, RulesSettings(budget_ms=2000))
        _SIGS = sigs()
    mail = Mail(raw)
    d = evaluate(_POLICY, raw, CTX, mail=mail)
    assert d.action in ACTIONS
    assert all(f.rule != "EVALUATION_ERROR" for f in d.findings), d.findings  # a bug, caught
    result = apply_signature(raw, _SIGS, ZHANG, mail=mail)  # never raises, by contract
    assert result.message or result.pieces or result.untouched_reason


CORPUS = [
    # a 7-bit body invalid in its declared stateful charset broke the signature step
    b"Subject: x\r\nContent-Type: text/plain; charset=utf-7\r\n\r\nPrice +!!! here\r\n",
    b"Subject: x\r\nContent-Type: text/plain; charset=hz-gb-2312\r\n\r\n~{<:Ky~\r\n",
    # ... and so did broken base64, UTF-16 with an odd byte (not encodable back), an HTML body
    # in a charset Python does not know
    b"Content-Transfer-Encoding: base64\r\n\r\n/",
    b"Content-Type: text/plain; charset=utf-16\r\n\r\n\x00\x00\x00\x00\x80",
    b"MIME-Version: 1.0\nContent-Type: text/html; charset=x-unknown\n\n",
    b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\n----\r\n",
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\n--a--\r\n",
]

_HEAD = st.sampled_from([b"", b"Subject: q\r\n", b"MIME-Version: 1.0\r\n",
                         b"Content-Type: multipart/mixed; boundary=b\r\n",
                         b"Content-Transfer-Encoding: base64\r\n", b"Content-Type: text/plain; charset=utf-7\r\n"])


@FUZZ
@given(head=st.lists(_HEAD, max_size=4), body=st.binary(max_size=3000))
@example(head=[], body=b"")
def test_raw_bytes(head: list[bytes], body: bytes) -> None:
    _check(b"".join(head) + b"\r\n" + body)


for _raw in CORPUS:
    test_raw_bytes = example(head=[], body=_raw)(test_raw_bytes)
del _raw

_CHARSETS = st.sampled_from(["utf-8", "gb2312", "big5", "utf-7", "hz-gb-2312", "iso-2022-jp", "utf-16",
                             "x-unknown", "", "us-ascii", "koi8-r", "\"utf-8\"", "utf-8''"])
_CTES = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode"])
_NAMES = st.sampled_from([None, "a.txt", "q.xlsx", "d.docx", "p.pdf", "z.zip", "f.eml", "x.rar",
                          "=?utf-8?b?5oql5Lu3Lnhsc3g=?=", "a.csv", "b.html"])
_TYPES = st.sampled_from(["text/plain", "text/html", "application/octet-stream", "application/pdf",
                          "application/zip", "message/rfc822", "image/png", "multipart/encrypted",
                          "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"])
_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)


def _encode(data: bytes, cte: str) -> bytes:
    if cte == "base64":
        return base64.encodebytes(data)
    if cte == "quoted-printable":
        import quopri  # noqa: PLC0415

        return quopri.encodestring(data)
    return data


@st.composite
def _leaf(draw: st.DrawFn) -> bytes:
    ctype, charset, cte, name = draw(_TYPES), draw(_CHARSETS), draw(_CTES), draw(_NAMES)
    text = draw(_TEXT)
    try:
        data = text.encode(charset.strip("\"'") or "ascii")
    except (LookupError, UnicodeEncodeError):
        data = text.encode("utf-8")
    if draw(st.booleans()):
        data = draw(st.binary(max_size=400))
    head = f"Content-Type: {ctype}; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n"
    if name is not None:
        head += f'Content-Disposition: {draw(st.sampled_from(["attachment", "inline"]))}; filename="{name}"\r\n'
    return head.encode() + b"\r\n" + _encode(data, cte)


def _multipart(children: list[bytes], boundary: str, close: bool) -> bytes:
    out = f"Content-Type: multipart/{'mixed'}; boundary=\"{boundary}\"\r\n\r\npreamble\r\n".encode()
    for c in children:
        out += f"--{boundary}\r\n".encode() + c + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return out


_BOUNDARIES = st.sampled_from(["b", "b1", "=_x", "a b", "--", "b\"", ""])
_ENTITY = st.recursive(
    _leaf(),
    lambda inner: st.builds(_multipart, st.lists(inner, max_size=4), _BOUNDARIES, st.booleans()),
    max_leaves=12,
)


@FUZZ
@given(subject=_TEXT, entity=_ENTITY, crlf=st.booleans())
def test_structured_messages(subject: str, entity: bytes, crlf: bool) -> None:
    raw = (f"From: Tom <sales@brightlight.cn>\r\nTo: buyer@acme-imports.com\r\nSubject: {subject}\r\n"
           "MIME-Version: 1.0\r\n").encode("utf-8", "surrogateescape") + entity
    if not crlf:
        raw = raw.replace(b"\r\n", b"\n")
    _check(raw)


@pytest.mark.parametrize("raw", CORPUS)
def test_corpus(raw: bytes) -> None:
    _check(raw)
