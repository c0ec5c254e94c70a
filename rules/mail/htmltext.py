"""HTML to plain text with regular expressions (fast; entities decoded; scripts dropped)."""

from __future__ import annotations

import html
import re

__all__ = ["folded", "html_to_text", "split_signature_html"]

_DROP = re.compile(
    r"<!--.*?(?:-->|$)|<(script|style|head|title|xml)\b[^>]*>.*?(?:</\1\s*>|$)", re.S | re.I
)
_BLOCK = re.compile(
    r"<(?:br|/?p|/?div|/?tr|/?li|/?ul|/?ol|/?h[1-6]|/?table|/?blockquote|hr|/?pre|/?section)\b[^>]*>",
    re.I,
)
# Link targets that carry a contact are kept as visible text: <a href="mailto:x@y">mail me</a>.
_CONTACT_HREF = re.compile(
    r"""<a\b[^>]*?\bhref\s*=\s*["']?((?:mailto:|tel:|callto:|sms:|skype:|viber:|weixin:|wechat:|"""
    r"""whatsapp:|tg:|line:|https?://(?:wa\.me|api\.whatsapp\.com|chat\.whatsapp\.com|t\.me|"""
    r"""telegram\.me|line\.me|u\.wechat\.com|weixin\.qq\.com|join\.skype\.com|invite\.viber\.com))"""
    r"""[^"'\s>]*)[^>]*>""",
    re.I,
)
_CELL = re.compile(r"</?t[dh]\b[^>]*>", re.I)
# Alternative and title text of pictures and links is what a reader sees when pictures are
# off (and what the hover shows): kept as text.
_ALT = re.compile(r"""<(?:img|a|area)\b[^>]*?\b(?:alt|title)\s*=\s*(?:"([^"]*)"|'([^']*)')[^>]*>""", re.I)
_TAG = re.compile(r"</?[a-zA-Z!?][^>]*>")
_SIG_OPEN = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9]*)\b[^>]*\bclass\s*=\s*[\"']?[^\"'>]*\bmailwarden-signature\b[^>]*>", re.I
)


# The only characters that IGNORECASE matches to ASCII letters (İ ı → i, K → k, ſ → s); no
# other character lowers to an ASCII one either.
_FOLDS_TO_ASCII = ("\u0130", "\u0131", "\u212a", "\u017f")
# Literal starts of _DROP and _CELL in the folded text, each found with one search: HTML has
# a "<" every few dozen characters, and an `in` test per start restarts at every one of them.
_DROP_START = re.compile(rb"<(?:!--|script|style|head|title|xml)")
_CELL_START = re.compile(rb"</?t[dh]")


_last_folded: tuple[str, bytes | None] = ("", b"")


def folded(text: str) -> bytes | None:
    """*text* in ASCII lower case, other characters as "?", for prefilters of IGNORECASE
    patterns with literal ASCII starts: such a pattern can only match where its start occurs
    in the folded text. None when a character folds to an ASCII letter (then no prefilter).

    Remembered for the last text (the HTML body without quote goes to html_to_text,
    split_signature_html and find_quote_start_html); one immutable tuple, read once and
    compared by identity, so another thread can only replace it (a miss), never make this
    call see its text."""
    global _last_folded
    last = _last_folded
    if last[0] is text:
        return last[1]
    if not text.isascii() and any(c in text for c in _FOLDS_TO_ASCII):
        low = None
    else:
        low = text.encode("ascii", "replace").lower()
    _last_folded = (text, low)
    return low


def html_to_text(source: str) -> str:
    """Visible text of an HTML fragment: block elements become line breaks."""
    low = folded(source)
    text = source
    if low is None or _DROP_START.search(low) is not None:
        text = _DROP.sub(" ", text)
    if "href" in text:
        text = _CONTACT_HREF.sub(lambda m: f" {m.group(1)} ", text)
    if "alt=" in text or "title=" in text or "ALT=" in text or "TITLE=" in text:
        text = _ALT.sub(lambda m: f" {m.group(1) or m.group(2) or ''} {m.group(0)}", text)
    text = _BLOCK.sub("\n", text)
    # The substitutions above replace tags by whitespace (or keep a link target, which was
    # in the source): they never make a "<td"/"<th" that the source did not have.
    if low is None or _CELL_START.search(low) is not None:
        text = _CELL.sub("\t", text)
    text = _TAG.sub("", text)
    return html.unescape(text)


def split_signature_html(source: str) -> tuple[int, int] | None:
    """Source range of the element marked ``class="mailwarden-signature"``, or None."""
    low = folded(source)
    if low is not None and b"mailwarden-signature" not in low:
        return None
    m = _SIG_OPEN.search(source)
    if not m:
        return None
    tag = m.group(1).lower()
    depth = 1
    pat = re.compile(rf"<(/?){tag}\b[^>]*>", re.I)
    for t in pat.finditer(source, m.end()):
        if t.group(0).endswith("/>"):
            continue
        depth += -1 if t.group(1) else 1
        if depth == 0:
            return m.start(), t.end()
    return m.start(), len(source)
