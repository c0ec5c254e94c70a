"""MIME insertion per shape: everything but the signed body parts stays byte-identical,
charsets are kept where they can carry the signature, lines stay within limits, and the
message is never wrapped in a new multipart/mixed."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from sigkit import (
    COMPANY, JOSE, LI, MUELLER, PNG_1PX, ZHANG, content, crlf, html_signatures, max_line_length, norm, parse,
    parts_of, sigs, structure, text_of, text_signature,
)

from mailwarden.signatures import SignatureCompany, SignatureSettings, apply_signature, load_signatures, render

HEAD = "From: Zhang Wei <zhangwei@acme.example>\nTo: bob@customer.example\nSubject: Quote\nMessage-ID: <1@acme.example>\nDate: Mon, 1 Jan 2024 10:00:00 +0800\n"


def plain(body: bytes, charset: str, cte: str = "8bit", extra: str = "") -> bytes:
    head = crlf(HEAD + f"MIME-Version: 1.0\nContent-Type: text/plain; charset={charset}{extra}\n"
                f"Content-Transfer-Encoding: {cte}\n\n")
    return head + body


def test_plain_ascii_with_ascii_name_stays_7bit() -> None:
    result = apply_signature(plain(b"Hello Bob,\r\nSee attached.\r\n", "us-ascii", "7bit"), sigs(), JOSE.__class__("a", "Ann Lee"))
    assert result.applied
    assert b"Content-Transfer-Encoding: 7bit" in result.message and b"charset=us-ascii" in result.message
    assert result.message.endswith(b"See attached.\r\n\r\n-- \r\nAnn Lee\r\nACME Trading Co., Ltd.\r\n"
                                   b"Office: +86 571 8888 0000\r\nWeb: www.acme.example\r\n"
                                   b"Official accounts: WeChat: ACME_Official\r\nNo. 1 Wensan Road, Hangzhou, China\r\n")
    # Headers the client wrote are kept byte for byte.
    assert result.message.startswith(crlf(HEAD))


def test_ascii_original_with_chinese_name_becomes_utf8() -> None:
    result = apply_signature(plain(b"Hello Bob\r\n", "us-ascii", "7bit"), sigs(), ZHANG)
    msg = parse(result.message)
    assert msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert text_signature(text_of(msg)).startswith("张伟 | Export Sales Manager")
    assert text_of(msg).startswith("Hello Bob\n")


@pytest.mark.parametrize(("user", "charset"), [(ZHANG, "gbk"), (MUELLER, "gbk"), (JOSE, "utf-8")])
def test_gbk_original_keeps_gbk_if_it_can_carry_the_name(user, charset: str) -> None:
    body = "王经理，您好：\r\n报价单见附件。\r\n".encode("gbk")
    result = apply_signature(plain(body, "gbk"), sigs(), user)
    msg = parse(result.message)
    assert msg.get_content_charset() == charset  # GBK has ü and é (pinyin) but not ñ
    text = text_of(msg)
    assert text.startswith("王经理，您好：\n报价单见附件。\n")
    assert text_signature(text).split("\n")[0].startswith(user.name)
    if charset == "gbk":  # the original bytes are still there, unchanged
        assert body.rstrip(b"\r\n") in result.message


def test_gb2312_label_with_gbk_only_characters_round_trips() -> None:
    body = "镕基说：堃\r\n".encode("gbk")  # 镕 and 堃 are GBK, not GB2312
    result = apply_signature(plain(body, "gb2312"), sigs(), LI)
    assert body.rstrip(b"\r\n") in result.message
    assert b"charset=gb2312" in result.message
    assert "李娜".encode("gb2312") in result.message


def test_big5_original_keeps_big5_when_it_can_carry_the_name() -> None:
    traditional = ZHANG.__class__("zw", "張偉", "業務經理")
    body = "您好，報價如下。\r\n".encode("big5")
    result = apply_signature(plain(body, "big5"), sigs(), traditional)
    msg = parse(result.message)
    assert msg.get_content_charset() == "big5"
    assert text_signature(text_of(msg)).startswith("張偉 | 業務經理")


def test_big5_original_becomes_utf8_when_the_name_is_simplified_chinese() -> None:
    body = "您好，報價如下。\r\n".encode("big5")
    result = apply_signature(plain(body, "big5"), sigs(), ZHANG)  # 张 is not in Big5
    msg = parse(result.message)
    assert msg.get_content_charset() == "utf-8"
    assert text_of(msg).startswith("您好，報價如下。\n")
    assert text_signature(text_of(msg)).startswith("张伟")


def test_base64_and_quoted_printable_parts_keep_their_encoding() -> None:
    body = "Grüße aus Hangzhou\r\n" * 3
    b64 = plain(base64.encodebytes(body.encode("utf-8")).replace(b"\n", b"\r\n"), "utf-8", "base64")
    qp = plain(body.replace("ü", "=C3=BC").replace("ß", "=C3=9F").encode(), "utf-8", "quoted-printable")
    for original, cte in ((b64, "base64"), (qp, "quoted-printable")):
        result = apply_signature(original, sigs(), MUELLER)
        msg = parse(result.message)
        assert msg["Content-Transfer-Encoding"] == cte
        assert text_of(msg).startswith(body.replace("\r\n", "\n"))
        assert text_signature(text_of(msg)).startswith("Jürgen Müller | Vertrieb")
        assert max_line_length(result.message) <= 76


def test_long_lines_are_kept_within_limits() -> None:
    body = ("x" * 1200 + "\r\n").encode()
    result = apply_signature(plain(body, "utf-8", "7bit"), sigs(), ZHANG)
    assert max_line_length(result.message) <= 78
    assert text_of(parse(result.message)).startswith("x" * 1200 + "\n")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 decoding, enough for the test."""
    out: list[str] = []
    buf = ""
    for line in text.split("\n"):
        if line.startswith(" "):
            line = line[1:]
        if line.endswith(" ") and line != "-- ":
            buf += line[:-1] if delsp else line
        else:
            out.append(buf + line)
            buf = ""
    return "\n".join(out)


