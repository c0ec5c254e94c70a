"""Message model: charsets, HTML, attachments, archives, undecodable parts, malformed input."""

from __future__ import annotations

import io
import os
import zipfile
from email.message import EmailMessage

import pytest

from mailwarden.rules import RulesSettings, evaluate, load_policy
from mailwarden.rules.engine import parse_only
from tests.rules.rulesutil import COMPANY, CTX, make_message

SECRET_ZH = "我的私人微信：tom_8888，以后直接联系我"


def _raw_text_message(payload: bytes, charset: str | None, cte: str = "8bit",
                      subtype: str = "plain") -> bytes:
    ct = f"text/{subtype}" + (f"; charset={charset}" if charset else "")
    head = (f"From: sales@brightlight.cn\r\nTo: buyer@acme-imports.com\r\nSubject: test\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n")
    return head.encode() + payload


@pytest.mark.parametrize(
    "text,codec,label",
    [
        (SECRET_ZH, "gbk", "gbk"),
        (SECRET_ZH, "gb2312", "gb2312"),
        (SECRET_ZH, "gbk", "gb2312"),  # GBK content declared as GB2312 (common)
        (SECRET_ZH, "gb18030", "gb18030"),
        ("我的私人微信：tom_8888，以後直接聯繫我", "big5", "big5"),
        (SECRET_ZH, "gbk", "iso-8859-1"),  # mislabelled
        (SECRET_ZH, "gbk", None),  # no charset at all
        (SECRET_ZH, "utf-8", "gbk"),  # UTF-8 labelled as GBK
        ("我的私人微信：tom_8888，以後直接聯繫我", "big5", "utf-8"),
    ],
)
def test_charsets_are_decoded(check, text: str, codec: str, label: str | None) -> None:
    d = check(_raw_text_message(text.encode(codec), label))
    assert "PRIVATE_WECHAT" in {f.rule for f in d.findings}, d.findings
    assert "tom_8888" in d.deciding.match


@pytest.mark.parametrize("cte", ["base64", "quoted-printable"])
def test_transfer_encodings(check, cte: str) -> None:
    import base64
    import quopri

    data = SECRET_ZH.encode("gb18030")
    body = base64.encodebytes(data) if cte == "base64" else quopri.encodestring(data)
    assert check(_raw_text_message(body, "gb2312", cte)).action == "block"


def test_gbk_email_message_helper(check) -> None:
    assert check(make_message(SECRET_ZH, charset="gbk")).action == "block"


def test_encoded_word_subject(check) -> None:
    msg = make_message("hello", subject="請轉賬到個人賬戶")
    raw = msg.as_bytes()
    assert b"=?utf-8?" in raw.lower()
    assert "PRIVATE_PAYMENT" in {f.rule for f in check(raw).findings}


def test_html_only_message_with_entities(check) -> None:
    html = "<html><body><p>My&nbsp;new&nbsp;company: <b>Tom &amp; Co</b></p><p>&#24494;&#20449;: tom_8888</p></body></html>"
    d = check(make_message(html=html))
    assert {"DIVERT_BUSINESS", "PRIVATE_WECHAT"} <= {f.rule for f in d.findings}
    assert d.deciding.where == "html"


def test_html_gbk_only(check) -> None:
    d = check(make_message(html=f"<div>{SECRET_ZH}</div>", charset="gbk"))
    assert d.action == "block"


def test_mailto_link_target_is_seen(check) -> None:
    d = check(make_message(html='<p>write <a href="mailto:tom.private@gmail.com">here</a></p>'))
    assert d.deciding.rule == "PRIVATE_EMAIL_FREEMAIL"


def test_undecodable_text_part_is_a_finding(check) -> None:
    junk = bytes(range(0, 32)) * 40 + os.urandom(2000)
    d = check(_raw_text_message(junk, "utf-8"))
    assert "ATTACHMENT_UNDECODABLE" in {f.rule for f in d.findings}
    assert d.findings[0].category == "attachment"


def _docx(text: str) -> bytes:
    import docx

    doc = docx.Document()
    doc.add_paragraph(text)
    table = doc.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "WhatsApp"
    table.rows[0].cells[1].text = "+86 139 0013 9000"
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _xlsx(rows: list[list[str]]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _pdf(text: str, password: str | None = None) -> bytes:
    import pypdf
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    w = pypdf.PdfWriter()
    page = w.add_blank_page(612, 792)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                             NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): w._add_object(font)})})
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 72 700 Td ({text}) Tj ET".encode("latin-1"))
    page[NameObject("/Contents")] = w._add_object(stream)
    if password:
        w.encrypt(password)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _attach(msg: EmailMessage, data: bytes, filename: str, mime: str = "application/octet-stream") -> None:
    maintype, subtype = mime.split("/")
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)


