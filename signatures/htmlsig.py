"""Signature placement in a decoded text/html body, and a small HTML-to-text converter.

The company signature is the element carrying class ``mailwarden-signature`` (and the
attribute ``data-mailwarden-signature``). It goes directly above the quoted history found by
:func:`mailwarden.rules.mail.quotes.find_quote_start_html`, or before ``</body>``. Work is done on
the source string with a light tag scanner: the rest of the document keeps its exact bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from mailwarden.rules.mail.quotes import find_quote_start_html

from .model import HTML_MARKER_ATTR, HTML_MARKER_CLASS

_TAG = re.compile(r"<!--.*?-->|<(/?)([A-Za-z][A-Za-z0-9:-]*)((?:\"[^\"]*\"|'[^']*'|[^'\">])*)>", re.DOTALL)
_CLASS = re.compile(r"\bclass\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)
_ID = re.compile(r"\bid\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HTML_END = re.compile(r"</html\s*>", re.IGNORECASE)
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())

# Signature blocks that mail clients insert themselves (compared case-insensitively).
CLIENT_SIGNATURE_CLASSES = frozenset({"moz-signature", "gmail_signature", "ms-outlook-mobile-signature",
                                      "signature", "elementtoproof-signature"})
CLIENT_SIGNATURE_IDS = frozenset({"signature", "x_signature", "applemailsignature", "spneditorsign",
                                  "ntes-pcmail-signature", "imail_signature", "qqmailsignature",
                                  "foxmail-signature", "divtagdefaultwrapper-signature"})


@dataclass(frozen=True)
class HtmlOutcome:
    html: str
    replaced: bool
    stripped_client: bool


def _attr_value(pattern: re.Pattern[str], attrs: str) -> str:
    m = pattern.search(attrs)
    return m.group(1).strip("\"'").lower() if m else ""


def _is_marked(attrs: str) -> bool:
    low = attrs.lower()
    return HTML_MARKER_ATTR in low or HTML_MARKER_CLASS in _attr_value(_CLASS, attrs)


def _is_client_signature(attrs: str) -> bool:
    if "data-smartmail" in attrs.lower() and "gmail_signature" in attrs.lower():
        return True
    classes = set(_attr_value(_CLASS, attrs).split())
    return bool(classes & CLIENT_SIGNATURE_CLASSES) or _attr_value(_ID, attrs) in CLIENT_SIGNATURE_IDS


def _element_end(html: str, open_match: re.Match[str], hi: int) -> int | None:
    """End offset of the element opened by ``open_match`` (its matching close tag), or None."""
    name = open_match.group(2).lower()
    if name in _VOID or open_match.group(3).rstrip().endswith("/"):
        return open_match.end()
    depth = 1
    for m in _TAG.finditer(html, open_match.end(), hi):
        if m.group(2) is None or m.group(2).lower() != name:
            continue
        if m.group(1):
            depth -= 1
            if depth == 0:
                return m.end()
        elif not m.group(3).rstrip().endswith("/"):
            depth += 1
    return None


def _find_elements(html: str, lo: int, hi: int, predicate: object) -> list[tuple[int, int]]:
    """Outermost elements in ``html[lo:hi]`` whose start tag attributes satisfy ``predicate``."""
    found: list[tuple[int, int]] = []
    pos = lo
    for m in _TAG.finditer(html, lo, hi):
        if m.start() < pos or m.group(2) is None or m.group(1):
            continue
        if predicate(m.group(3)):  # type: ignore[operator]
            end = _element_end(html, m, hi)
            if end is not None:
                found.append((m.start(), end))
                pos = end
    return found


def find_signature_elements(html: str, hi: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each company-signature element before offset ``hi``."""
    hi = len(html) if hi is None else hi
    if HTML_MARKER_CLASS not in html[:hi].lower():
        return []
    return _find_elements(html, 0, hi, _is_marked)


