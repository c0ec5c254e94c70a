"""Messages of every shape the IMAP side must describe, built inline (CRLF unless a case is
about line endings). Each entry: a name and the bytes; the Dovecot comparison APPENDs them."""

from __future__ import annotations

import base64
import quopri

CRLF = b"\r\n"


def msg(*lines: bytes | str) -> bytes:
    """Lines joined with CRLF, a final CRLF added; str lines are UTF-8."""
    return CRLF.join(x.encode() if isinstance(x, str) else x for x in lines) + CRLF


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF).rstrip(CRLF)


def qp(text: str, charset: str = "utf-8") -> bytes:
    return quopri.encodestring(text.encode(charset)).replace(b"\n", CRLF).rstrip(CRLF)


HEAD = ("Date: Mon, 7 Dec 2026 09:00:00 +0800", "Message-ID: <m1@company.test>",
        "From: Li Wei <li.wei@buyer.test>", "To: sales@company.test")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

CORPUS: list[tuple[str, bytes]] = [
    ("plain_ascii", msg(*HEAD, "Subject: Quote request", "", "Hello,", "", "please quote 500 pcs.", "Li")),
    ("utf8_8bit", msg(*HEAD, "Subject: Angebot über Stühle", "MIME-Version: 1.0",
                      "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit", "",
                      "Grüße, 你好")),
    ("gbk_8bit_headers", msg(b"Date: Mon, 7 Dec 2026 09:00:00 +0800",
                             "From: 王经理 <wang@buyer.test>".encode("gbk"),
                             "Subject: 报价单 第二版".encode("gbk"), b"To: sales@company.test", b"MIME-Version: 1.0",
                             b"Content-Type: text/plain; charset=GBK", b"", "请报价".encode("gbk"))),
    ("big5_qp", msg(*HEAD, "Subject: =?big5?B?s/i7+bpc?=", "MIME-Version: 1.0",
                    "Content-Type: text/plain; charset=big5", "Content-Transfer-Encoding: quoted-printable", "",
                    qp("報價單，請查收。" * 8, "big5"))),
    ("rfc2047_names", msg("Date: Mon, 7 Dec 2026 09:00:00 +0800",
                          "From: =?UTF-8?B?5p2O5Lyf?= <li@buyer.test>",
                          "To: =?gb2312?B?wO7Uqg==?= <a@company.test>, \"Smith, John\" <john@x.test>",
                          "Cc: \"quote \\\"me\\\" \\\\ here\" <q@x.test>",
                          "Subject: =?UTF-8?Q?Re:_=E6=8A=A5=E4=BB=B7?= =?UTF-8?B?5Y2V?=", "", "body")),
    ("alternative", msg(*HEAD, "Subject: alt", "MIME-Version: 1.0",
                        "Content-Type: multipart/alternative; boundary=\"=_alt_1\"", "",
                        "This is a multi-part message.", "--=_alt_1",
                        "Content-Type: text/plain; charset=utf-8; format=flowed", "Content-Transfer-Encoding: 7bit",
                        "", "Hello plain", "--=_alt_1", "Content-Type: text/html; charset=utf-8",
                        "Content-Transfer-Encoding: quoted-printable", "", qp("<p>Hello <b>html</b> ünïcode</p>"),
                        "--=_alt_1--", "")),
    ("mixed_attachments", msg(*HEAD, "Subject: files", "MIME-Version: 1.0",
                              "Content-Type: multipart/mixed; boundary=mixed42", "", "--mixed42",
                              "Content-Type: text/plain", "", "see attached", "--mixed42",
                              "Content-Type: application/pdf; name=\"quote.pdf\"",
                              "Content-Transfer-Encoding: base64",
                              "Content-Disposition: attachment; filename=\"quote.pdf\"; size=1024",
                              "Content-Description: The quote", "", b64(b"%PDF-1.4 " * 200), "--mixed42",
                              "Content-Type: text/csv; charset=utf-8", "Content-Transfer-Encoding: quoted-printable",
                              "Content-Disposition: attachment; filename=prices.csv", "",
                              qp("item;price\nstühle;12,50\n" * 5), "--mixed42",
                              "Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: 8bit",
                              "Content-Disposition: inline", "", b"caf\xe9 cr\xe8me",
                              "--mixed42", "Content-Type: application/octet-stream",
                              "Content-Transfer-Encoding: binary", "Content-Disposition: attachment; filename=blob.bin",
                              "", b"\x01\x02\x03\xff\xfe binary bytes", "--mixed42--")),
    ("inline_images", msg(*HEAD, "Subject: logo", "MIME-Version: 1.0",
                          "Content-Type: multipart/related; boundary=\"rel\"; type=\"text/html\"", "", "--rel",
                          "Content-Type: text/html; charset=us-ascii", "", "<img src=\"cid:logo@x\">", "--rel",
                          "Content-Type: image/png", "Content-Transfer-Encoding: base64",
                          "Content-ID: <logo@x>", "Content-Disposition: inline; filename=\"logo.png\"",
                          "Content-Language: en, zh-CN", "Content-Location: http://x.test/logo.png",
                          "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==", "", b64(PNG), "--rel--")),
    ("nested_rfc822_twice", msg(*HEAD, "Subject: Fwd: Fwd: order", "MIME-Version: 1.0",
                                "Content-Type: multipart/mixed; boundary=outer", "", "--outer",
                                "Content-Type: text/plain", "", "forwarding", "--outer",
                                "Content-Type: message/rfc822", "", "From: a@b.test", "To: c@d.test",
                                "Subject: Fwd: order", "Date: Sun, 6 Dec 2026 10:00:00 +0000", "MIME-Version: 1.0",
                                "Content-Type: multipart/mixed; boundary=inner", "", "--inner",
                                "Content-Type: text/plain", "", "see below", "--inner",
                                "Content-Type: message/rfc822; name=orig.eml", "Content-Disposition: attachment",
                                "", "From: x@y.test", "Subject: order", "", "the original order", "--inner--",
                                "--outer--")),
    ("rfc822_single", msg(*HEAD, "Subject: bounce", "MIME-Version: 1.0", "Content-Type: message/rfc822", "",
                          "From: inner@x.test", "Subject: inner", "MIME-Version: 1.0",
                          "Content-Type: text/plain; charset=utf-8", "", "inner body")),
    ("digest", msg(*HEAD, "Subject: digest", "MIME-Version: 1.0",
                   "Content-Type: multipart/digest; boundary=dig", "", "--dig", "",
                   "From: one@x.test", "Subject: one", "", "first", "--dig", "", "From: two@x.test",
                   "Subject: two", "", "second", "--dig", "Content-Type: text/plain", "", "a text part", "--dig--")),
    ("signed", msg(*HEAD, "Subject: signed", "MIME-Version: 1.0",
                   "Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; "
                   "boundary=\"sig\"", "", "--sig", "Content-Type: text/plain; charset=us-ascii", "", "signed text",
                   "--sig", "Content-Type: application/pgp-signature; name=\"signature.asc\"",
                   "Content-Description: OpenPGP digital signature", "", "-----BEGIN PGP SIGNATURE-----",
                   "iQEzBAEBCAAdFiEE", "-----END PGP SIGNATURE-----", "--sig--")),
    ("encrypted", msg(*HEAD, "Subject: encrypted", "MIME-Version: 1.0",
                      "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=enc", "",
                      "--enc", "Content-Type: application/pgp-encrypted", "", "Version: 1", "--enc",
                      "Content-Type: application/octet-stream; name=\"encrypted.asc\"", "",
                      "-----BEGIN PGP MESSAGE-----", "hQEMA", "-----END PGP MESSAGE-----", "--enc--")),
    ("smime", msg(*HEAD, "Subject: smime", "MIME-Version: 1.0",
                  "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
                  "Content-Transfer-Encoding: base64", "Content-Disposition: attachment; filename=smime.p7m", "",
                  b64(b"\x30\x82" + bytes(300)))),
    ("groups", msg("Date: Mon, 7 Dec 2026 09:00:00 +0800", "From: Sales <sales@company.test>",
                   "To: undisclosed-recipients:;", "Cc: Team: a@x.test, \"B B\" <b@x.test>;, solo@x.test",
                   "Bcc: Empty Group: ;", "Subject: groups", "", "x")),
    ("no_from_no_date", msg("Subject: nothing else", "", "x")),
    ("no_headers_at_all", b"\r\njust a body\r\n"),
    ("duplicate_headers", msg("Date: Mon, 7 Dec 2026 09:00:00 +0800", "Date: Tue, 8 Dec 2026 09:00:00 +0800",
                              "From: first@x.test", "From: second@x.test", "Subject: one", "Subject: two",
                              "Message-ID: <a@x>", "Message-ID: <b@x>", "To: t1@x.test", "To: t2@x.test",
                              "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
                              "Content-Type: text/html", "Content-Disposition: inline",
                              "Content-Disposition: attachment; filename=a.txt", "", "x")),
    ("bare_lf", (b"From: lf@x.test\nSubject: bare LF\nMIME-Version: 1.0\n"
                 b"Content-Type: multipart/mixed; boundary=lf\n\n--lf\nContent-Type: text/plain\n\nline one\n"
                 b"line two\n--lf\nContent-Type: text/plain\n\nsecond\n--lf--\n")),
    ("missing_close_boundary", msg(*HEAD, "Subject: truncated", "MIME-Version: 1.0",
                                   "Content-Type: multipart/mixed; boundary=open", "", "--open",
                                   "Content-Type: text/plain", "", "first", "--open",
                                   "Content-Type: text/plain", "", "second, never closed", "more")),
    ("part_without_headers", msg(*HEAD, "Subject: headerless part", "MIME-Version: 1.0",
                                 "Content-Type: multipart/mixed; boundary=nh", "", "--nh", "",
                                 "no headers here", "--nh", "Content-Type: text/html", "", "<p>x</p>", "--nh--")),
    ("rfc2231", msg(*HEAD, "Subject: 2231", "MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=p", "",
                    "--p", "Content-Type: application/octet-stream;",
                    " name*0*=utf-8''%E6%8A%A5%E4%BB%B7;", " name*1*=%E5%8D%95.pdf",
                    "Content-Disposition: attachment;", " filename*0=\"long file name that was \";",
                    " filename*1=\"continued.pdf\"", "Content-Transfer-Encoding: base64", "", b64(b"data" * 30),
                    "--p", "Content-Type: text/plain; title*=us-ascii'en'This%20is%20it", "", "x", "--p--")),
    ("long_header_lines", msg("Date: Mon, 7 Dec 2026 09:00:00 +0800", "From: long@x.test",
                              "To: " + ", ".join(f"user{i}@company.test" for i in range(300)),
                              "Subject: " + "very long subject " * 300,
                              "References: " + " ".join(f"<ref{i}@x.test>" for i in range(200)),
                              "Subject2: folded", "\tcontinuation line", "", "x")),
    ("folded_subject", msg("From: \"Folded\n Name\" <f@x.test>".replace("\n", "\r\n"),
                           "Subject: first part\r\n\tsecond  part\r\n  third", "Date: Mon,\r\n 7 Dec 2026",
                           "Message-ID:\r\n <folded@x.test>", "", "x")),
    ("garbage_content_type", msg(*HEAD, "Subject: junk types", "MIME-Version: 1.0",
                                 "Content-Type: multipart/mixed; boundary=g", "", "--g",
                                 "Content-Type: garbage", "", "one", "--g", "Content-Type: text/plain junk; a=b",
                                 "", "two", "--g", "Content-Type: Text/HTML; Charset=\"UTF-8\"", "", "three",
                                 "--g", "Content-Type: image/jpeg; name=\"a \\\"q\\\" b.jpg\"",
                                 "Content-Transfer-Encoding: BASE64", "", b64(b"jpg"), "--g--")),
    ("no_mime_version", msg("From: old@x.test", "Subject: old", "Content-Transfer-Encoding: base64",
                            "Content-Disposition: attachment", "", "aGVsbG8=")),
    ("content_type_without_mime_version", msg("From: old@x.test", "Subject: old",
                                              "Content-Type: text/html; charset=utf-8", "", "<p>x</p>")),
    ("multipart_no_boundary", msg(*HEAD, "Subject: no boundary", "MIME-Version: 1.0",
                                  "Content-Type: multipart/mixed", "", "--x", "text", "--x--")),
    ("odd_addresses", msg("Date: Mon, 7 Dec 2026 09:00:00 +0800", "From: joe@", "Sender: <>",
                          "Reply-To: \"Only Name\"", "To: user (Comment Name), @route,@r2:u@d.test, <a@[1.2.3.4]>",
                          "Cc: broken <no-close@x.test", "Bcc: a@b.test,", "In-Reply-To: <irt@x.test>",
                          "Subject: odd", "", "x")),
    ("quoted_specials_subject", msg("From: q@x.test", "Subject: a \"quoted\" \\back\\ slash \"x\" \"y\"",
                                    "Message-ID: <\"odd\"@x>", "", "x")),
    ("empty_body", msg(*HEAD, "Subject: empty", "MIME-Version: 1.0", "Content-Type: text/plain", "")),
    ("preamble_epilogue", msg(*HEAD, "Subject: pre/epi", "MIME-Version: 1.0",
                              "Content-Type: multipart/mixed; boundary=\"pe\"", "", "preamble line 1",
                              "preamble line 2", "--pe", "Content-Type: text/plain", "", "p1", "--pe--",
                              "epilogue 1", "epilogue 2")),
    ("nested_multipart", msg(*HEAD, "Subject: nested", "MIME-Version: 1.0",
                             "Content-Type: multipart/mixed; boundary=a", "", "--a",
                             "Content-Type: multipart/alternative; boundary=b", "", "--b",
                             "Content-Type: text/plain", "", "plain", "--b",
                             "Content-Type: multipart/related; boundary=c", "", "--c",
                             "Content-Type: text/html", "", "<p>h</p>", "--c", "Content-Type: image/gif",
                             "Content-Transfer-Encoding: base64", "Content-ID: <g@x>", "", b64(b"GIF89a" * 10),
                             "--c--", "--b--", "--a", "Content-Type: application/zip",
                             "Content-Transfer-Encoding: base64", "", b64(bytes(range(256))), "--a--")),
    ("many_parts", msg(*HEAD, "Subject: many", "MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=m", "",
                       *[x for i in range(300) for x in ("--m", "Content-Type: text/plain", "", f"part {i}")],
                       "--m--")),
]