def test_docx_attachment(check) -> None:
    msg = make_message("see attached")
    _attach(msg, _docx("Payment to my personal account please"), "quote.docx")
    d = check(msg)
    wheres = {(f.rule, f.where) for f in d.findings}
    assert ("PRIVATE_PAYMENT", "attachment:quote.docx") in wheres
    assert ("PRIVATE_WHATSAPP", "attachment:quote.docx") in wheres


def test_xlsx_contact_spreadsheet(check) -> None:
    rows = [["Customer", "Contact", "Email", "Mobile"]] + [
        [f"Firm {i}", f"Mr {i}", f"p{i}@firm{i}.com", f"+49 30 {i:07d}"] for i in range(30)]
    msg = make_message("list")
    _attach(msg, _xlsx(rows), "customers.xlsx")
    rules = {f.rule for f in check(msg).findings}
    assert {"CUSTOMER_LIST_SPREADSHEET", "CUSTOMER_LIST_EXPORT"} <= rules


def test_pdf_attachment_and_encrypted_pdf(check) -> None:
    msg = make_message("see attached")
    _attach(msg, _pdf("my wechat: tom_8888"), "pi.pdf", "application/pdf")
    _attach(msg, _pdf("secret", password="pw"), "locked.pdf", "application/pdf")
    d = check(msg)
    wheres = {(f.rule, f.where) for f in d.findings}
    assert ("PRIVATE_WECHAT", "attachment:pi.pdf") in wheres
    assert ("ATTACHMENT_ENCRYPTED", "attachment:locked.pdf") in wheres


def test_zip_one_level_and_encrypted_member(check) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("notes.txt", "my QQ: 12345678")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "转账到个人账户".encode("gbk"))
        z.writestr("inner.zip", inner.getvalue())
        z.writestr("secret.xlsx", b"xx")
    data = bytearray(buf.getvalue())
    # zipfile cannot write encrypted members: set the "encrypted" flag bit by hand.
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = 0
        while (pos := data.find(sig, pos)) != -1:
            name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at:name_at + 11] == b"secret.xlsx":
                data[pos + flag_at] |= 0x1
            pos += 4
    msg = make_message("files")
    _attach(msg, bytes(data), "docs.zip", "application/zip")
    d = check(msg)
    rules = {(f.rule, f.where) for f in d.findings}
    assert ("PRIVATE_PAYMENT", "attachment:docs.zip/readme.txt") in rules
    assert ("ATTACHMENT_ENCRYPTED", "attachment:docs.zip/secret.xlsx") in rules
    assert ("INSPECTION_LIMIT", "attachment:docs.zip/inner.zip") in rules  # a nested archive: held
    assert "PRIVATE_QQ" not in {r for r, _ in rules}


def test_corrupt_docx_and_rar_are_findings(check) -> None:
    msg = make_message("files")
    _attach(msg, b"PK\x03\x04 not really", "broken.docx")
    _attach(msg, b"Rar!\x1a\x07\x00", "old.rar")
    rules = {(f.rule, f.where) for f in check(msg).findings}
    assert ("ATTACHMENT_UNDECODABLE", "attachment:broken.docx") in rules
    assert ("ATTACHMENT_UNINSPECTED", "attachment:old.rar") in rules


def test_forwarded_eml_attachment(check) -> None:
    inner = make_message("Please pay to my personal account", subject="inner")
    msg = make_message("FYI")
    msg.add_attachment(inner)
    d = check(msg)
    assert any(f.rule == "PRIVATE_PAYMENT" and f.where.startswith("attachment:") for f in d.findings)


def test_images_are_not_findings(check) -> None:
    msg = make_message("photo")
    msg.add_attachment(os.urandom(500), maintype="image", subtype="png", filename="a.png")
    assert check(msg).findings == []


def test_encrypted_message_is_a_finding(check) -> None:
    raw = (b"From: a@brightlight.cn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted; "
           b"protocol=\"application/pgp-encrypted\"; boundary=XX\r\n\r\n--XX\r\nContent-Type: "
           b"application/pgp-encrypted\r\n\r\nVersion: 1\r\n--XX\r\nContent-Type: application/"
           b"octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nxx\r\n--XX--\r\n")
    d = check(raw)
    assert d.deciding.rule == "ATTACHMENT_ENCRYPTED" and d.action == "quarantine"


