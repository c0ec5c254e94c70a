"""Any charset Python can decode is text: a clean mail in it is allowed, a finding in it is found.

Messages are built by the email package with the charset declared in the header, and again
the way clients get it wrong (no label, a US-ASCII or Latin-1 label on other bytes, the
charset only in the HTML ``<meta>``).
"""

from __future__ import annotations

from email.header import Header
from email.message import EmailMessage

import pytest

from mailwarden.rules.mail.charset import decode_bytes, html_meta_charset
from tests.rules.rulesutil import make_message

# charset → (clean text, text with a private contact) in a language written in it
TEXTS: dict[str, tuple[str, str]] = {
    "iso-2022-jp": ("お見積書を添付いたします。ご確認のほどよろしくお願いいたします。",
                    "今後は私の個人LINE: tanaka_88 にご連絡ください。"),
    "shift_jis": ("お見積書を添付いたします。ご確認のほどよろしくお願いいたします。",
                  "今後は私の個人LINE: tanaka_88 にご連絡ください。"),
    "euc-jp": ("お見積書を添付いたします。ご確認のほどよろしくお願いいたします。",
               "今後は私の個人LINE: tanaka_88 にご連絡ください。"),
    "koi8-r": ("Прилагаем коммерческое предложение. С уважением, Иван",
               "Пишите мне лично в WhatsApp: +7 916 123 4567"),
    "utf-7": ("Прилагаем предложение. 价格如下，请查收。", "以后请加我的私人微信: zhang_8888"),
    "hz-gb-2312": ("附件是报价单，请查收。", "以后请加我的私人微信: zhang_8888"),
    "gbk": ("附件是报价单，请查收。", "以后请加我的私人微信: zhang_8888"),
    "gb18030": ("附件是报价单，请查收。𠀀", "以后请加我的私人微信: zhang_8888"),
    "big5": ("附件是報價單，請查收。", "以後請加我的私人微信: zhang_8888"),
    "windows-1250": ("Dobrý den, v příloze posíláme nabídku.", "Mein privates WhatsApp: +49 151 2345 6789"),
    "windows-1251": ("Прилагаем коммерческое предложение. С уважением, Иван",
                     "Пишите мне лично в WhatsApp: +7 916 123 4567"),
    "windows-1252": ("Ci-joint notre offre. Grüße, señor. Preço €", "Mi WhatsApp personal: +34 612 345 678"),
    "windows-1253": ("Καλημέρα, σας στέλνουμε την προσφορά.", "WhatsApp: +30 694 123 4567"),
    "windows-1254": ("Merhaba, teklifimiz ektedir. Teşekkürler", "Kişisel WhatsApp: +90 532 123 4567"),
    "windows-1256": ("مرفق عرض الأسعار. مع التحية", "تواصل معي على الواتساب الخاص: +971 50 123 4567"),
}
CHARSETS = sorted(TEXTS)
SHAPES = ("plain", "html", "subject", "attachment")


def _message(text: str, charset: str, shape: str, *, label: str | None = "declared") -> bytes:
    """A message with *text* encoded in *charset*; *label*: ``"declared"`` (the charset in
    the header), None (no charset parameter) or another label to put there."""
    msg = EmailMessage()
    msg["From"] = "Tom <sales@brightlight.cn>"
    msg["To"] = "buyer@acme-imports.com"
    params = {} if label is None else {"charset": charset if label == "declared" else label}
    data = text.encode(charset)
    cte = "7bit" if data.isascii() else "base64"
    if shape == "subject":
        msg["Subject"] = Header(text, charset).encode(maxlinelen=998).replace("\n", "")
        msg.set_content("See the subject.")
    elif shape == "attachment":
        msg["Subject"] = "Note"
        msg.set_content("Our note is attached.")
        msg.add_attachment(data, maintype="text", subtype="plain", filename="note.txt", params=params,
                           cte=cte)
    else:
        msg["Subject"] = "Quotation"
        body = data if shape == "plain" else b"<html><body><p>" + data + b"</p></body></html>"
        msg.set_content(body, maintype="text", subtype=shape, params=params, cte=cte)
    return msg.as_bytes()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("charset", CHARSETS)
def test_clean_mail_in_any_charset_is_allowed(check, charset: str, shape: str) -> None:
    d = check(_message(TEXTS[charset][0], charset, shape))
    assert d.action == "allow", d.findings


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("charset", CHARSETS)
def test_private_contact_in_any_charset_is_found(check, charset: str, shape: str) -> None:
    d = check(_message(TEXTS[charset][1], charset, shape))
    assert "private_contact" in {f.category for f in d.findings}, d.findings
    assert d.action in ("warn", "flag", "redact", "quarantine", "block")


@pytest.mark.parametrize(("charset", "label"), [
    *((cs, label) for cs in ("iso-2022-jp", "euc-jp", "shift_jis", "gbk", "big5", "koi8-r")
      for label in (None, "us-ascii")),
    ("iso-2022-jp", "utf-8"), ("iso-2022-jp", "iso-8859-1"), ("hz-gb-2312", "hz-gb-2312"),
])
def test_unlabelled_or_mislabelled_text_is_read(check, charset: str, label: str | None) -> None:
    clean, risky = TEXTS[charset]
    for shape in ("plain", "attachment"):
        assert check(_message(clean, charset, shape, label=label)).action == "allow", (charset, label, shape)
        found = check(_message(risky, charset, shape, label=label))
        assert "private_contact" in {f.category for f in found.findings}, (charset, label, shape)


@pytest.mark.parametrize("charset", ["iso-2022-jp", "euc-jp", "shift_jis", "gbk", "big5", "koi8-r"])
def test_decoding_without_a_label_gives_the_text(charset: str) -> None:
    for text in TEXTS[charset]:
        assert decode_bytes(text.encode(charset), None) == (text, True)


@pytest.mark.parametrize("charset", ["koi8-r", "windows-1251", "windows-1256"])
def test_latin1_label_on_cyrillic_or_arabic_is_read_in_the_right_script(charset: str) -> None:
    text = TEXTS[charset][0]
    assert decode_bytes(text.encode(charset), "iso-8859-1") == (text, True)


def test_latin1_label_on_western_text_stays_western() -> None:
    text = "Grüße aus München, Señor Peña: le prix est de 12,50 € HT."
    assert decode_bytes(text.encode("cp1252"), "iso-8859-1") == (text, True)


def test_html_meta_charset_is_honoured(check) -> None:
    html = "<html><head><meta http-equiv='Content-Type' content='text/html; charset=iso-2022-jp'></head>" \
           "<body>{}</body></html>"
    assert html_meta_charset(html.format("x").encode()) == "iso-2022-jp"
    for text, expected in ((TEXTS["iso-2022-jp"][0], "allow"), (TEXTS["iso-2022-jp"][1], "block")):
        msg = EmailMessage()
        msg["Subject"] = "Quote"
        msg.set_content(html.format(text).encode("iso-2022-jp"), maintype="text", subtype="html", cte="7bit")
        assert check(msg.as_bytes()).action == expected


def test_utf16_text_with_an_8bit_line_end_is_read() -> None:
    msg = make_message("附件是报价单 Прилагаем", charset="utf-16")
    part = msg.get_payload(decode=True)
    assert decode_bytes(part, "utf-16") == ("附件是报价单 Прилагаем", True)
