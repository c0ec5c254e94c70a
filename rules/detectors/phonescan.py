"""Phone-number candidates: digit runs (and Chinese-numeral runs) that may be phone numbers.

The scanning half of the phone detector (:mod:`.phones` validates what is found here). It runs
while the SMTP client waits, over every segment of a message, so the digit runs are found on a
one-byte-per-character skeleton of the text, and the checks that recur with the same input
are memoised.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from ..normalize import NormText

# Starts with a digit so that sre scans ahead quickly; a "+" or "(" before it is added back.
# The lookahead is implied by the rest (7+ digits, only digits and separators) but lets sre
# give up on short numbers ("12.50", "25 days") before trying the separator alternatives.
_CAND = re.compile(r"\d(?=[\d \t.\-/()（）]{6})(?:[ \t.\-/()（）]{0,3}\d){6,15}(?![0-9])")
_PREFIX = re.compile(r"(?:\+|00)?[ \t]?[(（]?[ \t]?$")
_CN_DIGITS = "零〇一二三四五六七八九"
_CN_MAP = {ord(c): str(i) for i, c in enumerate("零一二三四五六七八九")}
_CN_MAP.update({ord("〇"): "0", ord("幺"): "1", ord("两"): "2", ord("兩"): "2"})
_CN_RUN = re.compile(r"[零〇一二三四五六七八九幺两兩][零〇一二三四五六七八九幺两兩0-9 \-.]{6,24}")
_CN_PRESENT = re.compile(r"[零〇一二三四五六七八九幺两兩]{3}")
# Everything a candidate holds besides digits (separators, the "+"/"(" prefix, and for
# Chinese numerals the converted run): deleting these is _digits() without a regex.
_NOT_DIGITS = str.maketrans("", "", " \t.-/()（）+")


# _CAND on a skeleton of the text, in C: one byte per character, "0" for an ASCII digit, "s"
# for an ASCII separator, "." for anything else; _SKELETON_CAND is _CAND spelled in those
# bytes, so its matches have the same offsets. Only valid when no other character can be part
# of a match: a non-ASCII decimal digit (``\d`` is Unicode) or a full-width parenthesis (see
# _special). Scanning bytes with a literal first byte is several times faster than ``\d``.
_SKELETON = bytes(0x30 if chr(b) in "0123456789" else 0x73 if chr(b) in " \t.-/()" else 0x2E
                  for b in range(256))
_SKELETON_CAND = re.compile(rb"0(?=[0s]{6})(?:s{0,3}0){6,15}(?!0)")
_special_auto: Any = None  # non-ASCII digits and full-width parentheses; Chinese numeral triples
_CN_NUMERALS = "零〇一二三四五六七八九幺两兩"


def _special_automaton() -> Any:
    global _special_auto
    if _special_auto is None:
        import ahocorasick_rs  # noqa: PLC0415

        pats = [chr(c) for c in range(0x80, 0x110000)
                if not 0xD800 <= c <= 0xDFFF and chr(c).isdecimal()] + ["（", "）"]
        n = len(pats)
        pats += [a + b + c for a in _CN_NUMERALS for b in _CN_NUMERALS for c in _CN_NUMERALS]
        _special_auto = (ahocorasick_rs.AhoCorasick(pats), n, pats)
    return _special_auto


def _special_positions(text: str, found: list[tuple[int, int, int]] | None = None,
                       ) -> tuple[list[int], list[int]]:
    """Where :func:`_special` finds odd digits and Chinese numeral triples (sorted).

    *found*: the automaton's matches in *text*, if already known (see :mod:`.fixedscan`)."""
    if text.isascii():
        return [], []
    auto, n, _pats = _special_automaton()
    if found is None:
        found = auto.find_matches_as_indexes(text, overlapping=True)
    odd: list[int] = []
    cn: list[int] = []
    for i, s, _e in found:
        (odd if i < n else cn).append(s)
    return odd, cn


