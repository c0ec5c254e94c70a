"""The mail model: one parse of each message, shared by the rules and the signature engine.

The structure the tree parser finds on its fast path must be exactly what the byte-offset
scanner finds (the signature engine cuts and splices by it), and the gateway's path (rules,
then signature, on one :class:`Mail`) must scan and parse each message once.
"""

from __future__ import annotations

import random

import pytest

from mailwarden.rules import evaluate
from mailwarden.rules.mail import Mail, mimeparse, structure
from mailwarden.rules.mail.structure import Part, from_spans, scan
from mailwarden.signatures import SignatureCompany, SignatureSettings, SignatureUser, apply_signature, load_signatures
from tests.rules.rulesutil import CTX, photos_message
from tests.rules.test_mimeparse import MALFORMED, WELL_FORMED


def _shape(p: Part) -> tuple:
    return (p.start, p.header_end, p.body_start, p.end, list(p.headers.raw_items()),
            p.ctype, p.param("boundary"), p.param("charset"), p.cte, p.disposition,
            [_shape(c) for c in p.children])


# Boundary lines the feed parser and the byte-offset scanner read differently (whitespace the
# feed parser does not allow after a boundary, a boundary parameter with trailing blanks or in
# RFC 2231 form), deep nesting, and the shapes of the rules' own parser tests.
ODD = [
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b \x0c\n\ny\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b\r\n\ny\n--b--\x0b\n",
    b'Content-Type: multipart/mixed; boundary="b "\n\n--b \n\nx\n--b--\n',
    b"Content-Type: multipart/mixed; boundary*=''b\n\n--b\n\nx\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\nx\n----\n",
    b"Content-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\nContent-Type: text/plain\r\n\r\n"
    b"\r\n--A\r\n\r\n\r\n--A--\r\n",
    b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(25))
    + b"\ndeep\n" + b"".join(b"--b%d--\n" % i for i in reversed(range(25))),
]


def _damaged(rng: random.Random) -> list[bytes]:
    out = []
    for raw in WELL_FORMED:
        for _ in range(30):
            lines = raw.split(b"\n")
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(lines))
                lines[i] += rng.choice([b" ", b"\t", b"\x0c", b"--", b"\r", b"x"])
            out.append(b"\n".join(lines))
    return out


CASES = WELL_FORMED + MALFORMED + ODD + _damaged(random.Random(7))


@pytest.mark.parametrize("raw", CASES)
def test_structure_from_the_parse_is_the_scanned_structure(raw: bytes) -> None:
    parsed = mimeparse.parse(raw)
    if parsed.spans is not None:
        assert _shape(from_spans(parsed.spans)) == _shape(scan(raw))


def test_well_formed_messages_get_their_structure_from_the_parse() -> None:
    for raw in WELL_FORMED:
        assert mimeparse.parse(raw).spans is not None


@pytest.mark.parametrize("raw", ODD[:5])
def test_boundary_lines_read_differently_fall_back_to_the_scanner(raw: bytes) -> None:
    assert mimeparse.parse(raw).spans is None


SIGS = load_signatures(SignatureSettings(), SignatureCompany(
    "Bright Lighting", ("brightlight.cn",), ("+86 755 8888 6666",), ()))
USER = SignatureUser("tom", "Tom Li", "Sales", "+86 138 0000 1111")


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"scan": 0, "parse": 0}

    def count(name, fn):
        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapper

    scan_counted = count("scan", structure.scan)
    for where in ("mailwarden.rules.mail.structure.scan", "mailwarden.rules.mail.model.scan",
                  "mailwarden.rules.mail.segments.scan"):
        monkeypatch.setattr(where, scan_counted)
    monkeypatch.setattr("mailwarden.rules.mail.model.parse", count("parse", mimeparse.parse))
    return calls


@pytest.mark.parametrize("raw", WELL_FORMED)
def test_the_gateway_path_parses_each_message_once(raw: bytes, policy, monkeypatch) -> None:
    calls = _counting(monkeypatch)
    mail = Mail(raw)
    shared = evaluate(policy, raw, CTX, mail=mail)
    signed = apply_signature(raw, SIGS, USER, mail=mail)
    assert calls == {"scan": 0, "parse": 1}
    # and it decides and signs exactly as the two stages do on their own
    assert shared == evaluate(policy, raw, CTX)
    assert signed == apply_signature(raw, SIGS, USER)
    assert signed.applied


def test_big_messages_are_scanned_once_for_the_media_cut_and_the_signature(policy, monkeypatch) -> None:
    raw = photos_message()
    calls = _counting(monkeypatch)
    mail = Mail(raw)
    evaluate(policy, raw, CTX, mail=mail)
    apply_signature(raw, SIGS, USER, mail=mail, joined=False)
    assert calls == {"scan": 1, "parse": 1}


def test_a_model_of_other_bytes_is_refused(policy) -> None:
    mail = Mail(WELL_FORMED[0])
    with pytest.raises(ValueError):
        evaluate(policy, WELL_FORMED[1], CTX, mail=mail)
    with pytest.raises(ValueError):
        apply_signature(WELL_FORMED[1], SIGS, USER, mail=mail)