@pytest.mark.parametrize("delsp", [False, True])
def test_format_flowed_keeps_flow_and_delsp(delsp: bool) -> None:
    long_address = "Room 1801, Building 5, Future Science and Technology City, Yuhang District, Hangzhou, Zhejiang"
    company = SignatureCompany(**{**COMPANY.__dict__, "address": long_address})
    s = load_signatures(SignatureSettings(), company)
    if delsp:
        body = "This paragraph was flowed by the cli \r\nent and continues here.\r\n"
    else:
        body = "This paragraph was flowed by the client \r\nand continues here.\r\n"
    extra = "; format=flowed" + ("; delsp=yes" if delsp else "")
    result = apply_signature(plain(body.encode(), "utf-8", "7bit", extra), s, JOSE)
    msg = parse(result.message)
    assert msg.get_param("format") == "flowed" and (msg.get_param("delsp") == "yes") == delsp
    raw_text = text_of(msg)
    assert all(len(line) <= 78 for line in raw_text.split("\n"))
    text = _unflow(raw_text, delsp)
    assert text.startswith("This paragraph was flowed by the client and continues here.\n\n-- \n")
    assert long_address in text.split("\n")
    assert norm(text.split("-- \n", 1)[1]) == norm(render(s, JOSE, None).text)


def test_html_only_gets_signature_before_body_end_and_no_text_part() -> None:
    html = "<html><head><meta charset=\"utf-8\"></head><body><p>Dear Bob,</p><p>Thanks.</p></body></html>\r\n"
    raw = crlf(HEAD + "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n" + html)
    result = apply_signature(raw, sigs(), ZHANG)
    assert structure(result.message) == ["text/html"]
    out = content(result.message, "text/html")
    assert out.index("<p>Thanks.</p>") < out.index("mailwarden-signature") < out.index("</body>")
    [(_, sig)] = html_signatures(out)
    assert sig == norm(render(sigs(), ZHANG, None).text)


def test_html_only_gets_text_alternative_when_configured() -> None:
    html = "<html><body><p>Dear Bob,</p><blockquote type=\"cite\">old</blockquote></body></html>\r\n"
    raw = crlf(HEAD + "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n" + html)
    s = sigs(add_text_alternative=True)
    result = apply_signature(raw, s, ZHANG)
    assert structure(result.message) == ["multipart/alternative", "text/plain", "text/html"]
    msg = parse(result.message)
    assert msg["Subject"] == "Quote" and msg["Message-ID"] == "<1@acme.example>"
    text = content(result.message, "text/plain")
    assert text.startswith("Dear Bob,\n")
    assert text_signature(text) == html_signatures(content(result.message, "text/html"))[0][1]
    assert "> old" in text
    # Signing again keeps the shape and the single signature.
    again = apply_signature(result.message, s, ZHANG)
    assert structure(again.message) == structure(result.message)
    assert len(html_signatures(content(again.message, "text/html"))) == 1