def _special(text: str) -> tuple[bool, bool]:
    """``(odd digits, Chinese numerals)``: whether *text* holds a non-ASCII decimal digit or a
    full-width parenthesis, and whether it holds three Chinese numerals in a row
    (:data:`_CN_PRESENT`). One automaton pass instead of two regex scans."""
    if text.isascii():
        return False, False
    auto, n, _pats = _special_automaton()
    odd = cn = False
    for i, _s, _e in auto.find_matches_as_indexes(text, overlapping=True):
        if i < n:
            odd = True
        else:
            cn = True
        if odd and cn:
            break
    return odd, cn


def _skeleton_matches(text: str) -> Iterator[re.Match[bytes]]:
    """The :data:`_SKELETON_CAND` matches in the skeleton of *text* (valid where no odd digit
    is, see :func:`_special`); their spans are those of :data:`_CAND`."""
    return _SKELETON_CAND.finditer(text.encode("ascii", "replace").translate(_SKELETON))


def _cand_spans(text: str, odd: bool) -> list[tuple[int, int]]:
    """Spans of the :data:`_CAND` matches in *text* (*odd*: see :func:`_special`)."""
    if odd:
        return [m.span() for m in _CAND.finditer(text)]
    skeleton = text.encode("ascii", "replace").translate(_SKELETON)
    return [m.span() for m in _SKELETON_CAND.finditer(skeleton)]


_prefix_memo: dict[str, int] = {}


def _prefix_back(w: str) -> int:
    """How far a "+", "00" or "(" prefix (:data:`_PREFIX`) at the end of the five characters
    *w* before a digit run extends the run backwards (0: none). Memoised: it depends on *w*
    alone, and the same few windows ("Tel +", "Mob: (") recur all through a message; shared
    by the threads that evaluate, safe as a :class:`~mailwarden.rules.memo.Memo` is."""
    n = _prefix_memo.get(w)
    if n is None:
        p = _PREFIX.search(w)
        n = len(w) - p.start() if p is not None and p.start() < len(w) and p.group().strip(" \t") else 0
        if len(_prefix_memo) > 10_000:
            _prefix_memo.clear()
        _prefix_memo[w] = n
    return n


def _candidates(view: NormText, home_cn: bool = False, spans: list[tuple[int, int]] | None = None,
                cn: bool | None = None) -> Iterator[tuple[int, int, str]]:
    """Digit runs that may be phone numbers, as ``(start, end, candidate text)``.

    With *home_cn* (policy region CN) runs that :func:`_check_segment` would drop anyway are
    skipped here, before any slicing: no "+"/"0"/"(" prefix, not starting with 0 and fewer
    than 10 digits (so neither prefixed, trunk-dialled nor an 11-digit mobile). Number-heavy
    text (dates, HS codes, prices, quantities) is mostly such runs.
    """
    text = view.text
    if spans is None or cn is None:
        odd, cn = _special(text)
        spans = _cand_spans(text, odd)
    for start, end in spans:
        if start:
            # Only "+", "00" or "(" can extend the candidate backwards (see _PREFIX); the
            # window test saves a regex search for the common " 12345678" case.
            w = text[max(0, start - 5) : start]
            if "+" in w or "0" in w or "(" in w or "（" in w:
                start -= _prefix_back(w)
            elif home_cn and text[start] != "0" and (
                    end - start < 10 or len(text[start:end].translate(_NOT_DIGITS)) < 10):
                continue
            if start:
                prev = text[start - 1]
                if prev.isascii() and (prev.isalnum() or prev in "@._%+-"):
                    continue  # MSCU1234567, x@1234567.com, part of a longer code
        yield start, end, text[start:end]
    if cn:
        for m in _CN_RUN.finditer(text):
            conv = m.group().translate(_CN_MAP).rstrip(" -.")
            if sum(c.isdigit() for c in conv) >= 7:
                yield m.start(), m.start() + len(conv), conv
