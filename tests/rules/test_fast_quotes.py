"""Text quote detection: the From:-line search bounded by the marker found so far finds
what the search through the whole text found."""

from __future__ import annotations

import random

from mailwarden.rules.mail import quotes


def _reference_marker_start(text: str) -> int | None:
    """quotes._marker_start as it was: the From: lines searched through the whole text."""
    best: int | None = None
    lines = quotes._Lines(text)  # noqa: SLF001
    separator = lines.search(quotes._SEPARATOR_LINE) if quotes._may_hold_separator(lines.padded) else None  # noqa: SLF001
    for p in (separator, lines.attribution()):
        if p is not None and (best is None or p < best):
            best = p
    for p in lines.finditer(quotes._FROM_LINE):  # noqa: SLF001
        if best is not None and p >= best:
            break
        if quotes._is_header_block(text, p):  # noqa: SLF001
            start = p
            head = text[max(0, start - 300) : start]
            u = None
            for u in quotes._Lines(head).finditer(quotes._UNDERSCORE_LINE):  # noqa: SLF001
                pass
            if u is not None:
                u_end = head.find("\n", u)
                if u_end == -1 or not head[u_end:].strip():
                    start = start - len(head) + u
            if best is None or start < best:
                best = start
            break
    return best


_LINES = ["From: John <j@x.com>", "Sent: Monday", "To: Tom", "Subject: x", "发件人: 约翰", "发送时间: 2024",
          "收件人: 汤姆", "> quoted", ">> deeper", "On Mon, John <j@x.com> wrote:", "-----Original Message-----",
          "________________________________", "在 2024年3月5日 10:00，Tom 写道：", "plain text", "",
          "  from : x", "de: y", "-- ", "Begin forwarded message:", "price 12.50 USD"]


def test_marker_and_spans_match_the_full_scans() -> None:
    rng = random.Random(41)
    for _ in range(6000):
        text = "\n".join(rng.choice(_LINES) for _ in range(rng.randint(0, 25)))
        assert quotes._marker_start(text) == _reference_marker_start(text), text  # noqa: SLF001


def test_latin_words_in_the_lower_case_without_lowering() -> None:
    rng = random.Random(42)
    pool = ["wrote", "WROTE", "wRo", "te", "schrieb", "ÉCRIT", "écrit", "Écrit", "original", " message",
            "ORIGINAL MESSAGE", "reply", "中文", "邮件", "\u0130", "\u212a", "\u0131", "\u017f", "x", " ", "\n"]
    words = ("wrote", "schrieb", "écrit", "original message", "reply message", "de", "from")
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))
        for n in range(1, len(words) + 1):
            assert quotes._in_lower(text, words[:n]) == any(w in text.lower() for w in words[:n]), text  # noqa: SLF001
