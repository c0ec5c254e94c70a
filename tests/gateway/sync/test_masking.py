"""The masked rendition of inbound mail: private contacts masked in the text parts, every
other byte kept, and the result a message the standard library and the mail model read with
the same structure."""

from __future__ import annotations

import base64
import email
import email.policy
import html
import importlib.util
import tracemalloc
from email.message import EmailMessage, Message

import pytest
from mailwarden.gateway.sync.masker import apply
from mailwarden.gateway.sync.masking import Masker, masked_rendition
from mailwarden.rules import CompanyProfile, RulesSettings
from mailwarden.rules.mail import Mail

COMPANY = CompanyProfile(
    name="Bright Lighting",
    domains=("brightlighting.com",),
    official_phones=("+86 574 8888 0000", "+86 139 0574 0000"),
    official_handles=("wechat:BrightLightingCN",),
)


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker.build(COMPANY, RulesSettings())


def _message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.get("frm", "Hans Weber <hans@acme-lighting.de>")
    msg["To"] = "sales@brightlighting.com"
    msg["Subject"] = "RE: LED panels"
    msg["Message-ID"] = "<m1@acme-lighting.de>"
    return msg


def _bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=email.policy.SMTP)


def _shape(msg: Message) -> list[tuple[str, str | None]]:
    return [(p.get_content_type(), p.get_content_disposition()) for p in msg.walk()]


def _model_shape(raw: bytes) -> list[str]:
    """Content types of the mail model's structure, embedded messages scanned as well."""
    out = []
    for part in Mail(raw).structure.walk():
        out.append(part.ctype)
        if part.ctype == "message/rfc822":
            out.extend(_model_shape(raw[part.body_start : part.end]))
    return out


def _texts(msg: Message) -> list[str]:
    """Every text part's decoded text that is not an attachment (HTML unescaped as well)."""
    out = []
    for part in msg.walk():
        if part.get_content_maintype() == "text" and part.get_content_disposition() != "attachment":
            text = part.get_content()
            out.append(html.unescape(text) if part.get_content_subtype() == "html" else text)
    return out


def _attachments(msg: Message) -> list[bytes]:
    return [p.get_payload(decode=True) for p in msg.walk()
            if not p.is_multipart() and p.get_content_type() != "message/rfc822"
            and (p.get_content_disposition() == "attachment" or p.get_content_maintype() != "text")]


def _rendition(raw: bytes, masker: Masker, hidden: list[str], shown: list[str] = ()) -> tuple[bytes, list[str]]:
    """Check the rendition as every test does; returns it and its decoded texts."""
    out = masked_rendition(raw, masker=masker)
    assert out is not None
    before = email.message_from_bytes(raw, policy=email.policy.default)
    after = email.message_from_bytes(out, policy=email.policy.default)
    assert _shape(after) == _shape(before)
    assert _model_shape(out) == _model_shape(raw)
    assert _attachments(after) == _attachments(before)
    assert all(not p.defects for p in after.walk())
    texts = _texts(after)
    joined = "\n".join(texts).replace(" ", "").replace("%20", "")
    original = "\n".join(_texts(before)).replace(" ", "").replace("%20", "")
    for contact in hidden:
        needle = contact.replace(" ", "")
        assert needle in original, contact  # the test's message has it
        assert needle not in joined, contact
    for keep in shown:
        assert keep.replace(" ", "") in joined, keep
    assert len(texts) == len(_texts(before))
    if importlib.util.find_spec("mailwarden.gateway.imap") is not None:
        _facts_consistent(raw, out)
    return out, texts


def _facts_consistent(raw: bytes, out: bytes) -> None:
    """What the IMAP side serves of the rendition adds up: its sizes are of these bytes, its
    BODYSTRUCTURE has the original's parts."""
    from mailwarden.gateway.imap.bodystructure import describe  # noqa: PLC0415

    facts, original = describe(out), describe(raw)
    assert facts.size == len(out) and facts.lines == out.count(b"\n")
    assert [(p.kind, p.ctype, p.subtype) for p in facts.root.walk()] == \
        [(p.kind, p.ctype, p.subtype) for p in original.root.walk()]
    for part in facts.root.walk():
        assert 0 <= part.start <= part.body_start <= part.end <= len(out)
        if part.kind == "text":
            assert part.lines == out.count(b"\n", part.body_start, part.end)
        for child in part.children:
            assert part.body_start <= child.start and child.end <= part.end


