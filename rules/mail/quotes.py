"""Quoted-history detection: where the operator's new text ends and the quoted/forwarded part begins.

This is the one implementation shared by the rules engine and the signature inserter, so both
agree on what counts as "the operator's own text". It knows the markers of Gmail, Outlook
(desktop and web), Thunderbird, Apple Mail, Foxmail/QQ Mail, NetEase (163/126/Mail Master),
Yahoo and plain ``>`` quoting, in English and Chinese.

Everything here is pure string scanning with precompiled patterns; no HTML parser is needed.
"""

from __future__ import annotations

import re

from .quotes_html import _is_header_block, find_quote_start_html

__all__ = [
    "split_text",
    "find_quote_start_text",
    "find_quote_start_html",
    "quoted_spans_text",
]

# ---------------------------------------------------------------- text/plain markers

# A separator line that always starts quoted or forwarded history, on its own line.
_SEPARATOR_LINE = re.compile(
    r"""\n[ \t>]*(?:
        -{2,}\s*(?:original\ message|原始邮件|原始郵件|forwarded\ message|转发邮件|轉寄郵件|
                   转发的邮件|转发邮件信息|replied\ message|回复的原邮件|reply\ message)\s*-{2,}
      | (?:-{3,}|_{3,}|={3,})?\s*(?:original\ message|forwarded\ message|原始邮件|原始郵件)\s*(?:-{3,}|_{3,}|={3,})
      | begin\ forwarded\ message\s*:
      | 以下是转发的邮件\s*[:：]?
      | -{2,}\s*转发的邮件\s*-{2,}
    )[ \t]*$""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)

# Outlook's "________________________________" line directly above a From:/发件人: block.
_UNDERSCORE_LINE = re.compile(r"\n[ \t]*_{10,}[ \t]*$", re.MULTILINE)

# Attribution lines: "On Tue, 5 Mar 2024, Tom <t@x.com> wrote:" (may wrap onto a second line),
# "在 2024年3月5日 10:00，Tom 写道：", "2024-03-05 10:00 GMT+08:00 Tom <t@x.com>:", German/French too.
_ATTRIBUTION = re.compile(
    r"""\n[ \t]*(?:
        on\b[^\n]{0,200}(?:\n[^\n]{0,200})?\bwrote\s*:
      | 在[^\n]{0,200}?(?:写道|寫道)\s*[:：]?
      | 于[^\n]{0,200}?(?:写道|寫道)\s*[:：]?
      | [^\n]{0,200}?(?:写道|寫道)\s*[:：]
      | am\b[^\n]{0,200}\bschrieb[^\n]{0,100}:
      | le\b[^\n]{0,200}\ba\ écrit\s*:
      | \d{4}[-/年]\d{1,2}[-/月]\d{1,2}日?[^\n]{0,150}<[^<>\s]+@[^<>\s]+>\s*[:：]
    )[ \t]*$""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)

# The first line of a header block ("From: …", "发件人: …"), checked further by _is_header_block.
_FROM_LINE = re.compile(
    r"\n[ \t>*]*(?:from|发件人|發件人|寄件者|寄件人|von|de)[ \t]*[:：]", re.IGNORECASE | re.MULTILINE
)

# _FROM_LINE for the lower case of ASCII text (see _Lines.from_lines): without IGNORECASE the
# regex engine tries each line start about twice as fast.
_FROM_LINE_LOWER = re.compile(r"\n[ \t>*]*(?:from|von|de)[ \t]*:")

_WROTE_ZH = re.compile("写道|寫道")
_DATE_OR_ADDRESS = re.compile(r"[0-9０-９@＠]")


def _attribution_ok(line: str) -> bool:
    """A Chinese attribution names when or who: "在 2024年3月5日 10:00，Tom 写道：",
    "Tom <t@x.com> 于2024年3月5日 写道：". A line such as "他在信中写道：" in the operator's own
    text is no quote marker (it would otherwise turn everything below it into history)."""
    if _WROTE_ZH.search(line) is None:
        return True
    return _DATE_OR_ADDRESS.search(line) is not None


# Last-text caches (the prefilters below ask about the same text several times in a row).
# Safe across threads: each is one immutable tuple, read once into a local and compared by
# identity (the tuple keeps its text alive, so no other text can have the same id); another
# thread can only replace it, which costs a miss.
_last_lower: tuple[str, str] = ("", "")
_last_folded: tuple[str, bytes] = ("", b"")
# The only characters whose lower case holds an ASCII letter (İ → i̇, K → k), and those whose
# lower case holds "é".
_LOWER_TO_ASCII = ("\u0130", "\u212a")
_E_ACUTE = ("\u00e9", "\u00c9")


def _lower(text: str) -> str:
    """``text.lower()``, remembered for the last text (the prefilters below share it)."""
    global _last_lower
    last = _last_lower
    if last[0] is text:
        return last[1]
    low = text.lower()
    _last_lower = (text, low)
    return low


