"""Normalisation for matching, with a map back to the original text.

The matching view of a text is NFKC (full-width → ASCII), casefolded, traditional → simplified
Chinese, with zero-width and bidi controls removed. Every position in the view maps back to the
original text, so findings report what the operator actually wrote and redaction replaces it.

Speed matters (the whole message is checked while the SMTP client waits): ASCII text takes a
``str.lower()`` fast path; other text goes through one ``str.translate`` with a table built once
per process, and only the few characters that change length (deletions, expansions) are located
with a regular expression to build the offset map.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from bisect import bisect_right

__all__ = ["NormText", "normalize", "normalize_term", "collapse_spaces", "warm_up"]

# Zero-width, joiners, bidi controls, soft hyphen, variation selectors, BOM.
_DELETE = (
    [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0]
    + list(range(0x200B, 0x2010))
    + list(range(0x202A, 0x202F))
    + list(range(0x2060, 0x2070))
    + list(range(0xFE00, 0xFE10))
)

# Full-width CJK punctuation that is kept as is: it is everywhere in Chinese text and rewriting
# it would cost more than it helps; the detectors' patterns accept both widths.
_KEEP = frozenset([0x3000, 0xFF01, 0xFF02, 0xFF05, 0xFF07, 0xFF08, 0xFF09, 0xFF0C, 0xFF1A, 0xFF1B,
                   0xFF1F, 0xFF5E])

_lock = threading.Lock()
_TABLE: dict[int, str] | None = None  # NFKC + lower, deletions; without the _KEEP characters
_SLOW: _CharSet | None = None  # characters the table changes beyond str.lower()
_IRREGULAR: _CharSet | None = None  # characters the table deletes or expands
_T2S: dict[int, str] = {}
_TRAD: _CharSet | None = None
# The same sets restricted to GB2312 characters, for text that encodes as GB2312 (most
# simplified-Chinese mail): a handful of characters instead of thousands, which sre searches
# several times faster than its big-charset tables.
_SLOW_GB: _CharSet | None = None
_TRAD_GB: _CharSet | None = None
_OPENCC: object | None = None
# _SLOW and _TRAD in one set (and its GB2312 part), for text that needs neither (most text).
_ANY: _CharSet | None = None
_ANY_GB: _CharSet | None = None


class _CharSet:
    """A set of characters searched fast: the BMP part is one regex class (sre compiles it to
    a constant-time BIGCHARSET); astral characters are only searched for when present."""

    def __init__(self, cps: list[int]) -> None:
        bmp = [c for c in cps if c <= 0xFFFF]
        astral = [c for c in cps if c > 0xFFFF]
        self._bmp = re.compile(_ranges(bmp)) if bmp else None
        self._astral = re.compile(_ranges(astral)) if astral else None

    def found_in(self, text: str) -> bool:
        if self._bmp is not None and self._bmp.search(text) is not None:
            return True
        return self._astral is not None and max(text, default=" ") > "\uffff" and (
            self._astral.search(text) is not None
        )

    def finditer(self, text: str) -> list[int]:
        pos = [m.start() for m in self._bmp.finditer(text)] if self._bmp is not None else []
        if self._astral is not None and max(text, default=" ") > "\uffff":
            pos.extend(m.start() for m in self._astral.finditer(text))
            pos.sort()
        return pos


def _ranges(cps: list[int]) -> str:
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = cps[i], cps[j]
        parts.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
        i = j + 1
    return "[" + "".join(parts) + "]"


def _t2s_pairs() -> tuple[dict[int, str], object | None]:
    """Traditional → simplified single-character pairs and the OpenCC converter."""
    try:
        import opencc  # noqa: PLC0415 - loaded with the policy, not at import time
    except ImportError:  # pragma: no cover - opencc is a declared dependency
        return {}, None
    conv = opencc.OpenCC("t2s")
    ranges = [(0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF)]
    chars = [chr(c) for lo, hi in ranges for c in range(lo, hi + 1)]
    out = conv.convert("\n".join(chars)).split("\n")
    pairs: dict[int, str] = {}
    if len(out) == len(chars):
        for src, dst in zip(chars, out):
            if src != dst and len(dst) == 1:
                pairs[ord(src)] = dst
    return pairs, conv


def _gb2312_only(text: str) -> bool:
    """True when every character of *text* is in GB2312 (checked by the C codec)."""
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _build() -> None:
    global _TABLE, _SLOW, _IRREGULAR, _T2S, _TRAD, _OPENCC, _SLOW_GB, _TRAD_GB, _ANY, _ANY_GB
    t2s, conv = _t2s_pairs()
    table: dict[int, str] = {c: chr(c).lower() for c in range(0x41, 0x5B)}
    for cp in _DELETE:
        table[cp] = ""
    for cp in range(0x80, 0x30000):
        if 0xD800 <= cp <= 0xDFFF or cp in table or cp in _KEEP:
            continue
        ch = chr(cp)
        out = unicodedata.normalize("NFKC", ch).lower()
        if out != ch:
            table[cp] = out
    slow = sorted(cp for cp, out in table.items() if cp >= 0x80 and out != chr(cp).lower())
    irregular = sorted(cp for cp, out in table.items() if len(out) != 1)
    _SLOW = _CharSet(slow)
    _IRREGULAR = _CharSet(irregular)
    _T2S = t2s
    _TRAD = _CharSet(sorted(t2s))
    _SLOW_GB = _CharSet([c for c in slow if _gb2312_only(chr(c))])
    _TRAD_GB = _CharSet([c for c in sorted(t2s) if _gb2312_only(chr(c))])
    _ANY = _CharSet(sorted(set(slow) | set(t2s)))
    _ANY_GB = _CharSet(sorted(c for c in set(slow) | set(t2s) if _gb2312_only(chr(c))))
    _OPENCC = conv
    _TABLE = table


def warm_up() -> None:
    """Build the translation table now (called by ``load_policy``, not at import time)."""
    if _TABLE is None:
        with _lock:
            if _TABLE is None:
                _build()


class NormText:
    """A normalised view of ``original`` with a position map back to it.

    ``text`` is the view. :meth:`span` turns a ``(start, end)`` range of ``text`` into the
    corresponding range of ``original``. Views can be chained (``parent``), e.g. whitespace
    collapsing on top of normalisation.
    """

    __slots__ = ("original", "text", "_ns", "_os", "_coll", "parent", "_lazy")

    def __init__(
        self,
        original: str,
        text: str,
        breaks: list[tuple[int, int, int]] | None = None,
        parent: NormText | None = None,
    ) -> None:
        self.original = original
        self.text = text
        self.parent = parent
        self._lazy: tuple[re.Pattern[str], str] | None = None
        if breaks:
            self._ns = [b[0] for b in breaks]
            self._os = [b[1] for b in breaks]
            self._coll = [b[2] for b in breaks]
        else:
            self._ns = self._os = self._coll = None  # type: ignore[assignment]

    def _map(self, n: int) -> int:
        if self._lazy is not None:
            self._compute()
        if self._ns is None:
            return n
        i = bisect_right(self._ns, n) - 1
        if i < 0:
            return n
        n0, o0, coll = self._ns[i], self._os[i], self._coll[i]
        if coll:
            return o0
        return o0 + (n - n0)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a range of the view back to the root original text."""
        if end <= start:
            s = self._map(start)
            e = s
        else:
            s = self._map(start)
            e = self._map(end - 1) + 1
        if self.parent is not None:
            return self.parent.span(s, e)
        return s, e

    def root(self) -> str:
        """The root original text."""
        return self.parent.root() if self.parent is not None else self.original

    def original_text(self, start: int, end: int) -> str:
        """The original text behind the view range ``[start, end)``."""
        s, e = self.span(start, end)
        return self.root()[s:e]

    def sub(self, pattern: re.Pattern[str], repl: str) -> NormText:
        """A new view of this view with *pattern* replaced by *repl*, keeping the map back.

        The replacement runs in C; the position map is only computed when a position is
        mapped back (matches are rare, so most views never need it).
        """
        new = pattern.sub(repl, self.text)
        if new == self.text:
            return self
        view = NormText(self.text, new, None, parent=self)
        view._lazy = (pattern, repl)
        return view

    def _compute(self) -> None:
        pattern, repl = self._lazy
        self._lazy = None
        breaks: list[tuple[int, int, int]] = [(0, 0, 0)]
        src = self.original
        pos = npos = 0
        for m in pattern.finditer(src):
            npos += m.start() - pos
            if repl:
                breaks.append((npos, m.start(), 1))
                npos += len(repl)
            breaks.append((npos, m.end(), 0))
            pos = m.end()
        self._ns = [b[0] for b in breaks]
        self._os = [b[1] for b in breaks]
        self._coll = [b[2] for b in breaks]