# ------------------------------------------------------------------ how contacts show


@pytest.mark.parametrize(("text", "masked"), [
    ("手机 13812345678", "手机 138****5678"),
    ("Call me on +86 138 0013 8000 please", "Call me on +86 138 **** 8000 please"),
    ("mobile +49 171 1234567", "mobile +49 171 ***4567"),
    ("微信: wx_abcd88", "微信: wx_****88"),
    ("write to mary.smith@gmail.com", "write to ma****@gmail.com"),
    ("WhatsApp: +49 171 1234567", "WhatsApp: +49 171 ***4567"),
    ("QQ: 123456789", "QQ: 123****89"),
    ("Line ID: zhang_line", "Line ID: zha****ne"),
    ("wa.me/8613800138000", "wa.me/86138****8000"),
    ("一三八零零一三八零零零 是我手机", "一三八****八零零零 是我手机"),
    ("mary at gmail dot com", "ma**** at gmail dot com"),
])
def test_contacts_show_masked_as_agreed(masker: Masker, text: str, masked: str) -> None:
    assert apply(text, masker.find(text)) == masked


@pytest.mark.parametrize("text", [
    "Our office: +86 574 8888 0000, WeChat: BrightLightingCN",   # the company's own
    "Mobile +86 139 0574 0000",                                   # an official mobile
    "hans@acme-lighting.de, sales@brightlighting.com",            # business addresses
    "Order No. 13800138000, HS 9405.40.90, container MSCU1234567",
    "Tel: +86 574 8765 4321",                                     # the customer's office line
    "Please send 2000 pcs by 2024-05-06.",
])
def test_what_is_not_private_is_not_masked(masker: Masker, text: str) -> None:
    assert masker.find(text) == {}


def test_landlines_masked_when_asked() -> None:
    masker = Masker.build(COMPANY, RulesSettings(), mask_landlines=True)
    assert apply("Tel: +86 574 8765 4321", masker.find("Tel: +86 574 8765 4321")) == "Tel: +86 574 **** 4321"


def test_a_policy_without_detectors_is_refused() -> None:
    from mailwarden.rules.policy import build_policy  # noqa: PLC0415

    with pytest.raises(ValueError, match="load_policy"):
        Masker(build_policy(COMPANY, RulesSettings()))


# ------------------------------------------------------------------ messages


def test_nothing_private_gives_none(masker: Masker) -> None:
    msg = _message()
    msg.set_content("Dear Sir,\nplease quote 2000 pcs for order No. 13800138000.\n\nBest regards\n"
                    "Hans Weber, hans@acme-lighting.de\n\n"
                    "Our office +86 574 8888 0000, WeChat BrightLightingCN (Bright Lighting)\n")
    msg.add_attachment(b"13800138000 wx_abcd88 mary@gmail.com", maintype="application",
                       subtype="octet-stream", filename="data.bin")
    assert masked_rendition(_bytes(msg), masker=masker) is None


def test_gbk_8bit_keeps_its_charset_and_encoding(masker: Masker) -> None:
    msg = _message()
    msg.set_content("您好！\n我的手机：13800138000，微信号：zhang_wx88，私人邮箱 zhangsan@163.com\n"
                    "公司电话 +86 574 8888 0000\n", charset="gbk", cte="8bit")
    raw = _bytes(msg)
    out, texts = _rendition(raw, masker, ["13800138000", "zhang_wx88", "zhangsan@163.com"],
                            ["138****8000", "zha****88", "zh****@163.com", "+86 574 8888 0000"])
    after = email.message_from_bytes(out, policy=email.policy.default)
    assert after.get_content_charset() == "gbk"
    assert after["Content-Transfer-Encoding"] == "8bit"
    head = raw[: raw.index(b"\r\n\r\n")]
    assert out.startswith(head + b"\r\n\r\n")  # not one header byte changed
    assert "您好！" in texts[0]


