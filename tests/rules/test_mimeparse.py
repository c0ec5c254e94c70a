"""The fast MIME parser gives exactly the stdlib compat32 parser's tree, or hands over to it."""

from __future__ import annotations

import email.policy
import random
from email.message import EmailMessage, Message
from email.parser import BytesParser

import pytest

from mailwarden.rules.mail import mimeparse
from tests.rules.rulesutil import make_message


def _tree(m: Message) -> tuple:
    payload = m._payload  # noqa: SLF001 - comparing the parsed structure itself
    return (m.get_unixfrom(), list(m.raw_items()), m.get_default_type(), m.preamble, m.epilogue,
            [_tree(p) for p in payload] if isinstance(payload, list) else payload)


def _stdlib(raw: bytes) -> Message:
    return BytesParser(policy=email.policy.compat32).parsebytes(raw)


def _fast_path_taken(raw: bytes) -> bool:
    text = raw.decode("ascii", "surrogateescape")
    try:
        mimeparse._Scanner(text).part(0, len(text), top=True)  # noqa: SLF001
    except mimeparse._Fallback:  # noqa: SLF001
        return False
    return True


def _messages() -> list[bytes]:
    plain = make_message("Hello\n\n> quoted\n-- \nTom\n", subject="报价 新公司")
    gbk = make_message("我的私人微信：tom_8888\n" * 3, charset="gbk")
    alt = make_message("text part\n", html="<p>html part</p>\n")
    mixed = make_message("see attached")
    mixed.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="x.csv")
    mixed.add_attachment(b"\x00\x01binary", maintype="application", subtype="octet-stream",
                         filename="x.bin")
    nested = EmailMessage()
    nested["Subject"] = "nested"
    nested.set_content("a\n\nb")
    nested.add_alternative("<p>x</p>", subtype="html")
    nested.add_attachment(b"data" * 20, maintype="application", subtype="octet-stream",
                          filename="a.bin")
    nested.preamble = "This is a multi-part message.\n"
    nested.epilogue = "epilogue\n"
    out = [m.as_bytes() for m in (plain, gbk, alt, mixed, nested)]
    return out + [m.replace(b"\n", b"\r\n") for m in out]


WELL_FORMED = _messages()


@pytest.mark.parametrize("raw", WELL_FORMED)
def test_well_formed_messages_take_the_fast_path_and_match(raw: bytes) -> None:
    assert _fast_path_taken(raw)
    assert _tree(mimeparse.parse_bytes(raw)) == _tree(_stdlib(raw))


MALFORMED = [
    b"",
    b"no headers at all\x00\xff 13800138000",
    b"Subject: x\n",  # no empty line
    b"Subject: x\nnot a header\n\nbody\n",
    b"From someone\nSubject: x\n\nbody",  # unix-from line
    b"Subject: x\nFrom x\n\nbody",  # misplaced unix-from
    b"Subject: x\r\nX: y\rZ\r\n\r\nbody\r",  # bare CR
    b"Content-Type: multipart/mixed\n\nno boundary parameter\n",
    b"Content-Type: multipart/mixed; boundary=b\n\npreamble only\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nunclosed\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\ndouble\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nno header\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b  \n\ny\n--b--  \nepi",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--bx\n--b--",
    b"Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: d\n\nx\n--b--\n",
    b"Content-Type: message/rfc822\n\nSubject: inner\n\nbody\n",
    b"Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/alternative; "
    b"boundary=b\n\n--b\n\ninner\n--a\n\nouter\n--a--\n",
    b"Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/mixed; "
    b"boundary=a\n\n--a\n\nsame boundary\n--a--\n--a--\n",
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_messages_match_the_stdlib(raw: bytes) -> None:
    assert _tree(mimeparse.parse_bytes(raw)) == _tree(_stdlib(raw))


def test_random_damage_never_changes_the_tree() -> None:
    rng = random.Random(3)
    checked = 0
    for raw in WELL_FORMED:
        for _ in range(60):
            lines = raw.split(b"\n")
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(lines))
                op = rng.randrange(5)
                if op == 0 and len(lines) > 1:
                    del lines[i]
                elif op == 1:
                    lines.insert(i, lines[i])
                elif op == 2:
                    lines.insert(i, rng.choice([b"", b"--", b" cont", b"X-Bad", b"From x"]))
                elif op == 3:
                    lines[i] += rng.choice([b"--", b" ", b"x", b"\r"])
                else:
                    lines = lines[: i + 1]
            damaged = b"\n".join(lines)
            assert _tree(mimeparse.parse_bytes(damaged)) == _tree(_stdlib(damaged)), damaged
            checked += 1
    assert checked == 60 * len(WELL_FORMED)


@pytest.mark.parametrize("block", [
    "Subject: a\r\n\r\n",
    "Subject:a\n\n",
    "Subject:   \t spaced value  \nX-Empty:\nX-Tab:\tv\n\n",
    "Subject: folded\r\n\tover\r\n  three lines\r\nTo: x@y\r\n\r\n",
    " continuation first\nSubject: a\n\n",
    "From someone Mon Jan 1\nSubject: a\n\n",
    ":no name\nSubject: a\n\n",
    "Content-Type: multipart/mixed;\n boundary=\"b\"\n\n",
])
def test_header_blocks_read_as_the_feed_parser_reads_them(block: str) -> None:
    """Blocks whose every line the scanner accepted (a field, a continuation, ``From ``)."""
    want = mimeparse._HEADERS.parsestr(block, headersonly=True)  # noqa: SLF001
    got = mimeparse._header_block(block, 0, len(block) - (2 if block.endswith("\r\n\r\n") else 1))  # noqa: SLF001
    assert _tree(got) == _tree(want)
    assert [(type(d), str(d)) for d in got.defects] == [(type(d), str(d)) for d in want.defects]


@pytest.mark.parametrize("block", [
    b"Subject: a\r\nTo: b\r\n", b"Subject: a\r\nTo: b\r\n\r\n", b"Subject: a\n\tfolded\n\n", b"Subject: a",
    b"Subject: a\rTo: b\r\n", b"Subject: a\r\nnot a field\r\n", b" lead\r\nSubject: a\r\n",
    b"From x\r\nSubject: a\r\n", b"Subject: a\r\nFrom x\r\n", b"--b\r\n", b"Subject: \xe4\xb8\xad\r\n",
    b"Subject: a\r\n\r\nbody\r\n", b"",
])
def test_parse_headers_reads_as_bytes_header_parser(block: bytes) -> None:
    from email.parser import BytesHeaderParser

    want = BytesHeaderParser(policy=email.policy.compat32).parsebytes(block)
    got = mimeparse.parse_headers(block)
    assert _tree(got) == _tree(want)
    assert [(type(d), str(d)) for d in got.defects] == [(type(d), str(d)) for d in want.defects]
