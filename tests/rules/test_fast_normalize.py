"""normalize()'s one-scan fast path gives the views the two-scan path gave."""

from __future__ import annotations

import random
import sys

from mailwarden.rules import normalize as N


def _reference(text: str) -> tuple[str, list[tuple[int, int]]]:
    """normalize() as it was: a scan for the table's characters, then one for traditional ones."""
    N.warm_up()
    if text.isascii():
        view = N.NormText(text, text.lower())
    else:
        low = text.lower()
        slow = N._SLOW_GB if N._gb2312_only(text) else N._SLOW  # noqa: SLF001
        if len(low) == len(text) and not slow.found_in(text):
            view = N.NormText(text, low)
        else:
            view = N.normalize(text)  # the table path is unchanged
        trad = N._TRAD_GB if N._gb2312_only(view.text) else N._TRAD  # noqa: SLF001
        if trad.found_in(view.text):
            simp = N._OPENCC.convert(view.text)  # type: ignore[union-attr]  # noqa: SLF001
            if len(simp) != len(view.text):
                simp = N._translate(view.text, N._T2S)  # noqa: SLF001
            view.text = simp
    return view.text, [view.span(i, i + 1) for i in range(len(view.text))]


def _got(text: str) -> tuple[str, list[tuple[int, int]]]:
    view = N.normalize(text)
    return view.text, [view.span(i, i + 1) for i in range(len(view.text))]


def test_fast_path_matches_the_two_scans() -> None:
    rng = random.Random(21)
    pool = list("aZ 1\n中文邮件附件ÉÀßİıſK") + ["後", "於", "發", "郵", "ｑ", "①", "℃", "\u200b", "𝐀", "Ａ",
                                             "Ω", "ω", "Я", "я", "＃", "…"]
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 20)))
        assert _got(text) == _reference(text), repr(text)


def test_lower_neither_makes_nor_removes_traditional_characters() -> None:
    # The fast path looks for traditional characters in the text rather than its lower case.
    N.warm_up()
    trad = set(N._T2S)  # noqa: SLF001
    assert all(chr(c).lower() == chr(c) for c in trad)
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        low = chr(cp).lower()
        if low != chr(cp):
            assert not any(ord(c) in trad for c in low), hex(cp)


def test_strip_ws_ascii_path_matches_replace() -> None:
    from mailwarden.rules.words import _WS_CHARS, strip_ws

    rng = random.Random(22)
    pool = list(_WS_CHARS) + list("ab.中é")
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))
        want = text
        for c in _WS_CHARS:
            want = want.replace(c, "")
        assert strip_ws(text) == want, repr(text)
