"""The fast scanning paths find exactly what the plain regular expressions find.

Covers: the phone skeleton and its fallback (non-ASCII digits, full-width parentheses), the
C-level ``looks_binary`` count, the block-wise ``>``-quote scan, the e-mail local-part scan, and
one search over all segments (nothing may match across a segment boundary).
"""

from __future__ import annotations

import random
import re

import pytest

from mailwarden.rules.mail import quotes
from mailwarden.rules.mail.charset import _BAD_CHARS, _bad_count
from mailwarden.rules.detectors import emails, phonescan
from mailwarden.rules.normalize import normalize
from tests.rules.rulesutil import make_message


def _regex_candidates(text: str, home_cn: bool) -> list[tuple[int, int, str]]:
    """_candidates as it was with the plain _CAND regex scan."""
    view = normalize(text)
    odd, cn = phonescan._special(view.text)  # noqa: SLF001
    spans = [m.span() for m in phonescan._CAND.finditer(view.text)]  # noqa: SLF001
    return list(phonescan._candidates(view, home_cn, spans, cn))  # noqa: SLF001


@pytest.mark.parametrize("text", [
    "call 138-0013-8000 or +86 (755) 8888 6666, ETD 2024-06-15, HS 9405.40.90",
    "٠١٣٨٠٠١٣٨٠٠٠ and ۱۳۸۰۰۱۳۸۰۰۰ and १३८००१३८०००",  # Arabic-Indic and Devanagari digits
    "电话（0755）88886666 手机：一三八零零一三八零零零",
    "x@1234567.com MSCU1234567 00 86 138 0013 8000 (0)20 7946 0958",
])
def test_phone_skeleton_matches_the_regex(text: str) -> None:
    for home_cn in (True, False):
        view = normalize(text)
        assert list(phonescan._candidates(view, home_cn)) == _regex_candidates(text, home_cn)  # noqa: SLF001


def test_phone_skeleton_matches_the_regex_on_random_text() -> None:
    rng = random.Random(1)
    alphabet = list("0123456789 \t.-/()（）+0") + list("零一八两") + ["٣", "a", "\n", "@", "_", "é"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        view = normalize(text)
        assert list(phonescan._candidates(view, True)) == _regex_candidates(text, True), text  # noqa: SLF001


def test_bad_char_count_matches_the_regex() -> None:
    rng = random.Random(5)
    pool = [chr(c) for c in [*range(0x80), 0xE000, 0xEFFF, 0xF000, 0xF8FF, 0xF900, 0xFFFD, 0xFF0C,
                             0x4E00, 0x1F600, 0xDCFF, 0xEDFF]]
    for _ in range(5000):
        s = "".join(rng.choice(pool) for _ in range(rng.randint(0, 30)))
        assert _bad_count(s) == len(_BAD_CHARS.findall(s)), repr(s)


def _quoted_spans_line_by_line(text: str) -> list[tuple[int, int]]:
    """The ">" part of quoted_spans_text one line at a time (for texts without markers)."""
    spans: list[tuple[int, int]] = []
    padded = "\n" + text
    for m in re.finditer(r"\n[ \t]*>", padded):
        qstart = m.start()
        end = text.find("\n", qstart)
        end = len(text) if end == -1 else end + 1
        if spans and spans[-1][1] >= qstart - 1 and not text[spans[-1][1]:qstart].strip():
            spans[-1] = (spans[-1][0], end)
            continue
        start = qstart
        if qstart - 1 > 0:
            prev_start = text.rfind("\n", 0, qstart - 1) + 1
            line = text[prev_start:qstart - 1]
            if line.rstrip().endswith((":", "：")) and not line.lstrip(" \t").startswith(">"):
                start = prev_start
        spans.append((start, end))
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def test_quote_blocks_match_the_line_by_line_scan() -> None:
    rng = random.Random(9)
    lines = ["> a", ">", " > b", "\t>c", "", " ", "text", "note:", ">> deep", "a > b", "> x\r"]
    for _ in range(5000):
        text = "\n".join(rng.choice(lines) for _ in range(rng.randint(0, 12)))
        text += rng.choice(["", "\n", "\n\n"])
        assert quotes.quoted_spans_text(text) == _quoted_spans_line_by_line(text), repr(text)


def test_local_part_scan_matches_the_regex() -> None:
    rng = random.Random(2)
    alphabet = "ab z09._%+-\n\t@#AÉ中"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        end = rng.randint(0, len(text))
        m = emails._LOCAL_BEFORE.search(text, max(0, end - 64), end)  # noqa: SLF001
        assert emails._local_before(text, end) == (None if m is None else (m.start(), m.group()))  # noqa: SLF001


def _two_segments(subject: str, body: str) -> bytes:
    """A message whose only text segments are the subject and the body (no display name)."""
    return (f"From: sales@brightlight.cn\nTo: buyer@acme-imports.com\nSubject: {subject}\n"
            f"Content-Type: text/plain; charset=utf-8\n\n{body}\n").encode()


@pytest.mark.parametrize("subject,body,rules", [
    ("Please contact me", "privately, thanks", {"DIVERT_BUSINESS"}),  # a phrase split in two
    ("write to tom", "@gmail.com is down", {"PRIVATE_EMAIL_FREEMAIL", "EXTERNAL_EMAIL"}),
    ("call 138", "00138000 ok", {"PRIVATE_PHONE", "PRIVATE_PHONE_HINTED"}),
    ("my wechat", ": tom_8888 ok", {"PRIVATE_WECHAT"}),
])
def test_nothing_matches_across_segments(check, subject: str, body: str, rules: set[str]) -> None:
    # Subject and body are separate segments, searched as one joined text.
    assert not {f.rule for f in check(_two_segments(subject, body)).findings} & rules
    joined = check(_two_segments("x", f"{subject} {body}"))
    assert {f.rule for f in joined.findings} & rules  # the same text in one segment is found


def test_findings_in_every_segment_are_reported_where_they_are(check) -> None:
    msg = make_message("Hi,\nmy mobile 13800138000\n\nOn Mon, John wrote:\n> wechat: jimmy_2024\n"
                       "> mail tom@qq.com\n", subject="新公司 13900139000")
    wheres = {(f.kind, f.where) for f in check(msg).findings}
    assert ("phone", "subject") in wheres and ("phone", "body") in wheres
    assert ("wechat", "quoted") in wheres and ("email", "quoted") in wheres
