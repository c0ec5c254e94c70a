"""Bounce reports: readable (English and Chinese), quoting only the original's header block,
tagged for the operator whose view they reach; and the head a bounce reads from the spool."""

from __future__ import annotations

import email
import email.policy
import re

from mailwarden.gateway.delivery.notices import build_bounce, read_head

ORIGINAL = (b"From: Zhang <zhang@company.test>\r\nTo: max@buyer.test\r\n"
            b"Subject: =?utf-8?b?5oql5Lu3IFF1b3RlIDE3?=\r\n\r\nOur best price is 4.20 USD.\r\n")


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_a_bounce_is_readable_quotes_only_the_headers_and_is_tagged_for_the_operator():
    data = build_bounce(key=b"k" * 32, shared="sales@company.test", operator="zhang", rcpts=["max@buyer.test", "eva@buyer.test"],
                        reason="550 5.1.1 <max@buyer.test>: mailbox\r\nunknown", original=ORIGINAL)
    msg = parse(data)
    assert msg["X-Mailwarden-Operator"] == "zhang" and msg["To"] == "sales@company.test"
    assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "delivery-status"
    assert "报价 Quote 17" in msg["Subject"] and msg["Auto-Submitted"] == "auto-replied"
    text, status, headers = msg.iter_parts()
    body = text.get_content()
    assert "could not be delivered to:\n  max@buyer.test\n  eva@buyer.test" in body
    assert "无法投递" in body
    assert re.search(r"\n  550 5\.1\.1 <max@buyer\.test>: mailbox +unknown\n", body)  # the reason on one line
    assert status.get_content_type() == "message/delivery-status"
    assert status.as_bytes().count(b"Final-Recipient: rfc822;") == 2
    assert headers.get_content_type() == "text/rfc822-headers"
    assert b"To: max@buyer.test" in headers.as_bytes() and b"4.20 USD" not in data  # the header block only


def test_a_bounce_of_something_without_headers_quotes_nothing():
    data = build_bounce(key=b"k" * 32, shared="sales@company.test", operator="li", rcpts=["a@b.test"], reason="x",
                        original=b"no header block at all")
    assert b"no header block" not in data and parse(data)["X-Mailwarden-Operator"] == "li"


def test_the_head_read_from_the_spool_is_the_header_block_and_tags(tmp_path):
    p = tmp_path / "m.eml"
    p.write_bytes(ORIGINAL + b"x" * 200_000)
    head = read_head(p, b"X-Mailwarden-Operator: zhang\r\n")
    assert head.startswith(b"X-Mailwarden-Operator: zhang\r\nFrom: Zhang")
    assert len(head) < 70_000  # not the whole message
