"""HTML as the masker reads it, and the masked characters written back into the source.

:class:`HtmlText` is the text a reader sees in an HTML body -- the text between the tags
with character references decoded, comments and script/style contents (a reader can view the
source), and the attribute values that show or dial a contact (``href="tel:…"``,
``mailto:``, ``weixin://``, wa.me links, titles, alt texts; URLs percent-decoded) -- with
where each character came from in the source. Block elements become line breaks and table
cells tabs, as :func:`mailwarden.rules.mail.htmltext.html_to_text` reads them for the rules;
inline elements nothing, so ``手机：<b>138…</b>`` still reads as one line.

:meth:`HtmlText.apply` writes replacements of the text's characters into the source: a
character written plainly is replaced in place; one written as a reference (or
percent-escape) has its whole reference rewritten, the characters kept escaped again. The
tags and everything else stay as they were.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right
from urllib.parse import quote

from .masker import Replacements

__all__ = ["HtmlText"]

_TOKEN = re.compile(
    r"<!--(?P<comment>.*?)(?:-->|$)"
    r"|<(?P<raw>script|style|title|textarea)\b(?P<rawattrs>(?:[^>\"']|\"[^\"]*\"|'[^']*')*)>"
    r"|<(?P<close>/?)(?P<name>[a-zA-Z][a-zA-Z0-9:-]*)(?P<attrs>(?:[^>\"']|\"[^\"]*\"|'[^']*')*)>"
    r"|<[!?/][^>]*>",
    re.S | re.I,
)
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_REF = re.compile(r"&(?:#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};?)")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_BLOCK = frozenset("br p div tr li ul ol h1 h2 h3 h4 h5 h6 table blockquote hr pre section "
                   "article header footer address dd dt dl center tbody thead tfoot".split())
_CELL = frozenset(("td", "th"))
# Attributes whose value a reader sees or a click uses; URL-valued ones are percent-decoded.
_SHOWN = frozenset("href title alt value content placeholder label aria-label src action data "
                   "cite poster".split())
_URLS = frozenset("href src action cite poster data".split())

# Kinds of source pieces: written plainly, a character reference, a percent-escape run, and
# the line breaks and tabs the text has where the source has none.
_PLAIN, _REFERENCE, _ESCAPE, _GAP = range(4)


class HtmlText:
    """The readable text of an HTML source (``text``) and the map back to the source."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._chunks: list[str] = []
        self._pieces: list[tuple[int, int, int, int]] = []  # (text start, source start, source end, kind)
        self._length = 0
        self._read(source)
        self.text = "".join(self._chunks)
        self._starts = [p[0] for p in self._pieces]

    # ---------------------------------------------------------------- reading

    def _piece(self, text: str, src_start: int, src_end: int, kind: int) -> None:
        if not text:
            return
        self._pieces.append((self._length, src_start, src_end, kind))
        self._chunks.append(text)
        self._length += len(text)

    def _gap(self, text: str) -> None:
        if self._chunks and self._chunks[-1] in ("\n", "\t") and text == "\n":
            return
        self._piece(text, 0, 0, _GAP)

    def _read(self, src: str) -> None:
        pos = 0
        for m in _TOKEN.finditer(src):
            self._content(src, pos, m.start())
            pos = m.end()
            if m.group("comment") is not None:
                self._gap("\n")
                self._piece(m.group("comment"), m.start("comment"), m.end("comment"), _PLAIN)
                self._gap("\n")
            elif m.group("raw") is not None:
                name = m.group("raw").lower()
                close = re.compile(rf"</{name}\s*>", re.I).search(src, pos)
                inner_end = close.start() if close else len(src)
                self._attributes(src, m.start("rawattrs"), m.end("rawattrs"))
                self._gap("\n")
                if name in ("title", "textarea"):
                    self._content(src, pos, inner_end)
                else:
                    self._piece(src[pos:inner_end], pos, inner_end, _PLAIN)
                self._gap("\n")
                pos = close.end() if close else len(src)
            elif m.group("name") is not None:
                name = m.group("name").lower()
                if name in _BLOCK:
                    self._gap("\n")
                elif name in _CELL:
                    self._gap("\t")
                if not m.group("close"):
                    self._attributes(src, m.start("attrs"), m.end("attrs"))
        self._content(src, pos, len(src))

    def _content(self, src: str, start: int, end: int, *, url: bool = False) -> None:
        """Text with character references (and in a URL, percent-escapes) decoded."""
        if start >= end:
            return
        pos = start
        if "&" in src[start:end]:
            for m in _REF.finditer(src, start, end):
                self._plain(src, pos, m.start(), url)
                decoded = html.unescape(m.group())
                self._piece(decoded, m.start(), m.end(), _PLAIN if decoded == m.group() else _REFERENCE)
                pos = m.end()
        self._plain(src, pos, end, url)

    def _plain(self, src: str, start: int, end: int, url: bool) -> None:
        if start >= end:
            return
        if not url or "%" not in src[start:end]:
            self._piece(src[start:end], start, end, _PLAIN)
            return
        pos = start
        for m in _PERCENT.finditer(src, start, end):
            self._piece(src[pos : m.start()], pos, m.start(), _PLAIN)
            decoded = bytes.fromhex(m.group().replace("%", "")).decode("utf-8", "replace")
            self._piece(decoded, m.start(), m.end(), _ESCAPE)
            pos = m.end()
        self._piece(src[pos:end], pos, end, _PLAIN)

    def _attributes(self, src: str, start: int, end: int) -> None:
        for m in _ATTR.finditer(src, start, end):
            name = m.group(1).lower()
            k = next((g for g in (2, 3, 4) if m.group(g) is not None), None)
            if k is None or not (name in _SHOWN or name.startswith("data-")):
                continue
            if name == "src" and m.group(k).lower().startswith("cid:"):
                continue  # an inline image's reference, never a contact
            self._gap("\n")
            self._content(src, m.start(k), m.end(k), url=name in _URLS)
            self._gap("\n")

    # ---------------------------------------------------------------- writing

    def apply(self, reps: Replacements) -> str:
        """The source with the replacements of :attr:`text`'s characters written into it."""
        if not reps:
            return self.source
        edits: dict[int, tuple[int, str]] = {}  # source start -> (source end, new)
        for i in sorted(reps):
            k = bisect_right(self._starts, i) - 1
            t_start, s_start, s_end, kind = self._pieces[k]
            if kind == _GAP:
                continue
            if kind == _PLAIN:
                at = s_start + i - t_start
                edits[at] = (at + 1, reps[i])
            elif s_start not in edits:
                t_end = t_start + self._piece_length(k)
                escape = _escape_reference if kind == _REFERENCE else _escape_percent
                new = "".join(reps[j] if j in reps else escape(self.text[j]) for j in range(t_start, t_end))
                edits[s_start] = (s_end, new)
        out: list[str] = []
        pos = 0
        for start in sorted(edits):
            end, new = edits[start]
            out.append(self.source[pos:start])
            out.append(new)
            pos = end
        out.append(self.source[pos:])
        return "".join(out)

    def _piece_length(self, k: int) -> int:
        nxt = self._pieces[k + 1][0] if k + 1 < len(self._pieces) else self._length
        return nxt - self._pieces[k][0]


def _escape_reference(c: str) -> str:
    return html.escape(c)


def _escape_percent(c: str) -> str:
    return quote(c, safe="+*-._~")