ALT = """MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset=utf-8

Dear Bob,
Please find the price.

--ALT
Content-Type: text/html; charset=utf-8

<div dir="ltr"><div>Dear Bob,</div><div>Please find the price.</div></div>

--ALT--
"""


def test_alternative_both_parts_carry_the_same_signature() -> None:
    result = apply_signature(crlf(HEAD + ALT), sigs(), ZHANG, "Customer GmbH")
    assert structure(result.message) == ["multipart/alternative", "text/plain", "text/html"]
    text_sig = text_signature(content(result.message, "text/plain"))
    [(_, html_sig)] = html_signatures(content(result.message, "text/html"))
    assert text_sig == html_sig == norm(render(sigs(), ZHANG, "Customer GmbH").text)
    assert parse(result.message).get_boundary() == "ALT"


def test_mixed_with_attachments_leaves_attachments_byte_identical() -> None:
    pdf = base64.encodebytes(os.urandom(30000)).replace(b"\n", b"\r\n")
    raw = crlf(HEAD + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"MIX\"\n\n"
               "This is a multi-part message in MIME format.\n--MIX\n" + ALT.split("\n", 1)[1] + "\n--MIX\n"
               "Content-Type: application/pdf; name=\"quote.pdf\"\nContent-Disposition: attachment; filename=\"quote.pdf\"\n"
               "Content-Transfer-Encoding: base64\n\n") + pdf + crlf(
               "--MIX\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; filename=\"notes.txt\"\n\n"
               "not a body\n--MIX--\nepilogue\n")
    result = apply_signature(raw, sigs(), ZHANG)
    assert structure(result.message) == structure(raw)
    tail = raw[raw.index(b"--MIX\r\nContent-Type: application/pdf"):]
    assert result.message.endswith(tail)  # attachments, boundaries and epilogue untouched
    assert result.message.startswith(raw[: raw.index(b"--ALT\r\n")])
    assert "张伟" not in text_of(parts_of(result.message, "text/plain")[1])
    assert text_signature(content(result.message, "text/plain")).startswith("张伟")


def _logo_sigs(tmp_path: Path):
    (tmp_path / "logo.png").write_bytes(PNG_1PX)
    company = SignatureCompany(**{**COMPANY.__dict__, "logo": tmp_path / "logo.png"})
    return load_signatures(SignatureSettings(), company)


RELATED = """MIME-Version: 1.0
Content-Type: multipart/related; boundary="REL"; type="text/html"

--REL
Content-Type: text/html; charset=utf-8

<html><body><p>Chart below</p><img src="cid:chart@client"></body></html>
--REL
Content-Type: image/png
Content-ID: <chart@client>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--REL--
"""


def test_related_gets_the_logo_once(tmp_path: Path) -> None:
    s = _logo_sigs(tmp_path)
    assert s.logo is not None
    result = apply_signature(crlf(HEAD + RELATED), s, ZHANG)
    assert structure(result.message) == ["multipart/related", "text/html", "image/png", "image/png"]
    logo = parts_of(result.message, "image/png")[1]
    assert logo["Content-ID"] == f"<{s.logo.cid}>" and logo.get_content() == PNG_1PX
    assert f"cid:{s.logo.cid}" in content(result.message, "text/html")
    again = apply_signature(result.message, s, ZHANG)
    assert structure(again.message) == structure(result.message)
    assert [p["Content-ID"] for p in parts_of(again.message, "image/png")] == ["<chart@client>", f"<{s.logo.cid}>"]
    assert content(again.message, "text/html").count(f"cid:{s.logo.cid}") == 1