# Corners of the boundary rules: where a line ending belongs, and lines that look like boundaries.
CORPUS += [
    ("empty_part_bodies", msg(*HEAD, "Subject: empty parts", "MIME-Version: 1.0",
                              "Content-Type: multipart/mixed; boundary=e", "", "--e", "Content-Type: text/plain", "",
                              "--e", "Content-Type: text/plain", "--e", "--e", "", "--e",
                              "Content-Type: message/rfc822", "", "Subject: no body", "", "--e",
                              "Content-Type: message/rfc822", "", "--e", "Content-Type: multipart/mixed; boundary=f",
                              "", "--e--")),
    ("close_into_close", msg(*HEAD, "Subject: closes", "MIME-Version: 1.0",
                             "Content-Type: multipart/mixed; boundary=a", "", "--a",
                             "Content-Type: message/rfc822", "", "Subject: in", "MIME-Version: 1.0",
                             "Content-Type: multipart/alternative; boundary=b", "", "--b", "", "x", "--b",
                             "Content-Type: multipart/related; boundary=c", "", "--c", "", "y", "--c--", "--b--",
                             "--a", "Content-Type: multipart/mixed; boundary=d", "", "--d", "", "z", "--d--", "",
                             "--a--")),
    ("boundary_lookalikes", msg(*HEAD, "Subject: lookalikes", "MIME-Version: 1.0",
                                "Content-Type: multipart/mixed; boundary=\"look\"", "", "--look", "", "a",
                                "--look   ", "", "b", " --look", "--lookalike is not a boundary?", "-- look",
                                "--look--  ", "epilogue")),
    ("same_boundary_nested", msg(*HEAD, "Subject: same boundary", "MIME-Version: 1.0",
                                 "Content-Type: multipart/mixed; boundary=s", "", "--s",
                                 "Content-Type: multipart/alternative; boundary=s", "", "--s", "", "inner?", "--s--",
                                 "--s", "", "after", "--s--")),
    ("rfc822_in_digest_explicit", msg(*HEAD, "Subject: digest 2", "MIME-Version: 1.0",
                                      "Content-Type: multipart/digest; boundary=d2", "", "--d2",
                                      "Content-Type: message/rfc822", "", "Subject: one", "", "1", "--d2",
                                      "Content-Type: text/plain", "", "2", "--d2--")),
    ("toplevel_rfc822_no_mime_version", msg("From: a@x.test", "Subject: wrapped",
                                            "Content-Type: message/rfc822", "", "Subject: inside", "", "body")),
    ("mime_version_only_cte", msg("From: a@x.test", "Subject: cte", "MIME-Version: 1.0",
                                  "Content-Transfer-Encoding: Quoted-Printable", "Content-ID: <x@y>",
                                  "Content-Description: a\r\n  folded description", "", "caf=C3=A9")),
    ("thousands_of_parts", msg(*HEAD, "Subject: 2100 parts", "MIME-Version: 1.0",
                               "Content-Type: multipart/mixed; boundary=t", "",
                               *[x for i in range(2100) for x in ("--t", "", str(i))], "--t--")),
    ("past_the_part_limit", msg(*HEAD, "Subject: 10050 parts", "MIME-Version: 1.0",
                                "Content-Type: multipart/mixed; boundary=o", "", "--o",
                                "Content-Type: multipart/mixed; boundary=t", "",
                                *[x for i in range(10050) for x in ("--t", "", str(i))], "--t--", "--o",
                                "Content-Type: text/plain", "", "after the limit", "--o--")),
    ("headers_only", b"From: a@x.test\r\nSubject: no empty line\r\n"),
    ("crlf_only", b"\r\n"),
]
CORPUS += [
    ("empty_embedded_messages", msg(*HEAD, "Subject: empty embedded", "MIME-Version: 1.0",
                                    "Content-Type: multipart/mixed; boundary=e", "", "--e",
                                    "Content-Type: message/rfc822", "", "Subject: header cut by boundary", "--e",
                                    "Content-Type: message/rfc822", "", "", "--e", "Content-Type: message/rfc822",
                                    "", "Subject: blank then blank", "", "", "--e", "Content-Type: message/rfc822",
                                    "", "MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=in", "",
                                    "--in", "", "x", "--in--", "--e--")),
]
# Header lines that are no fields: the email package ends the header there, IMAP servers do not.
CORPUS += [
    ("non_field_lines_in_headers", msg("From: a@x.test", "this line has no colon", "Subject : spaced name",
                                       "MIME-Version: 1.0", "--looks like a boundary",
                                       "Content-Type: multipart/mixed; boundary=n", "", "--n",
                                       "Content-Type: text/plain", "no colon here either",
                                       "Content-Disposition: attachment; filename=a.txt", "", "x", "--n",
                                       "From someone on a line of its own", "Content-Type: text/html", "", "<p>y</p>",
                                       "--n--")),
]