def _in_lower(text: str, words: tuple[str, ...]) -> bool:
    """``any(w in text.lower() for w in words)`` for Latin *words* (ASCII but for "é").

    Text that is not all ASCII (Chinese mail) is not lowered as a whole: as long as no
    character lowers to an ASCII letter, an ASCII word occurs in the lower case exactly where
    its letters occur in the ASCII lower case of the text with every other character as "?".
    """
    if text.isascii() or any(c in text for c in _LOWER_TO_ASCII):
        low = _lower(text)
        return any(w in low for w in words)
    global _last_folded
    last = _last_folded  # one read: another thread may replace it at any time
    if last[0] is not text:
        last = _last_folded = (text, text.encode("ascii", "replace").lower())
    folded = last[1]
    for w in words:
        if w.isascii():
            if w.encode("ascii") in folded:
                return True
        elif any(c in text for c in _E_ACUTE) and w in _lower(text):
            return True
    return False


def _may_hold_attribution(text: str) -> bool:
    """Cheap necessary condition for :data:`_ATTRIBUTION`: one of its words (or the "@" of its
    dated form) occurs. Trying the pattern at every line start of a long body costs far more."""
    if "@" in text or "写道" in text or "寫道" in text or "ſ" in text:
        return True
    return _in_lower(text, ("wrote", "schrieb", "écrit"))


_SEPARATOR_WORDS = ("原始邮件", "原始郵件", "转发邮件", "轉寄郵件", "转发的邮件", "回复的原邮件")
_SEPARATOR_WORDS_LATIN = ("original message", "forwarded message", "replied message", "reply message")
# The only characters that IGNORECASE matches to ASCII letters (İ ı → i, K → k, ſ → s).
_FOLDS_TO_ASCII = ("\u0130", "\u0131", "\u212a", "\u017f")


def _may_hold_separator(text: str) -> bool:
    """Cheap necessary condition for :data:`_SEPARATOR_LINE`: every alternative holds one of
    these words (the Latin ones in any case)."""
    if any(w in text for w in _SEPARATOR_WORDS) or any(c in text for c in _FOLDS_TO_ASCII):
        return True
    return _in_lower(text, _SEPARATOR_WORDS_LATIN)


_QUOTE_PREFIX_LINE = re.compile(r"\n[ \t]*>", re.MULTILINE)
# Consecutive ">" lines, maybe with single empty lines between them (see quoted_spans_text).
_QUOTE_BLOCK = re.compile(r"\n[ \t]*>[^\n]*(?:\n\n?[ \t]*>[^\n]*)*")
_TEXT_SIGNATURE = re.compile(r"\n-- ?$", re.MULTILINE)


class _Lines:
    """Searches for line-anchored patterns, which all start with a literal newline so that the
    regex engine can skip ahead quickly: they run on ``"\\n" + text`` and positions are
    reported in *text* (pointing at the start of the line)."""

    __slots__ = ("padded",)

    def __init__(self, text: str) -> None:
        self.padded = "\n" + text

    def search(self, pat: re.Pattern[str], pos: int = 0, endpos: int | None = None) -> int | None:
        m = pat.search(self.padded, pos, len(self.padded) if endpos is None else endpos + 1)
        return None if m is None else m.start()

    def finditer(self, pat: re.Pattern[str], pos: int = 0, endpos: int | None = None):
        end = len(self.padded) if endpos is None else endpos + 1
        return (m.start() for m in pat.finditer(self.padded, pos, end))

    def from_lines(self, endpos: int | None = None):
        """``finditer(_FROM_LINE, 0, endpos)``. In ASCII text a case-insensitive match is a
        match in the lower case at the same place, and the Chinese words cannot occur."""
        if not self.padded.isascii():
            return self.finditer(_FROM_LINE, 0, endpos)
        end = len(self.padded) if endpos is None else endpos + 1
        return (m.start() for m in _FROM_LINE_LOWER.finditer(_lower(self.padded), 0, end))

    def match_end(self, pat: re.Pattern[str], pos: int) -> int | None:
        m = pat.match(self.padded, pos)
        return None if m is None else m.end() - 1

    def attribution(self, pos: int = 0) -> int | None:
        """Start of the first attribution line at or after *pos* (see :func:`_attribution_ok`)."""
        if not _may_hold_attribution(self.padded):
            return None
        for m in _ATTRIBUTION.finditer(self.padded, pos):
            if _attribution_ok(m.group()):
                return m.start()
        return None

    def attribution_end(self, pos: int) -> int | None:
        """End of the attribution line starting at *pos*, or None if there is none."""
        m = _ATTRIBUTION.match(self.padded, pos)
        if m is None or not _attribution_ok(m.group()):
            return None
        return m.end() - 1


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _marker_start(text: str) -> int | None:
    """Earliest position of a quote/forward marker other than plain ``>`` quoting."""
    best: int | None = None

    def consider(pos: int) -> None:
        nonlocal best
        if best is None or pos < best:
            best = pos

    lines = _Lines(text)
    separator = lines.search(_SEPARATOR_LINE) if _may_hold_separator(lines.padded) else None
    for p in (separator, lines.attribution()):
        if p is not None:
            consider(p)
    # A From: line only counts before the marker found so far; a match never runs past the
    # end of its own line, so the search can stop there (a long quoted thread is not scanned).
    for p in lines.from_lines(best):
        if best is not None and p >= best:
            break
        if _is_header_block(text, p):
            start = p
            # Outlook puts a line of underscores (and maybe a blank line) above the block.
            head = text[max(0, start - 300) : start]
            u = None
            for u in _Lines(head).finditer(_UNDERSCORE_LINE):
                pass
            if u is not None:
                u_end = head.find("\n", u)
                if u_end == -1 or not head[u_end:].strip():
                    start = start - len(head) + u
            consider(start)
            break
    return best