def _translate(text: str, table: dict[int, str]) -> str:
    # A dense per-text table avoids str.translate's per-character KeyError on a sparse dict.
    local = {}
    for ch in set(text):
        cp = ord(ch)
        local[cp] = table.get(cp, ch)
    return text.translate(local)


def normalize(text: str) -> NormText:
    """The matching view of *text* (NFKC, lower case, trad→simp, no zero-width/bidi)."""
    if text.isascii():
        return NormText(text, text.lower())
    if _TABLE is None:
        warm_up()
    assert _TABLE is not None and _SLOW is not None and _IRREGULAR is not None
    assert _TRAD is not None and _SLOW_GB is not None and _TRAD_GB is not None
    assert _ANY_GB is not None and _ANY is not None
    view: NormText
    low = text.lower()
    gb = _gb2312_only(text)
    if len(low) == len(text) and not (_ANY_GB if gb else _ANY).found_in(text):
        # Nothing for the table and no traditional character: one scan instead of two (and
        # no second GB2312 check). str.lower() neither makes nor removes CJK ideographs.
        return NormText(text, low)
    slow = _SLOW_GB if gb else _SLOW
    if len(low) == len(text) and not slow.found_in(text):
        view = NormText(text, low)
    else:
        table = _TABLE
        out = _translate(text, table)
        breaks: list[tuple[int, int, int]] = [(0, 0, 0)]
        shift = 0
        for p in _IRREGULAR.finditer(text):
            rep_len = len(table.get(ord(text[p]), text[p]))
            q = p + shift
            if rep_len > 1:
                breaks.append((q, p, 1))
            breaks.append((q + rep_len, p + 1, 0))
            shift += rep_len - 1
        view = NormText(text, out, breaks if len(breaks) > 1 else None)
    trad = _TRAD_GB if _gb2312_only(view.text) else _TRAD
    if trad.found_in(view.text):
        simp = _OPENCC.convert(view.text) if _OPENCC is not None else ""  # type: ignore[attr-defined]
        if len(simp) != len(view.text):
            simp = _translate(view.text, _T2S)
        view.text = simp
    return view


_SPACES = re.compile(r"\s{2,}|[\t\r\n\f\v\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def collapse_spaces(view: NormText) -> NormText:
    """Runs of whitespace become one space (for phrase matching across line breaks)."""
    return view.sub(_SPACES, " ")


def normalize_term(term: str) -> str:
    """Normalise a dictionary term the same way message text is normalised."""
    return collapse_spaces(normalize(term.strip())).text
