"""Header surgery: From becomes the shared mailbox; nothing the client sets can spoof or inject."""

import email
import email.policy

import pytest
from mailwarden.gateway.submission.rewrite import MessageRejected, header_first, rewrite
from mailwarden.gateway.headers import keyword, split_headers, sent_ref, tag_headers

KW = dict(shared_address="sales@company.test", company_domains=("company.test",), loop_key=b"k" * 32, hostname="gw")


def parse(rw):
    return email.message_from_bytes(rw.head + bytes(rw.body), policy=email.policy.default)


def test_from_becomes_shared_mailbox_with_display_name():
    rw = rewrite(b"From: Zhang <zhang@gmail.com>\r\nSender: x@y.z\r\nSubject: Quote\r\n\r\nHello\r\n",
                 display_name="Zhang San | Bright Lighting", **KW)
    m = parse(rw)
    assert m["From"].addresses[0].addr_spec == "sales@company.test"
    assert m["From"].addresses[0].display_name == "Zhang San | Bright Lighting"
    assert m["Sender"] is None and m["Message-ID"] and m["Date"]
    assert m.get_content().replace("\r\n", "\n") == "Hello\n"


def test_non_ascii_display_name_is_encoded():
    rw = rewrite(b"Subject: x\r\n\r\nbody", display_name="张伟 | 明亮照明", **KW)
    assert rw.head.isascii()
    assert parse(rw)["From"].addresses[0].display_name == "张伟 | 明亮照明"


def test_crlf_in_display_name_cannot_inject_headers():
    rw = rewrite(b"Subject: x\r\n\r\nbody", display_name="Evil\r\nBcc: victim@example.com", **KW)
    m = parse(rw)
    assert m["Bcc"] is None
    assert len(m.get_all("From")) == 1


def test_client_cannot_set_mailwarden_headers_or_private_reply_to():
    raw = (b"X-Mailwarden-Operator: boss\r\nX-Mailwarden-Customer: 1 Big\r\nReply-To: me@gmail.com\r\n"
           b"X-Mailwarden-Ref: 20261203000000-someone-elses\r\nX-Mailwarden-Notice: held\r\n"
           b"Bcc: hidden@example.com\r\nSubject: s\r\n\r\nb")
    rw = rewrite(raw, display_name="Z", **KW)
    m = parse(rw)
    assert m["X-Mailwarden-Operator"] is None and m["X-Mailwarden-Customer"] is None
    assert m["X-Mailwarden-Ref"] is None and m["X-Mailwarden-Notice"] is None  # a ref would hide a copy
    assert m["Reply-To"] is None and m["Bcc"] is None
    assert {"reply-to", "bcc", "x-mailwarden-operator"} <= set(rw.dropped)


def test_company_reply_to_is_kept():
    rw = rewrite(b"Reply-To: export@company.test\r\nSubject: s\r\n\r\nb", display_name="Z", **KW)
    assert parse(rw)["Reply-To"] == "export@company.test"


def test_no_headers_at_all_is_delivered_safely():
    rw = rewrite(b"just some text\r\nwithout headers\r\n", display_name="Z", **KW)
    m = parse(rw)
    assert m["From"] and m["Message-ID"]
    assert bytes(rw.body) == b"just some text\r\nwithout headers\r\n"


def test_eight_bit_garbage_headers_do_not_crash():
    rw = rewrite(b"Subject: \xff\xfe\x80 price\r\nX-Junk: \x00\x01\r\n\r\n\xff\xff", display_name="Z", **KW)
    assert "price" in rw.subject


def test_body_is_not_copied():
    data = b"Subject: s\r\n\r\n" + b"x" * 1000
    rw = rewrite(data, display_name="Z", **KW)
    assert rw.body.obj is data


def test_own_output_is_recognised_as_a_loop():
    first = rewrite(b"Subject: s\r\n\r\nb", display_name="Z", **KW)
    again = first.head + bytes(first.body)
    with pytest.raises(MessageRejected, match="554 5.4.6"):
        rewrite(again, display_name="Z", **KW)


def test_foreign_loop_header_is_dropped_not_trusted():
    raw = b"Message-ID: <a@b>\r\nX-Mailwarden-Loop: gw; token=" + b"0" * 24 + b"\r\n\r\nb"
    rw = rewrite(raw, display_name="Z", **KW)
    assert rw.head.count(b"X-Mailwarden-Loop") == 1