def test_big5_base64(masker: Masker) -> None:
    msg = _message()
    msg.set_content("您好，這是我的手機 +86 138 0013 8000，QQ：987654321。\n", charset="big5", cte="base64")
    out, texts = _rendition(_bytes(msg), masker, ["+86 138 0013 8000", "987654321"],
                            ["+86 138 **** 8000", "987****21"])
    after = email.message_from_bytes(out, policy=email.policy.default)
    assert after.get_content_charset() == "big5"
    assert after["Content-Transfer-Encoding"] == "base64"
    assert "這是我的手機" in texts[0]


def test_utf8_quoted_printable(masker: Masker) -> None:
    msg = _message()
    msg.set_content("Grüße aus München! Mein Handy: +49 171 1234567, WhatsApp: +49 160 7654321\n",
                    charset="utf-8", cte="quoted-printable")
    out, texts = _rendition(_bytes(msg), masker, ["1711234567", "1607654321"], ["Grüße aus München"])
    after = email.message_from_bytes(out, policy=email.policy.default)
    assert after["Content-Transfer-Encoding"] == "quoted-printable"


def test_utf8_8bit_with_telegram_and_line(masker: Masker) -> None:
    msg = _message()
    msg.set_content("Hi! 联系我 13800138000 or Telegram: @hans_weber_tg, Line ID: hansline88\n",
                    charset="utf-8", cte="8bit")
    _rendition(_bytes(msg), masker, ["13800138000", "hans_weber_tg", "hansline88"], ["联系我"])


def test_undeclared_8bit_text_becomes_utf8_quoted_printable(masker: Masker) -> None:
    body = "手机：13800138000\r\n".encode("gbk")
    raw = (b"From: a@b.test\r\nTo: sales@brightlighting.com\r\nSubject: x\r\n"
           b"Content-Transfer-Encoding: 7bit\r\n\r\n" + body)
    out = masked_rendition(raw, masker=masker)
    assert out is not None
    after = email.message_from_bytes(out, policy=email.policy.default)
    assert after.get_content_charset() == "utf-8"
    assert after["Content-Transfer-Encoding"] == "quoted-printable"
    assert after["MIME-Version"] == "1.0"
    assert after.get_content().replace("\r\n", "\n") == "手机：138****8000\n"
    assert after["Subject"] == "x"


def test_html_text_links_and_entities(masker: Masker) -> None:
    msg = _message()
    msg.set_content(
        '<html><head><title>Call 13900001111</title></head><body>'
        '<p>手机：<b>&#49;&#x33;8 0013 8000</b></p>'
        '<p><a href="tel:+86%20137%200013%208000">call me</a> '
        '<a href="mailto:mary&#46;smith@gmail.com" title="mary.smith@gmail.com">mary&#46;smith&#64;gmail.com</a> '
        '<a href="weixin://contacts/profile/zhang_wx88">WeChat</a> '
        '<a href="https://wa.me/8613600136000">WhatsApp</a></p>'
        '<!-- old: 13500135000 -->'
        '<p>Office: +86 574 8888 0000 &amp; sales@brightlighting.com</p></body></html>\n',
        subtype="html", charset="utf-8", cte="quoted-printable")
    out, texts = _rendition(_bytes(msg), masker,
                            ["13900001111", "13800138000", "13700138000", "mary.smith@gmail.com", "zhang_wx88",
                             "8613600136000", "13500135000"],
                            ["Office: +86 574 8888 0000 & sales@brightlighting.com", "138****8000",
                             "ma****@gmail.com"])
    source = texts[0]
    assert 'href="tel:+86%20137%20****%208000"' in source  # masked through its escapes
    assert source.count("<a ") == 4 and "</b></p>" in source  # the markup is as it was


def test_alternative_attachments_and_embedded_message(masker: Masker) -> None:
    inner = _message()
    inner.set_content("Forwarded: my new mobile 13600136000, WeChat: old_friend99\n")
    inner.add_alternative("<p>my new mobile 13600136000, WeChat: old_friend99</p>\n", subtype="html")
    msg = _message()
    msg.set_content("See below. 手机 13800138000\n", charset="utf-8")
    msg.add_alternative("<p>See below. 手机 13800138000</p>\n", subtype="html", charset="utf-8")
    msg.add_attachment(b"%PDF-1.4 13800138000 " + bytes(range(256)) * 40, maintype="application",
                       subtype="pdf", filename="quote.pdf")
    msg.add_attachment("contacts: 13800138000, wx_abcd88\n", filename="contacts.txt")
    msg.add_attachment(inner, filename="fwd.eml")
    raw = _bytes(msg)
    out, texts = _rendition(raw, masker, ["13800138000", "13600136000", "old_friend99"])
    assert len(texts) == 4
    after = email.message_from_bytes(out, policy=email.policy.default)
    txt = [p for p in after.walk() if p.get_filename() == "contacts.txt"][0]
    assert "contacts: 13800138000, wx_abcd88" in txt.get_content()  # an attachment is left as it is
    # The attachments' own bytes are where they were, unchanged.
    for part in Mail(raw).structure.walk():
        if part.disposition == "attachment" and part.ctype != "message/rfc822":
            assert raw[part.start : part.end] in out