def mutations(seed: int, count: int, *, max_size: int = 20_000) -> list[bytes]:
    """*count* corpus messages with bytes cut, inserted and doubled at random places."""
    import random

    rng = random.Random(seed)
    sources = [raw for _name, raw in CORPUS if len(raw) < max_size]
    out = []
    for _ in range(count):
        raw = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(raw) or 1)
            op = rng.random()
            if op < 0.3:
                del raw[i:i + rng.randint(1, 40)]
            elif op < 0.6:
                raw[i:i] = rng.choice([b"\r\n", b"\n", b"--", b"\r\n--", b";", b'"', b"(", b"<", b":", b",", b" ",
                                       b"\t", b"\x00", b"\xff"])
            else:
                raw[i:i] = raw[i:i + rng.randint(1, 200)]
        out.append(bytes(raw))
    return out


def _made_by_the_email_package() -> list[tuple[str, bytes]]:
    """Shapes real clients send, as the standard library writes them (its own boundaries)."""
    from email.message import EmailMessage
    from email.policy import SMTP

    alt = EmailMessage()
    alt["From"], alt["To"], alt["Subject"] = "Zhang San <zhang@buyer.test>", "sales@company.test", "报价 / quote"
    alt.set_content("Plain text, 你好\n")
    alt.add_alternative("<p>HTML, 你好</p>\n", subtype="html")
    alt.get_payload()[1].add_related(PNG, "image", "png", cid="<img1@buyer.test>")
    alt.add_attachment(b"%PDF-1.4 quote", maintype="application", subtype="pdf", filename="报价单.pdf")
    alt.add_attachment("名称,价格\n椅子,12\n".encode("gbk"), maintype="text", subtype="csv", filename="prices.csv")
    fwd = EmailMessage()
    fwd["From"], fwd["To"], fwd["Subject"] = "sales@company.test", "boss@company.test", "Fwd: 报价 / quote"
    fwd.set_content("See the forwarded message.\n")
    fwd.add_attachment(alt)
    return [("email_package_mixed", alt.as_bytes(policy=SMTP)), ("email_package_forward", fwd.as_bytes(policy=SMTP))]