def test_alternative_html_becomes_related_for_the_logo_not_the_message(tmp_path: Path) -> None:
    s = _logo_sigs(tmp_path)
    result = apply_signature(crlf(HEAD + ALT), s, ZHANG)
    assert structure(result.message) == ["multipart/alternative", "text/plain", "multipart/related",
                                         "text/html", "image/png"]
    again = apply_signature(result.message, s, ZHANG)
    assert structure(again.message) == structure(result.message)
    assert len(html_signatures(content(again.message, "text/html"))) == 1


def test_html_only_message_with_logo_keeps_its_headers(tmp_path: Path) -> None:
    s = _logo_sigs(tmp_path)
    raw = crlf(HEAD + "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<p>Hi</p>\n")
    result = apply_signature(raw, s, ZHANG)
    msg = parse(result.message)
    assert structure(result.message) == ["multipart/related", "text/html", "image/png"]
    assert msg["From"] == "Zhang Wei <zhangwei@acme.example>" and msg["Subject"] == "Quote"
    assert msg.get_all("MIME-Version") == ["1.0"]
    assert "<p>Hi</p>" in content(result.message, "text/html")


def test_html_in_gbk_keeps_its_charset_and_writes_references_for_the_rest() -> None:
    html = "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=gbk\"></head>" \
           "<body><div>王经理您好</div></body></html>"
    raw = crlf(HEAD + "MIME-Version: 1.0\nContent-Type: text/html; charset=gbk\nContent-Transfer-Encoding: base64\n\n")
    raw += base64.encodebytes(html.encode("gbk")).replace(b"\n", b"\r\n")
    user = ZHANG.__class__("x", "Łukasz 张伟 Müller")  # Ł is not in GBK
    result = apply_signature(raw, sigs(), user)
    msg = parse(result.message)
    assert msg.get_content_charset() == "gbk"
    out = text_of(msg)
    assert "王经理您好" in out and "&#321;ukasz 张伟 Müller" in out
    assert html_signatures(out)[0][1].startswith("Łukasz 张伟 Müller")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_endings_of_the_message_are_kept(newline: str) -> None:
    raw = (HEAD + ALT).replace("\n", newline).encode()
    result = apply_signature(raw, sigs(), JOSE)
    if newline == "\n":
        assert b"\r" not in result.message
    else:
        assert b"\n" not in result.message.replace(b"\r\n", b"")


def test_message_without_mime_headers_gets_them_when_the_charset_changes() -> None:
    raw = crlf("From: a@acme.example\nTo: b@customer.example\nSubject: x\n\nHello\n")
    result = apply_signature(raw, sigs(), ZHANG)
    msg = parse(result.message)
    assert msg["MIME-Version"] == "1.0" and msg.get_content_charset() == "utf-8"
    assert text_signature(text_of(msg)).startswith("张伟")


UNALTERABLE = {
    "smime-signed": 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="S"\n\n'
                    "--S\nContent-Type: text/plain\n\nsigned text\n--S\nContent-Type: application/pkcs7-signature\n\nAAAA\n--S--\n",
    "smime-encrypted": "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n"
                       "Content-Transfer-Encoding: base64\n\nAAAA\n",
    "pgp": 'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="E"\n\n'
           "--E\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n--E\nContent-Type: application/octet-stream\n\n"
           "-----BEGIN PGP MESSAGE-----\nxx\n-----END PGP MESSAGE-----\n--E--\n",
    "calendar": 'Content-Type: multipart/alternative; boundary="C"\n\n--C\nContent-Type: text/plain\n\nInvite\n'
                "--C\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\n\nBEGIN:VCALENDAR\nEND:VCALENDAR\n--C--\n",
    "delivery-report": 'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\n\n'
                       "--R\nContent-Type: text/plain\n\nFailed\n--R\nContent-Type: message/delivery-status\n\n"
                       "Reporting-MTA: dns; x\n--R--\n",
}


@pytest.mark.parametrize("reason", sorted(UNALTERABLE))
def test_messages_that_must_not_be_altered_are_left_untouched(reason: str) -> None:
    raw = crlf(HEAD + "MIME-Version: 1.0\n" + UNALTERABLE[reason])
    result = apply_signature(raw, sigs(), ZHANG)
    assert result.message is raw and not result.applied and result.untouched_reason == reason