def wrap(sig_html: str) -> str:
    """The signature fragment inside its marker element."""
    return f'<div class="{HTML_MARKER_CLASS}" {HTML_MARKER_ATTR}="1">{sig_html}</div>'


def _cut(html: str, spans: list[tuple[int, int]]) -> str:
    out, pos = [], 0
    for s, e in sorted(spans):
        if s >= pos:
            out.append(html[pos:s])
        pos = max(pos, e)
    out.append(html[pos:])
    return "".join(out)


_OPENING_TAG_BEFORE = re.compile(r"<([A-Za-z][A-Za-z0-9]*)\b(?:\"[^\"]*\"|'[^']*'|[^'\">])*>\s*$")
# Wrappers a signature may be moved out of: they open right before the quote and hold only it.
_HOISTABLE = frozenset({"div", "span", "font", "includetail", "section", "article", "center"})


def _hoist(html: str, q: int) -> int:
    """Move the insertion point before start tags that open directly before the quote.

    Foxmail's ``<div><includetail><div style=…>`` or Apple Mail's ``<div>`` around the cited
    block would otherwise wrap the signature too (and lend it their styles).
    """
    at = q
    for _ in range(12):
        window = html[max(0, at - 1000) : at]
        m = _OPENING_TAG_BEFORE.search(window)
        if m is None or m.group(1).lower() not in _HOISTABLE:
            break
        at -= len(window) - m.start()
    return at


def sign_html(html: str, sig_html: str, *, strip_client: bool = False) -> HtmlOutcome:
    """Put the wrapped signature above the quoted history (or before ``</body>``).

    Company signatures in the new text are removed first (any template version, found by the
    marker); those inside the quoted history are left alone.
    """
    q = find_quote_start_html(html)
    limit = len(html) if q is None else q
    spans = find_signature_elements(html, limit)
    replaced = bool(spans)
    stripped = False
    if strip_client:
        client = [s for s in _find_elements(html, 0, limit, _is_client_signature)
                  if not any(a <= s[0] < b for a, b in spans)]
        if client:
            spans.append(client[-1])
            stripped = True
    spans.sort()
    if q is not None:
        at = _hoist(html, q)
    else:
        m = None
        for m in _BODY_END.finditer(html):
            pass
        if m is None:
            for m in _HTML_END.finditer(html):
                pass
        at = m.start() if m is not None else len(html)
    spans = [(s, e) for s, e in spans if e <= at]
    pieces = [_cut(html[:at], spans), wrap(sig_html), html[at:]]
    return HtmlOutcome("".join(pieces), replaced, stripped)


# ------------------------------------------------------------------ HTML to text

_BLOCKS = frozenset("address article aside blockquote div dl dt dd fieldset figure footer form h1 h2 h3 "
                    "h4 h5 h6 header hr li main nav ol p pre section table tr ul".split())


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.skip = 0
        self.quote = 0
        self.pre = 0

    def _newline(self) -> None:
        if self.lines[-1].strip():
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        elif tag == "br":
            self.lines.append("")
        elif tag in _BLOCKS:
            self._newline()
            if tag == "blockquote":
                self.quote += 1
            elif tag == "pre":
                self.pre += 1
        elif tag == "td" and self.lines[-1].strip():
            self.lines[-1] += " "

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            self._newline()
            if tag == "blockquote":
                self.quote = max(0, self.quote - 1)
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            chunks = data.split("\n")
        else:
            chunks = [re.sub(r"[ \t\r\n\f]+", " ", data)]
        for i, chunk in enumerate(chunks):
            if i:
                self.lines.append("")
            if self.quote and not self.lines[-1]:
                self.lines[-1] = "> " * self.quote
            self.lines[-1] += chunk.replace("\xa0", " ")


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body: blocks become lines, blockquotes ``>`` quoting."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() if not line.startswith(">") else line.rstrip() for line in parser.lines]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


__all__ = ["HtmlOutcome", "find_signature_elements", "html_to_text", "sign_html", "wrap"]
