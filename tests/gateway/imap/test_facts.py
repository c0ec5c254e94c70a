"""describe() on malformed and extreme input: never raises, and the facts agree with the bytes.

Every message here is checked by :func:`assert_consistent`: the part ranges nest inside their
parent's body in order, line counts are those of the bytes, every section of the section map
is a slice of the message, the wire forms parse as IMAP, and the JSON text gives back facts
that render the same.
"""

from __future__ import annotations

import re

import pytest

from mailwarden.gateway.imap.bodystructure import JSON_VERSION, MessageFacts, PartFacts, describe
from mailwarden.gateway.imap.sections import locate, section_map
from mailwarden.gateway.imap.wire import render_body, render_bodystructure, render_envelope
from mailwarden.rules.mail.structure import MAX_DEPTH

from .corpus import CORPUS, HEAD, msg, mutations


def parse_imap(value: bytes) -> object:
    """Read one IMAP value (RFC 3501 section 9: lists, quoted strings, literals, NIL, numbers)
    and require that nothing follows it; a strict reader, so the rendering is checked."""
    pos = 0

    def item() -> object:
        nonlocal pos
        c = value[pos:pos + 1]
        if c == b"(":
            pos += 1
            items = []
            while value[pos:pos + 1] != b")":
                if items:  # RFC 3501 puts a space between list items, none between bodies/addresses
                    if value[pos:pos + 1] == b" ":
                        pos += 1
                    else:
                        assert value[pos:pos + 1] == b"(" and value[pos - 1:pos] == b")", value[pos - 20:pos + 20]
                items.append(item())
            pos += 1
            return items
        if c == b'"':
            out = bytearray()
            pos += 1
            while value[pos:pos + 1] != b'"':
                ch = value[pos:pos + 1]
                assert ch and ch not in (b"\r", b"\n") and ch < b"\x80", value[pos - 20:pos + 20]
                if ch == b"\\":
                    pos += 1
                    assert value[pos:pos + 1] in (b'"', b"\\")
                out += value[pos:pos + 1]
                pos += 1
            pos += 1
            return bytes(out)
        if c == b"{":
            close = value.index(b"}\r\n", pos)
            n = int(value[pos + 1:close])
            pos = close + 3 + n
            assert pos <= len(value)
            return value[close + 3:pos]
        m = re.compile(rb"NIL|\d+").match(value, pos)
        assert m is not None, value[pos - 20:pos + 20]
        pos = m.end()
        return None if m.group() == b"NIL" else int(m.group())

    result = item()
    assert pos == len(value), value[pos - 20:]
    return result


def _check_part(raw: bytes, part: PartFacts, lo: int, hi: int) -> None:
    assert lo <= part.start <= part.body_start <= part.end <= hi
    if part.kind in ("text", "message"):
        assert part.lines == raw.count(b"\n", part.body_start, part.end)
    if part.kind == "message":
        (inner,) = part.children
        assert inner.start == part.body_start and inner.end <= part.end
        assert inner.envelope is not None
    pos = part.body_start
    for child in part.children:
        _check_part(raw, child, pos, part.end)
        pos = child.end


def assert_consistent(raw: bytes, *, parse_wire: bool = True) -> MessageFacts:
    facts = describe(raw)
    assert facts.size == len(raw) and facts.lines == raw.count(b"\n")
    assert facts.root.start == 0 and facts.root.end == len(raw)
    _check_part(raw, facts.root, 0, len(raw))
    for section, span in section_map(facts).items():
        assert locate(facts, section) == span, section
    again = MessageFacts.from_json(facts.to_json())
    for render in (render_envelope, render_bodystructure, render_body):
        assert render(again) == render(facts)
    if parse_wire:
        assert len(parse_imap(render_envelope(facts))) == 10
        assert isinstance(parse_imap(render_bodystructure(facts)), list)
        assert isinstance(parse_imap(render_body(facts)), list)
    return facts


