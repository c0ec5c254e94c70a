"""8-bit text that declares no charset (swaks and many scripts send it) keeps its characters:
the signed part says which charset it is written in."""

from __future__ import annotations

import email
import email.policy

import pytest
from mailwarden.signatures import SignatureCompany, SignatureSettings, SignatureUser, apply_signature, load_signatures

COMPANY = SignatureCompany(name="Bright Lighting", domains=("company.test",), official_phones=(), official_handles=())
ZHANG = SignatureUser(login="zhang", name="Zhang San", title=None, phone=None, team=None, role="sales")
TEXT = "您好，附件是报价单。价格：USD 12。"


@pytest.mark.parametrize("codec", ["utf-8", "gbk"])
@pytest.mark.parametrize("content_type", ["", "Content-Type: text/plain\r\n"])
def test_undeclared_chinese_text_is_declared_and_readable_after_signing(codec, content_type):
    raw = (f"From: zhang@company.test\r\nTo: max@buyer.test\r\nSubject: quote\r\n{content_type}\r\n".encode()
           + (TEXT + "\r\n").encode(codec))
    result = apply_signature(raw, load_signatures(SignatureSettings(), COMPANY), ZHANG)
    signed = email.message_from_bytes(result.message, policy=email.policy.default)
    assert signed.get_content_charset() == "utf-8"
    body = signed.get_content()
    assert body.startswith(TEXT) and "Zhang San" in body


def test_declared_charset_is_kept():
    raw = ("From: zhang@company.test\r\nSubject: quote\r\nContent-Type: text/plain; charset=gb2312\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + (TEXT + "\r\n").encode("gbk")
    result = apply_signature(raw, load_signatures(SignatureSettings(), COMPANY), ZHANG)
    signed = email.message_from_bytes(result.message, policy=email.policy.default)
    assert signed.get_content_charset() in ("gb2312", "gbk") and signed.get_content().startswith(TEXT)
