"""Third round of fast paths, each against what it replaced:

* the HTML prefilters (one search of the folded source instead of an ``in`` test per literal
  start) say yes exactly when one of the starts occurs;
* ``htmltext.folded`` remembered for the last text returns what a fresh call returns;
* ``quotes._Lines.from_lines`` (the From: line search on the lower case of ASCII text, without
  IGNORECASE) finds the lines ``_FROM_LINE`` finds.
"""

from __future__ import annotations

import random

from mailwarden.rules.mail import htmltext, quotes, quotes_html

from tests.rules.test_fast_html import _BITS

_DROP_STARTS = (b"<!--", b"<script", b"<style", b"<head", b"<title", b"<xml")
_CELL_STARTS = (b"<td", b"<th", b"</td", b"</th")
_CONTAINER_STARTS = (b"<div", b"<blockquote", b"<table", b"<section")
_MORE = ["<!-", "<scrip", "<STYLE", "<Head>", "<header>", "<TiTlE", "<xmp>", "<XML:ns>", "< td>", "<t d>",
         "</TH>", "<thead>", "</tD", "<Div", "<dIv>", "<BlockQuote", "<TABLE", "<sectio", "<SECTION",
         "<tab", "le>", "<", "/", "!", "--", "d", "h"]


def _fresh_folded(text: str) -> bytes | None:
    if not text.isascii() and any(c in text for c in htmltext._FOLDS_TO_ASCII):
        return None
    return text.encode("ascii", "replace").lower()


def test_html_start_searches_equal_the_in_tests() -> None:
    rng = random.Random(51)
    pool = _BITS + _MORE
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))
        low = _fresh_folded(text)
        if low is None:
            continue
        for pat, starts in ((htmltext._DROP_START, _DROP_STARTS), (htmltext._CELL_START, _CELL_STARTS),
                            (quotes_html._CONTAINER_START, _CONTAINER_STARTS)):
            assert (pat.search(low) is not None) == any(t in low for t in starts), (text, pat.pattern)


def test_folded_remembered_equals_fresh() -> None:
    rng = random.Random(52)
    pool = _BITS + _MORE
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 10))) for _ in range(300)]
    for _ in range(3000):
        t = rng.choice(texts)
        if rng.random() < 0.5:
            t = "".join(list(t))  # an equal string, maybe another object
        assert htmltext.folded(t) == _fresh_folded(t), t
        assert htmltext.folded(t) == _fresh_folded(t), t  # the remembered answer


_LINES = ["From: John <j@x.com>", "FROM : x", "fRoM:y", "from\t:", "From：z", "  > * From: q", "Von: a",
          "VON : b", "De: c", "dE:", "de", "dep: x", "froms: x", "Sent: Monday", "To: Tom", "Subject: x",
          "发件人: 约翰", "发送时间: 2024", "收件人: 汤姆", "寄件者：x", "> quoted", "plain text", "", "  ",
          "-----Original Message-----", "On Mon, John <j@x.com> wrote:", "\u212arom: x", "\u017ftuff",
          "\u0130de: x", "Ünïcode: 1", "price 12.50 USD", ">", "*", "\t"]


def test_from_lines_equal_the_ignorecase_search() -> None:
    rng = random.Random(53)
    for _ in range(20000):
        text = "\n".join(rng.choice(_LINES) for _ in range(rng.randint(0, 20)))
        lines = quotes._Lines(text)
        ends = [None, *(rng.randint(0, len(text)) for _ in range(2))]
        for end in ends:
            want = list(lines.finditer(quotes._FROM_LINE, 0, end))
            assert list(lines.from_lines(end)) == want, (text, end)
        # The remembered lower case of another text must not leak in.
        quotes._lower(rng.choice(_LINES))
        assert list(lines.from_lines()) == list(lines.finditer(quotes._FROM_LINE)), text
        assert quotes._marker_start(text) == _marker_reference(text), text


def _marker_reference(text: str) -> int | None:
    from tests.rules.test_fast_quotes import _reference_marker_start

    return _reference_marker_start(text)