MALFORMED = {
    "empty": b"",
    "one_byte": b"x",
    "lone_cr": b"\r",
    "no_boundary_param": msg("Content-Type: multipart/mixed", "", "--a", "", "x", "--a--"),
    "boundary_never_used": msg("Content-Type: multipart/mixed; boundary=zz", "", "text", "more"),
    "missing_close": msg("Content-Type: multipart/mixed; boundary=a", "", "--a", "", "x", "--a", "", "y"),
    "garbage_type": msg("MIME-Version: 1.0", "Content-Type: ;;;===//", "", "x"),
    "type_slash_only": msg("Content-Type: /", "", "x"),
    "unclosed_quote": msg('Content-Type: text/plain; charset="utf-8', 'From: "no end <a@b>', "", "x"),
    "unclosed_comment": msg("From: a@b (comment", "To: ((((", "Subject: x", "", "y"),
    "8bit_gbk_headers": msg("Subject: 报价".encode("gbk"), "From: 王 <w@x>".encode("gbk"),
                            'Content-Type: text/plain; name="报价.txt"'.encode("gbk"), b"", "正文".encode("gbk")),
    "nul_bytes": b"From: a\x00b@x\r\nSubject: n\x00l\r\nContent-Type: text/plain; a=\"\x00\"\r\n\r\nbody\x00\r\n",
    "lf_then_crlf": (b"Subject: mixed\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\n\r\n"
                     b"--m\n\nx\r\n--m--"),
    "bare_cr_lines": b"Subject: cr\rFrom: a@b\r\rbody\r",
    "rfc822_garbage": msg("Content-Type: message/rfc822", "", "\x01\x02 not a message", "--", "-- --"),
    "rfc822_empty": msg("Content-Type: message/rfc822", ""),
    "rfc822_base64": msg("Content-Type: message/rfc822", "Content-Transfer-Encoding: base64", "", "U3ViamVjdDogeA0K"),
    "digest_of_garbage": msg("Content-Type: multipart/digest; boundary=d", "", "--d", "junk", "--d", "", "--d--"),
    "boundary_at_start": b"Content-Type: multipart/mixed; boundary=s\r\n\r\n--s--\r\n",
    "headers_no_colon": msg("this is not a header", "nor this", "", "body"),
    "continuation_first": msg(" continued", "\tagain", "Subject: x", "", "b"),
    "huge_header_line": msg("Subject: " + "x" * 200_000, "To: " + "a@b, " * 20_000, "", "b"),
    "bad_base64": msg("MIME-Version: 1.0", "Content-Transfer-Encoding: base64", "", "!!!! not base64 ===="),
    "bad_qp": msg("MIME-Version: 1.0", "Content-Transfer-Encoding: quoted-printable", "", "=ZZ=\r\n=", "=4"),
    "params_2231_gaps": msg("Content-Type: application/x; name*0=a; name*2=c; name*1*=%zz; x*=''; y*9=q", "", ""),
    "address_soup": msg("From: <>, <@>, @, :;, a:b:c;;, \"\\", "To: ,,,,", "Cc: <a@b", "Bcc: x@[1.2", "", ""),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_gives_consistent_facts(name):
    assert_consistent(MALFORMED[name])


@pytest.mark.parametrize("name", [name for name, _raw in CORPUS])
def test_corpus_facts_are_consistent(name):
    raw = dict(CORPUS)[name]
    assert_consistent(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def test_mutated_messages_never_raise():
    """Bytes cut, doubled and flipped at random places in corpus messages (a fixed seed)."""
    for raw in mutations(3516, 400):
        assert_consistent(raw)


def test_thousands_of_parts():
    parts = [x for i in range(2500) for x in ("--p", f"Content-Type: text/plain; name=p{i}", "", f"part {i}")]
    raw = msg(*HEAD, "MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=p", "", *parts, "--p--")
    facts = assert_consistent(raw)
    assert len(facts.root.children) == 2500
    assert raw[slice(*locate(facts, "2500"))] == b"part 2499"


def _nested_multiparts(depth: int) -> bytes:
    head, tail = [], []
    for i in range(depth):
        head += [f"--b{i}", f"Content-Type: multipart/mixed; boundary=b{i + 1}", ""]
        tail.insert(0, f"--b{i}--")
    return msg("Content-Type: multipart/mixed; boundary=b0", "", *head, f"--b{depth}", "", "leaf",
               f"--b{depth}--", *tail)


def _nested_messages(depth: int) -> bytes:
    lines = [*HEAD, "Subject: outer"]
    for i in range(depth):
        lines += ["Content-Type: message/rfc822", "", f"Subject: level {i}"]
    return msg(*lines, "", "innermost")


@pytest.mark.parametrize("build", [_nested_multiparts, _nested_messages])
def test_nesting_beyond_the_model_depth(build):
    """Deeper than the mail model follows: the facts stop there, still consistent."""
    raw = build(MAX_DEPTH * 3)
    facts = assert_consistent(raw, parse_wire=False)
    depth, part = 0, facts.root
    while part.children:
        part, depth = part.children[0], depth + 1
    assert 0 < depth <= MAX_DEPTH * 3
    render_bodystructure(facts)


def test_json_is_compact_versioned_ascii():
    raw = dict(CORPUS)["gbk_8bit_headers"]
    text = describe(raw).to_json()
    assert text.isascii() and "\n" not in text and ": " not in text
    assert text.startswith(f'{{"v":{JSON_VERSION},')
    facts = MessageFacts.from_json(text)
    assert facts.envelope.subject == "报价单 第二版".encode("gbk")


@pytest.mark.parametrize("text", ['{"v":99,"size":1,"lines":0,"root":{}}', '{"size":1}', "[]", "not json", '{"v":1}'])
def test_json_of_another_version_or_shape_is_refused(text):
    with pytest.raises(ValueError):
        MessageFacts.from_json(text)


def test_describe_keeps_offsets_not_copies():
    """The facts hold offsets into the message, no copy of a body (a 5 MB part stays out)."""
    body = b"A" * 5_000_000
    raw = msg(*HEAD, "MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=x", "", "--x",
              "Content-Type: application/octet-stream", "", body, "--x--")
    facts = describe(raw)
    assert len(facts.to_json()) < 2000
    (part,) = facts.root.children
    assert part.size == len(body) and raw[slice(*locate(facts, "1"))] == body


def test_structure_scans_an_embedded_message_in_place():
    """``scan`` over a range (what describe uses for message/rfc822) keeps the offsets of the
    whole message, and ``scan_parts`` splits by a boundary given from outside."""
    from mailwarden.rules.mail.structure import scan, scan_parts

    inner = msg("Subject: in", "Content-Type: multipart/mixed; boundary=i", "", "--i", "", "one", "--i--")
    raw = msg("Content-Type: message/rfc822", "") + inner
    start = raw.index(b"Subject: in")
    part = scan(raw, start, len(raw))
    assert (part.start, part.end) == (start, len(raw)) and part.maintype == "multipart"
    assert [raw[c.body_start:c.end] for c in part.children] == [b"one"]
    assert scan_parts(raw, part, "nope") == [] and len(part.children) == 1
    (again,) = scan_parts(raw, part, "i")
    assert again.parent is part and raw[again.body_start:again.end] == b"one"