CORPUS += _made_by_the_email_package()
CORPUS += [
    ("gbk_attachment_names", msg(b"From: a@x.test", b"Subject: gbk names", b"MIME-Version: 1.0",
                                 b"Content-Type: multipart/mixed; boundary=g8", b"", b"--g8",
                                 'Content-Type: application/vnd.ms-excel; name="报价单.xls"'.encode("gbk"),
                                 'Content-Disposition: attachment; filename="报价单.xls"'.encode("gbk"),
                                 "Content-Description: 价格表".encode("gbk"), b"Content-ID: <a@x>\r\n <folded>",
                                 b"Content-Transfer-Encoding: base64", b"", b64(b"xls"), b"--g8--")),
]


_ADDRESS_TOKENS = [b'"', b"\\", b"<", b">", b"@", b".", b",", b":", b";", b"(", b")", b" ", b"  ", b"\t", b"[", b"]",
                   b"joe", b"x.test", b"Li Wei", "王".encode(), b"=?utf-8?b?5p2O?=", b"\r\n ", b"'", b"a@b.c",
                   b"<a@b.c>", b'"q q"']
_MIME_TOKENS = [b"text/plain", b"multipart/mixed", b";", b"=", b'"', b"charset", b"utf-8", b" ", b"(c)", b"name*0",
                b"name*1*", b"''", b"%41", b"\r\n ", b"/", b"boundary", b"x", b"*", b"\xe6", b"attachment", b","]