def test_split_headers_folded_lines():
    h = split_headers(b"Subject: a\r\n b\r\nTo: x@y\r\n\r\nbody")
    assert h.get("subject") == "a b" and h.get("to") == "x@y"


def test_tag_headers_and_keywords():
    raw = tag_headers("zhang", "张伟", [(42, "Acme GmbH")], ref="20261203-ab12")
    assert raw.isascii() and b"X-Mailwarden-Customer: 42 Acme GmbH" in raw
    assert sent_ref(raw.decode()) == "20261203-ab12" and sent_ref("X-Mailwarden-Operator: zhang\r\n") is None
    assert keyword("op", "zhang") == "$mw_op_zhang"
    assert keyword("cust", "a b(c)") == "$mw_cust_a_b_c_"


MSG = (b"From: Zhang <zhang@company.test>\r\nSubject: Quote\r\nTo: max@buyer.test\r\n"
       b"Date: Sun, 22 Nov 2026 08:00:00 +0800\r\nMessage-ID: <q1@company.test>\r\n\r\n"
       b"Dear Max,\r\n\r\nthe price is USD 12.\r\n")


@pytest.mark.parametrize("cuts", [(), (5,), (20, 21), (len(MSG) - 40, len(MSG) - 39), (1, 2, 3, 60, 61, 62, 63),
                                  (MSG.index(b"\r\n\r\n") + 1,), (MSG.index(b"\r\n\r\n") + 3,)])
def test_rewrite_of_pieces_equals_rewrite_of_the_joined_message(cuts):
    """A signed message comes as pieces (views plus inserted bytes): the outcome is byte for byte the same."""
    bounds = [0, *cuts, len(MSG)]
    pieces = [memoryview(MSG)[a:b] if k % 2 else MSG[a:b] for k, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    first, rest = header_first(pieces)
    assert isinstance(first, bytes) and first + b"".join(bytes(p) for p in rest) == MSG
    kw = dict(KW, display_name="Zhang San")
    one, many = rewrite(MSG, **kw), rewrite(first, rest=rest, **kw)
    assert b"".join(bytes(c) for c in many.chunks()) == b"".join(bytes(c) for c in one.chunks())
    assert many.size == one.size and many.subject == one.subject == "Quote"


def test_header_first_without_a_blank_line_joins_everything():
    first, rest = header_first([b"no header ", memoryview(b"block at all")], limit=8)
    assert first == b"no header block at all" and rest == ()


def test_header_first_does_not_copy_the_body():
    big = b"Subject: s\r\n\r\n" + b"x" * 1_000_000
    first, rest = header_first([memoryview(big)[:5], memoryview(big)[5:]])
    assert first == b"Subject: s\r\n\r\n" and len(rest) == 1 and rest[0].obj is big


@pytest.mark.parametrize(("body", "charset"), [
    ("价格 Preis für Sie\r\n".encode(), "utf-8"),
    ("您好，这是我们的报价单，请查收。价格有效期为三十天，如有疑问请随时联系我们。\r\n".encode("gbk"), "gb18030"),
])
def test_eight_bit_mail_without_mime_headers_gets_a_charset(body, charset):
    rw = rewrite(b"Subject: x\r\nTo: max@buyer.test\r\n\r\n" + body, display_name="Zhang", **KW)
    m = parse(rw)
    assert m["MIME-Version"] == "1.0" and m.get_content_type() == "text/plain"
    assert m.get_content_charset() == charset
    assert m.get_content().replace("\r\n", "\n") == body.decode(charset).replace("\r\n", "\n")


def test_declared_or_ascii_mail_gets_no_content_type_added():
    plain = rewrite(b"Subject: x\r\n\r\nHello\r\n", display_name="Zhang", **KW)
    assert b"Content-Type" not in plain.head
    declared = rewrite(b"Subject: x\r\nContent-Type: text/plain; charset=big5\r\n\r\n\xa7A\xa6n\r\n",
                       display_name="Zhang", **KW)
    assert declared.head.count(b"Content-Type") == 1 and b"big5" in declared.head