def test_embedded_message_in_base64(masker: Masker) -> None:
    inner = b"From: x@y.test\r\nSubject: old\r\n\r\nmy mobile 13800138000\r\n"
    raw = (b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
           b"--BB\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
           b"--BB\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(inner).replace(b"\n", b"\r\n") + b"--BB--\r\n")
    out = masked_rendition(raw, masker=masker)
    assert out is not None
    part = Mail(out).structure.children[1]
    assert part.cte == "base64"
    embedded = base64.b64decode(out[part.body_start : part.end])
    assert embedded == inner.replace(b"13800138000", b"138****8000")


@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\xff" * 100,
    b"Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64 13800138000",
    b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nmobile 13800138000",
    b"Content-Type: multipart/alternative\r\n\r\nno boundary 13800138000",
    b"Content-Type: text/html\r\n\r\n<a href='tel:13800138000' <b <!-- 13900139000",
])
def test_malformed_mail_never_raises(masker: Masker, raw: bytes) -> None:
    out = masked_rendition(raw, masker=masker)
    if out is not None:
        assert email.message_from_bytes(out) is not None


def test_unknown_charset_still_masked(masker: Masker) -> None:
    raw = b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nmobile 13800138000\r\n"
    out = masked_rendition(raw, masker=masker)
    assert out is not None and b"13800138000" not in out


def test_big_message_is_not_copied_when_nothing_is_masked(masker: Masker) -> None:
    line = b"QUJD" * 19 + b"\r\n"
    attachment = line * (50 * 1024 * 1024 // len(line))
    head = (b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
            b"--BB\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    tail = (b"\r\n--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=big.bin\r\n\r\n" + attachment + b"--BB--\r\n")
    text = ("Dear Sir, please find the drawings attached. " * 100).encode()
    plain = head + text + tail
    private = head + text + "my mobile 13800138000".encode() + tail
    tracemalloc.start()
    try:
        assert masked_rendition(plain, masker=masker) is None
        _size, peak = tracemalloc.get_traced_memory()
        assert peak < 2 * 1024 * 1024  # the attachment was neither decoded nor copied
        tracemalloc.reset_peak()
        out = masked_rendition(private, masker=masker)
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out is not None and b"138****8000" in out
    assert peak < len(private) + 4 * 1024 * 1024  # the one copy that is the rendition
    assert out.endswith(tail) and len(out) == len(private)


@pytest.mark.parametrize(("source", "masked"), [
    ("<p>手机 138&#48;&#x30;138000</p>", "<p>手机 138****8000</p>"),
    ('<a href="tel:%2B86%31%33%38%30%30%31%33%38%30%30%30">x</a>', '<a href="tel:%2B86138****8000">x</a>'),
    ("<tr><td>Zhang</td><td>13800138000</td></tr><tr><td>Li</td><td>13900139000</td></tr>",
     "<tr><td>Zhang</td><td>138****8000</td></tr><tr><td>Li</td><td>139****9000</td></tr>"),
    ("<p>WeChat: <b>wx_abcd88</b> &amp; more</p>", "<p>WeChat: <b>wx_****88</b> &amp; more</p>"),
    ('<img src="cid:13800138000@x" alt="13800138000">', '<img src="cid:13800138000@x" alt="138****8000">'),
])
def test_html_masked_in_its_source(masker: Masker, source: str, masked: str) -> None:
    from mailwarden.gateway.sync.maskhtml import HtmlText  # noqa: PLC0415

    text = HtmlText(source)
    assert text.apply(masker.find(text.text)) == masked
