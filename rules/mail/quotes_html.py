"""Quoted-history detection in HTML bodies (see :mod:`.quotes`, which re-exports
:func:`find_quote_start_html`): the start of the quoted part in the HTML source.

The case-insensitive patterns stop at every "<" of the source; each is only tried when its
literal start occurs in the folded source (:func:`~.htmltext.folded`), which is exact.
"""

from __future__ import annotations

import re

from .htmltext import folded

__all__ = ["find_quote_start_html"]

# A header field line below a From: line ("Sent: …", "发送时间: …"), for _is_header_block.
_HEADER_FIELD = re.compile(
    r"^[ \t>*]*(?:sent|date|to|cc|subject|发送时间|時間|时间|日期|收件人|抄送|主题|主旨|"
    r"gesendet|an|betreff|envoyé|objet|à)[ \t]*[:：]",
    re.IGNORECASE,
)


def _is_header_block(text: str, pos: int) -> bool:
    """True when at least two header fields follow the From: line at *pos* within 6 lines."""
    lines = text[pos : pos + 2000].split("\n", 7)[1:7]
    return sum(1 for line in lines if _HEADER_FIELD.match(line)) >= 2


# Elements whose start is the start of quoted history.
_HTML_CONTAINERS = re.compile(
    r"""<(?:div|blockquote|table|section)\b[^>]*?
        (?:class\s*=\s*["']?[^"'>]*\b(?:gmail_quote(?:_container)?|yahoo_quoted|moz-cite-prefix|
              ntes-mailmaster-quote|foxmail_quote|qmbox_quote|zmail_extra|protonmail_quote|
              OutlookMessageHeader|reply-quote|mail-quote)\b
          | id\s*=\s*["']?(?:divRplyFwdMsg|appendonsend|isReplyContent|isForwardContent|
              ntes-pcmail-quote|ntes-mailmaster-quote|origbody|reply-content|QQMailReplyContent|
              mail-app-auto-quote|replyContent|forwardContent|x_divRplyFwdMsg)\b
          | style\s*=\s*["'][^"']*border-top\s*:\s*solid\s+\#(?:E1E1E1|B5C4DF)
        )""",
    re.IGNORECASE | re.VERBOSE,
)
# Whether "<div", "<blockquote", "<table" or "<section" occurs in the folded source: one
# search instead of four `in` scans that restart at every "<".
_CONTAINER_START = re.compile(rb"<(?:div|blockquote|table|section)")
_HTML_STOP_SPELLING = re.compile(r"<hr\b[^>]*\bid\s*=\s*[\"']?stopSpelling", re.IGNORECASE)
_HTML_CITE = re.compile(r"<blockquote\b[^>]*\btype\s*=\s*[\"']?cite", re.IGNORECASE)
# Text markers inside HTML (QQ Mail's "------------------ 原始邮件 ------------------", etc.).
# Starts with a literal "-" (no IGNORECASE) so that the regex engine can skip ahead quickly.
_HTML_TEXT_MARKER = re.compile(
    r"--+(?:\s|&nbsp;|&#160;)*(?:[Oo]riginal(?:\s|&nbsp;)+[Mm]essage|ORIGINAL(?:\s|&nbsp;)+MESSAGE|"
    r"[Oo]riginal|原始邮件|原始郵件|[Ff]orwarded(?:\s|&nbsp;)+[Mm]essage|转发邮件信息|"
    r"[Rr]eplied(?:\s|&nbsp;)+[Mm]essage|回复的原邮件)(?:\s|&nbsp;|&#160;)*--"
)
_HTML_BEGIN_FORWARD = re.compile(r"begin(?:\s|&nbsp;)+forwarded(?:\s|&nbsp;)+message\s*:")
_HTML_ATTRIBUTION = re.compile(
    r"(?:\bon\b[^<>]{0,300}\bwrote\s*:|(?:在|于)[^<>]{0,300}(?:写道|寫道)\s*[:：]?)", re.IGNORECASE
)
_HTML_OPEN_BLOCK = re.compile(r"<(?:div|p|span|font|td|blockquote)\b[^>]*>", re.IGNORECASE)
_HTML_FROM_WORDS = ("From", "FROM", "发件人", "發件人", "寄件者")  # one of them starts a match
_HTML_FROM_BLOCK = re.compile(r"(?:From|FROM|发件人|發件人|寄件者)(?:\s|</?[bB]>|</?strong>)*[:：]")


def _enclosing_block_start(html: str, pos: int, window: int = 400) -> int:
    """Start of the innermost opening block tag whose content begins shortly before *pos*."""
    lo = max(0, pos - window)
    start = pos
    last = None
    for m in _HTML_OPEN_BLOCK.finditer(html, lo, pos):
        last = m
    if last is not None:
        # Only back up when nothing but tags/whitespace lies between the tag and the marker.
        between = re.sub(r"<[^>]*>", "", html[last.end() : pos])
        if not between.replace("&nbsp;", "").strip():
            start = last.start()
    return start


def find_quote_start_html(html: str) -> int | None:
    """Index into the HTML source where the quoted history begins, or None.

    Recognises Gmail (``div.gmail_quote``), Outlook desktop (border-top header block) and web
    (``#appendonsend``, ``#divRplyFwdMsg``, ``hr#stopSpelling``), Thunderbird
    (``div.moz-cite-prefix`` + ``blockquote type=cite``), Apple Mail (``blockquote type=cite``
    with its "On … wrote:" div before it), Foxmail/QQ (``#isReplyContent``,
    ``#isForwardContent``, "原始邮件" separator), NetEase (``.ntes-mailmaster-quote``) and Yahoo.
    When an attribution line ("On … wrote:", "在…写道：") stands in its own element directly
    before the quote, its element's start is returned.
    """
    candidates: list[int] = []
    low = folded(html)
    m = _HTML_CONTAINERS.search(html) if low is None or _CONTAINER_START.search(low) else None
    if m:
        candidates.append(m.start())
    m = _HTML_STOP_SPELLING.search(html) if low is None or (
        b"<hr" in low and b"stopspelling" in low) else None
    if m:
        candidates.append(m.start())
    m = _HTML_TEXT_MARKER.search(html)
    if m:
        candidates.append(_enclosing_block_start(html, m.start()))
    if "orwarded" in html or "ORWARDED" in html:
        lowered = html.lower()
        if len(lowered) == len(html):
            m = _HTML_BEGIN_FORWARD.search(lowered)
            if m:
                candidates.append(_enclosing_block_start(html, m.start()))
    m = _HTML_CITE.search(html) if low is None or b"<blockquote" in low else None
    if m:
        candidates.append(m.start())
    if not candidates and any(w in html for w in _HTML_FROM_WORDS):
        # Outlook-style header block without recognisable markup: "From: … Sent: … To: …".
        for fm in _HTML_FROM_BLOCK.finditer(html):
            tail = re.sub(r"<[^>]*>", "\n", html[fm.start() : fm.start() + 1500])
            if _is_header_block(tail, 0):
                candidates.append(_enclosing_block_start(html, fm.start()))
                break
    if not candidates:
        return None
    start = min(candidates)
    # An attribution line just before the quote (Apple Mail, Thunderbird, some Gmail variants).
    lo = max(0, start - 600)
    attr = None
    for a in _HTML_ATTRIBUTION.finditer(html, lo, start):
        attr = a
    if attr is not None:
        between = re.sub(r"<[^>]*>", "", html[attr.end() : start])
        if not between.replace("&nbsp;", "").strip():
            start = min(start, _enclosing_block_start(html, attr.start()))
    return start