MALFORMED = {
    "empty": b"",
    "no_headers": b"just some words my wechat: tom_8888\n",
    "garbage": bytes(range(256)) * 50,
    "nul_bytes": b"Subject: \x00\x00\r\n\r\n\x00\x00\x00",
    "bad_header_encoding": b"Subject: =?gbk?B?!!!notbase64?=\r\nFrom: \xff\xfe<<>>@@\r\n\r\nbody\r\n",
    "unknown_charset": b"Content-Type: text/plain; charset=x-unknown-42\r\n\r\nhello\xff\r\n",
    "broken_multipart": b"Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhi\r\n--zz",
    "missing_boundary": b"Content-Type: multipart/mixed\r\n\r\nno boundary here\r\n",
    "bad_base64": b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!@@@###\r\n",
    "long_line": b"Subject: x\r\n\r\n" + b"A" * 2_000_000,
    "long_header": b"Subject: " + b"x" * 500_000 + b"\r\n\r\nbody",
    "deep_nesting": b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(60)) + b"Content-Type: text/plain\r\n\r\nx\r\n",
    "8bit_headers": "Subject: 新公司报价\r\nFrom: 汤姆 <tom@brightlight.cn>\r\n\r\n正文".encode("gbk"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_never_crashes(check, name: str) -> None:
    d = check(MALFORMED[name])
    assert d.action in ("allow", "tag", "warn", "flag", "redact", "quarantine", "block")
    assert all(f.rule != "EVALUATION_ERROR" for f in d.findings), d.findings


def test_long_line_with_contact_is_checked_or_quarantined(check) -> None:
    raw = b"Subject: x\r\n\r\n" + b"lorem ipsum " * 150_000 + b"my wechat: tom_8888"
    assert check(raw).action in ("block", "quarantine")


def test_time_budget_quarantines() -> None:
    policy = load_policy(COMPANY, RulesSettings(budget_ms=0.001, budget_ms_per_mb=0))
    d = evaluate(policy, make_message("hello " * 10000).as_bytes(), CTX)
    assert d.action == "quarantine"
    assert d.findings[0].rule == "EVALUATION_TIMEOUT"


def test_parse_only_regions() -> None:
    policy = load_policy(COMPANY, RulesSettings())
    body = "New text\n-- \nTom, Bright Lighting\n\nOn Mon, John wrote:\n> old\n"
    parsed = parse_only(policy, make_message(body).as_bytes())
    regions = [(s.where, s.region) for s in parsed.segments]
    assert ("body", "new") in regions and ("signature", "signature") in regions
    assert ("quoted", "quoted") in regions


def test_raw_8bit_gbk_subject_is_decoded(check) -> None:
    d = check(MALFORMED["8bit_headers"])
    assert ("DIVERT_BUSINESS", "subject") in {(f.rule, f.where) for f in d.findings}


def test_encoded_word_attachment_filename(check) -> None:
    msg = make_message("see attached")
    msg.add_attachment("私下合作".encode("gbk"), maintype="text", subtype="plain", filename="报价单.txt")
    raw = msg.as_bytes()
    d = check(raw)
    assert ("DIVERT_BUSINESS", "attachment:报价单.txt") in {(f.rule, f.where) for f in d.findings}


def test_time_budget_grows_with_size() -> None:
    from mailwarden.rules.engine import budget_for

    s = RulesSettings(budget_ms=200, budget_ms_per_mb=100)
    assert budget_for(s, 10_000) == pytest.approx(201)
    assert budget_for(s, 50_000_000) == pytest.approx(5200)


def test_large_pictures_are_not_parsed_but_the_text_still_is() -> None:
    from mailwarden.rules.mail.segments import without_media
    from tests.rules.rulesutil import photos_message

    data = photos_message()
    assert len(without_media(data)) < 10_000
    policy = load_policy(COMPANY, RulesSettings())
    assert evaluate(policy, data, CTX).action == "block"


def test_a_renamed_attachment_is_still_inspected() -> None:
    from email.message import EmailMessage

    from mailwarden.rules.mail.segments import STRIP_MEDIA_ABOVE, without_media

    m = EmailMessage()
    m["Subject"] = "x"
    m.set_content("see attached\n")
    m.add_attachment(b"a" * (STRIP_MEDIA_ABOVE + 10), maintype="image", subtype="png", filename="customers.csv")
    data = m.as_bytes()
    assert without_media(data) == data