def header_soup(seed: int, count: int) -> list[bytes]:
    """*count* messages whose envelope and Content-* fields are random strings of the tokens
    address and MIME parsers trip over (a fixed seed gives the same messages)."""
    import random

    rng = random.Random(seed)

    def value(tokens: list[bytes], most: int) -> bytes:
        return b"".join(rng.choice(tokens) for _ in range(rng.randint(0, most)))

    out = []
    for _ in range(count):
        lines = [b"From: " + value(_ADDRESS_TOKENS, 12), b"To: " + value(_ADDRESS_TOKENS, 16),
                 b"Cc: " + value(_ADDRESS_TOKENS, 8), b"Sender: " + value(_ADDRESS_TOKENS, 6),
                 b"Reply-To: " + value(_ADDRESS_TOKENS, 6), b"Subject: " + value(_ADDRESS_TOKENS, 8),
                 b"Date: " + value(_ADDRESS_TOKENS, 4), b"Message-ID: " + value(_ADDRESS_TOKENS, 5),
                 b"In-Reply-To: " + value(_ADDRESS_TOKENS, 3), b"MIME-Version: 1.0",
                 b"Content-Type: " + value(_MIME_TOKENS, 10), b"Content-Disposition: " + value(_MIME_TOKENS, 8),
                 b"Content-Language: " + value(_ADDRESS_TOKENS, 5), b"Content-Location: " + value(_MIME_TOKENS, 3),
                 b"Content-Transfer-Encoding: " + value(_MIME_TOKENS, 3)]
        rng.shuffle(lines)
        out.append(b"\r\n".join(lines) + b"\r\n\r\nbody\r\n")
    return out