def test_pgp_signed_pgp_mime_and_inline_pgp_are_left_untouched() -> None:
    mime = crlf(HEAD + 'MIME-Version: 1.0\nContent-Type: multipart/signed; protocol="application/pgp-signature"; '
                'boundary="P"\n\n--P\nContent-Type: text/plain\n\nhi\n--P\nContent-Type: application/pgp-signature\n\nsig\n--P--\n')
    inline = crlf(HEAD + "\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhi\n-----BEGIN PGP SIGNATURE-----\nx\n"
                  "-----END PGP SIGNATURE-----\n")
    for raw in (mime, inline):
        result = apply_signature(raw, sigs(), ZHANG)
        assert result.message is raw and result.untouched_reason == "pgp"


def test_ics_attachment_is_not_an_invitation() -> None:
    raw = crlf(HEAD + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="M"\n\n--M\nContent-Type: text/plain\n\n'
               "See the event file.\n--M\nContent-Type: text/calendar; name=a.ics\nContent-Disposition: attachment\n\n"
               "BEGIN:VCALENDAR\nEND:VCALENDAR\n--M--\n")
    assert apply_signature(raw, sigs(), ZHANG).applied


def test_forwarded_signed_message_as_attachment_does_not_block_signing() -> None:
    inner = UNALTERABLE["smime-signed"]
    raw = crlf(HEAD + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="M"\n\n--M\nContent-Type: text/plain\n\n'
               "FYI\n--M\nContent-Type: message/rfc822\n\n" + HEAD + inner + "--M--\n")
    result = apply_signature(raw, sigs(), ZHANG)
    assert result.applied and crlf(inner) in result.message


def test_no_body_and_undecodable_charsets_are_reported() -> None:
    only_pdf = crlf(HEAD + "MIME-Version: 1.0\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nAAAA\n")
    assert apply_signature(only_pdf, sigs(), ZHANG).untouched_reason == "no-text-body"
    unknown = plain(b"hello\r\n", "x-unknown-charset")
    result = apply_signature(unknown, sigs(), ZHANG)
    assert result.message is unknown and result.untouched_reason == "undecodable-body"


def test_garbage_never_raises() -> None:
    for raw in (b"", b"\r\n\r\n", b"Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\n", os.urandom(2000),
                b"Content-Type: text/plain; charset=gbk\r\n\r\n\xff\xfe\x81", b"Content-Type: multipart/alternative\r\n\r\nx"):
        result = apply_signature(raw, sigs(), ZHANG)
        assert isinstance(result.message, bytes)


def test_undecodable_bytes_in_a_gbk_body_are_kept() -> None:
    body = "价格".encode("gbk") + b"\xff\xff" + "确认".encode("gbk") + b"\r\n"
    result = apply_signature(plain(body, "gbk"), sigs(), LI)
    assert body.rstrip(b"\r\n") in result.message and b"charset=gbk" in result.message


def test_big_message_is_copied_at_most_twice() -> None:
    import tracemalloc

    attachment = base64.encodebytes(os.urandom(2_000_000)).replace(b"\n", b"\r\n")
    raw = crlf(HEAD + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="M"\n\n--M\n'
               "Content-Type: text/plain; charset=utf-8\n\nSee the catalogue.\n--M\nContent-Type: application/pdf\n"
               "Content-Disposition: attachment; filename=c.pdf\nContent-Transfer-Encoding: base64\n\n") + attachment + b"--M--\r\n"
    s = sigs()
    apply_signature(raw, s, ZHANG)  # warm up
    tracemalloc.start()
    try:
        result = apply_signature(raw, s, ZHANG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.applied and attachment in result.message
    assert peak < 2 * len(raw), f"peak {peak / len(raw):.2f}x the message size"


@pytest.mark.parametrize("data", [b"Dear Max,\r\nplease find\r\n", "Grüße, Łódź \x81\x8d".encode("latin-1", "replace")
                                  + b"\x81\x8d\xff"])
@pytest.mark.parametrize("charset", ["us-ascii", "iso-8859-1", None])
def test_text_reads_and_writes_back_byte_for_byte_as_the_lenient_codec_does(data: bytes, charset: str | None) -> None:
    from mailwarden.signatures import mime

    decoded = mime.decode_text(data, charset)
    assert decoded is not None
    text, declared = decoded
    assert text == data.decode("cp1252", "surrogateescape")  # ASCII read quickly, all else as before
    assert mime.encode_text(text, declared) == data
