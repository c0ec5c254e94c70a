"""The SMTP path and ESMTP parameters of MAIL FROM / RCPT TO."""

import pytest
from mailwarden.gateway.submission.smtpaddress import NULL_PATH, mail_params_refusal, parse_params, parse_path


@pytest.mark.parametrize(("arg", "address", "rest"), [
    ("<max@buyer.test>", "max@buyer.test", ""),
    ("max@buyer.test", "max@buyer.test", ""),
    (" <max@buyer.test>", "max@buyer.test", ""),
    ("< max@buyer.test >", "max@buyer.test", ""),
    ("<a@b> SIZE=100 BODY=8BITMIME", "a@b", " SIZE=100 BODY=8BITMIME"),
    ("a@b SIZE=1", "a@b", " SIZE=1"),
    ("<a@b>x", "a@b", "x"),
    ("<>", NULL_PATH, ""),
    ("<> SIZE=5", NULL_PATH, " SIZE=5"),
    ("", "", ""),
    ('<"john doe"@c>', '"john doe"@c', ""),
    ('<"john"@c>', "john@c", ""),  # quotes that are not needed go (what the email package does too)
    ('<"a\\"b"@c>', '"a\\"b"@c', ""),
    ('<"a>b"@c>', '"a>b"@c', ""),
    ("<@r1.test,@r2.test:a@b>", "a@b", ""),
    ("<a@[192.0.2.1]>", "a@[192.0.2.1]", ""),
    ("<.a@b>", ".a@b", ""),
    ("<no-at>", "no-at", ""),  # the server refuses it as a recipient, with its own reply
    ("<销售@公司.中国>", "销售@公司.中国", ""),
])
def test_paths(arg, address, rest):
    assert parse_path(arg) == (address, rest)


@pytest.mark.parametrize("arg", [
    "<a@@b>", "<a@b.>", "<a@.b>", "<a b@c>", "<a@b", "a@b>", "<a@b, c@d>", "<<<", "<(comment)a@b>",
    '<"unterminated@b>', '<"q"x@b>', "<a@[]>", "<@r1:>", "<@r1,r2:a@b>", "<@:a@b>", "<a@b\\c>",
])
def test_malformed_paths(arg):
    assert parse_path(arg) == (None, "")


def test_params():
    assert parse_params(" size=10 Body=8bitmime SMTPUTF8") == {"SIZE": "10", "BODY": "8BITMIME", "SMTPUTF8": True}
    assert parse_params("") == {}
    assert parse_params("=x") is None and parse_params("BODY=") is None and parse_params("A-B=1") is None


@pytest.mark.parametrize(("text", "refusal"), [
    ("", None),
    ("SIZE=100 BODY=7BIT SMTPUTF8", None),
    ("SIZE=1000", None),
    ("SIZE=1001", "552 Error: message size exceeds fixed maximum message size"),
    ("SIZE=x", "SYNTAX"),
    ("SIZE", "SYNTAX"),
    ("=1", "SYNTAX"),
    ("BODY=BINARYMIME", "501 Error: BODY can only be one of 7BIT, 8BITMIME"),
    ("SMTPUTF8=yes", "501 Error: SMTPUTF8 takes no arguments"),
    ("RET=HDRS", "555 MAIL FROM parameters not recognized or not implemented"),
])
def test_mail_params(text, refusal):
    assert mail_params_refusal(text, size_limit=1000, syntax="SYNTAX") == refusal