def _prefix_quote_start(text: str) -> int | None:
    """Start of a trailing ``>``-quoted block (everything after it is quoted or blank)."""
    if ">" not in text:
        return None
    return _Lines(text).search(_QUOTE_PREFIX_LINE)


def find_quote_start_text(text: str) -> int | None:
    """Index in a text/plain body where quoted history or a forwarded block begins, or None."""
    starts = [p for p in (_marker_start(text), _prefix_quote_start(text)) if p is not None]
    if not starts:
        return None
    start = min(starts)
    # An attribution line ("On … wrote:") directly above ">" quoting belongs to the quote.
    if start == _prefix_quote_start(text):
        prev_end = start - 1
        prev_start = _line_start(text, max(prev_end - 1, 0)) if prev_end > 0 else 0
        while prev_end > 0 and not text[prev_start:prev_end].strip() and prev_start > 0:
            prev_end = prev_start - 1
            prev_start = _line_start(text, max(prev_end - 1, 0))
        if prev_end > 0:
            line = text[prev_start:prev_end]
            if line.rstrip().endswith((":", "：")):
                start = prev_start
    return start


def split_text(text: str) -> tuple[int, int | None]:
    """Return ``(end_of_new_text, quote_start)`` for a text/plain body.

    ``quote_start`` is where the quoted history / forwarded block begins (None if there is none);
    ``end_of_new_text`` is the end of the operator's new text with trailing blank lines removed,
    i.e. the place where a signature goes.
    """
    start = find_quote_start_text(text)
    head = text if start is None else text[:start]
    return len(head.rstrip()), start


def quoted_spans_text(text: str) -> list[tuple[int, int]]:
    """All quoted ranges of a text/plain body, as ``(start, end)`` pairs.

    Unlike :func:`split_text` this does not assume everything after the first ``>`` line is
    quoted: with ``>`` quoting (and no Outlook-style header marker before it), only the ``>``
    lines and an attribution line right above them are quoted, so new text written below or
    between quotes stays the operator's own.
    """
    marker = _marker_start(text)
    prefix = _prefix_quote_start(text)
    lines = _Lines(text)
    spans: list[tuple[int, int]] = []
    limit = len(text)
    if marker is not None and (prefix is None or marker <= prefix):
        # Top-posted history (Outlook, Foxmail, Gmail forward, "On … wrote:" followed by > lines)
        attribution_end = lines.attribution_end(marker)
        if attribution_end is None:
            return [(marker, len(text))]
        # "On … wrote:" then ">" lines: the quote ends with the last contiguous ">" line.
        line_end = text.find("\n", marker)
        if line_end == -1:
            return [(marker, len(text))]
        after = attribution_end
        nxt = lines.search(_QUOTE_PREFIX_LINE, after)
        between = text[after:nxt] if nxt is not None else text[after:]
        if nxt is None or between.strip():
            # No ">" lines follow: unprefixed history (Apple Mail text, Gmail) runs to the end.
            return [(marker, len(text))]
        spans.append((marker, after))
        limit = len(text)
    elif marker is not None:
        limit = marker
    pos = 0
    # One match per block of ">" lines (with at most single empty lines between them): the
    # lines of a block all merge into one span, so only its first and last line matter.
    padded = lines.padded
    for block in _QUOTE_BLOCK.finditer(padded, 0, limit + 1) if ">" in text else ():
        qstart = block.start()
        if qstart < pos:
            continue
        last = padded.rfind("\n", qstart, block.end())  # start of the block's last line
        end = text.find("\n", last)
        end = limit if end == -1 or end > limit else end + 1
        if spans and spans[-1][1] >= qstart - 1 and not text[spans[-1][1] : qstart].strip():
            spans[-1] = (spans[-1][0], end)
        else:
            # Include an attribution line ending with ':' directly above.
            start = qstart
            prev_end = start - 1
            if prev_end > 0:
                prev_start = _line_start(text, prev_end)
                line = text[prev_start:prev_end]
                if line.rstrip().endswith((":", "：")) and not _QUOTE_PREFIX_LINE.match("\n" + line):
                    start = prev_start
            spans.append((start, end))
        pos = end
    if marker is not None and limit == marker:
        spans.append((marker, len(text)))
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


def find_signature_text(text: str, end_of_new: int) -> int | None:
    """Start of the company signature block: the last ``-- `` line within the new text."""
    last = None
    for p in _Lines(text).finditer(_TEXT_SIGNATURE, 0, end_of_new):
        last = p
    return last
