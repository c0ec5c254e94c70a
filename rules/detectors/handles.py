"""Instant-messaging handles: WeChat, WhatsApp, QQ, Telegram, Skype, LINE, Viber.

A keyword automaton (built once per policy) finds the places where a handle may follow; a
per-kind pattern then reads the handle. A bare word after a keyword ("wechat please") is not
a handle unless a separator (":", "号", "is") or a digit/underscore makes it one.
``[company] official_handles`` ("wechat:BrightLightingCN") never trigger.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, NamedTuple

from ..mail.segments import Segment
from ..normalize import NormText
from . import fixedscan
from .base import Doc, Hit

NAME = "handles"
DESCRIPTION = "IM handles (WeChat, WhatsApp, QQ, Telegram, Skype, LINE, Viber)"

_SEP = r"\s*(?:号码|号|號|id|账号|帳號|名)?\s*(?P<sep>[:：=]|\bis\b|是|-)?\s*"
_PHONE = r"\+?\d[\d \-().]{5,20}\d"
_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "wechat": [
        re.compile(r"(?:微信|威信|薇信|徽信|weixin|wei\s*xin|wechat|we\s*chat|vx|v信|wx)" + _SEP
                   + rf"(?P<h>[a-z][a-z0-9_\-]{{5,19}}|{_PHONE})(?![a-z0-9_\-])"),
        re.compile(r"(?:u\.wechat\.com|weixin\.qq\.com|weixin:|wechat:)/*(?:dl/chat\?)?(?P<h>[a-z0-9_\-/]{4,40})"),
    ],
    "whatsapp": [
        re.compile(r"(?:wa\.me|api\.whatsapp\.com/send/?\?phone=|whatsapp:/*send/?\?phone=)/?"
                   r"(?P<h>\+?\d{7,15})"),
        re.compile(r"chat\.whatsapp\.com/(?P<h>[a-z0-9]{10,40})"),
        re.compile(r"(?:whatsapp|whats\s*app|whatapp|watsapp|wa|瓦次艾普|вотсап[а-я]{0,2}|ватсап[а-я]{0,2}|вацап[а-я]{0,2})"
                   + _SEP + rf"(?P<h>{_PHONE})"),
    ],
    "qq": [
        re.compile(r"(?:qq|扣扣|企鹅|q号|ｑｑ)" + _SEP + r"(?P<h>[1-9]\d{4,11})(?![\d@])"),
    ],
    "telegram": [
        re.compile(r"(?:t\.me|telegram\.me|tg://resolve\?domain=)/?(?P<h>[a-z0-9_]{4,32})"),
        re.compile(r"(?:telegram|tg(?![a-z])|电报|纸飞机|телеграм[а-я]{0,3}|телеге|тг(?![а-я]))" + _SEP
                   + r"(?P<h>@?[a-z][a-z0-9_]{4,31}|" + _PHONE + ")"),
    ],
    "skype": [
        re.compile(r"(?P<h>live:[a-z0-9._:\-]{3,40})"),
        re.compile(r"skype:(?P<h>[a-z][a-z0-9._,\-]{4,31})"),
        re.compile(r"skype" + _SEP + r"(?P<h>[a-z][a-z0-9._,\-]{4,31}|" + _PHONE + ")"),
    ],
    "line": [
        re.compile(r"line\.me/(?:r/)?(?:ti/p/|ti/g/)?(?P<h>[~@a-z0-9._\-]{3,40})"),
        re.compile(r"line\s*(?:id|账号|帳號)\s*(?P<sep>[:：=]|\bis\b)?\s*(?P<h>@?[a-z0-9._\-]{4,20})"),
        re.compile(r"(?:line|ライン)\s*(?P<sep>[:：])\s*(?P<h>@?[a-z0-9._\-]{4,20})"),
        # a bare handle after the word: only one with a digit or "_" ("LINE tanaka_88", not "line item")
        re.compile(r"(?:line|ライン)\s+(?P<h>@?(?=[a-z0-9.\-]*[\d_])[a-z][a-z0-9._\-]{3,19})"),
    ],
    "viber": [
        re.compile(r"viber://(?:chat\?number=|add\?number=)?(?P<h>[%+a-z0-9._\-]{4,40})"),
        re.compile(r"invite\.viber\.com/\?g2?=(?P<h>[a-z0-9_\-]{4,40})"),
        re.compile(r"viber" + _SEP + rf"(?P<h>{_PHONE})"),
    ],
}
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "wechat": ("微信", "威信", "薇信", "徽信", "weixin", "wei", "wechat", "we", "vx", "v信", "wx",
               "u.wechat.com", "weixin.qq.com"),
    "whatsapp": ("wa.me", "api.whatsapp.com", "whatsapp", "whats", "whatapp", "watsapp", "wa",
                 "chat.whatsapp.com", "瓦次艾普", "вотсап", "ватсап", "вацап"),
    "qq": ("qq", "扣扣", "企鹅", "q号", "ｑｑ"),
    "telegram": ("t.me", "telegram", "tg", "电报", "纸飞机", "телеграм", "телеге", "тг"),
    "skype": ("live:", "skype"),
    "line": ("line", "ライン"),
    "viber": ("viber", "invite.viber.com"),
}
_KEYWORD_WORDS = frozenset(w for words in _KEYWORDS.values() for w in words) | {"line", "telegram", "viber"}
_LATIN = re.compile(r"[a-z0-9]")
_RULES = {
    "wechat": "PRIVATE_WECHAT", "whatsapp": "PRIVATE_WHATSAPP", "qq": "PRIVATE_QQ",
    "telegram": "PRIVATE_TELEGRAM", "skype": "PRIVATE_SKYPE", "line": "PRIVATE_LINE",
    "viber": "PRIVATE_VIBER",
}


def canonical_handle(handle: str) -> str:
    """Handles compare without case, spaces, dashes, a leading "@" or "+"."""
    h = handle.strip().lower()
    if h.startswith("live:"):
        return h
    return re.sub(r"[\s\-().]", "", h).lstrip("@+")


class _Keywords:
    """The keyword automaton: ``iter(text)`` yields ``(end index, (length, kinds))`` like
    pyahocorasick's ``Automaton.iter`` (by end, longest first), found by ahocorasick-rs,
    which scans several times faster (pyahocorasick walks a node's children linearly)."""

    __slots__ = ("_auto", "_values", "words")

    def __init__(self, entries: dict[str, set[str]]) -> None:
        import ahocorasick_rs  # noqa: PLC0415

        words = self.words = tuple(entries)
        self._auto = ahocorasick_rs.AhoCorasick(list(words))
        self._values = tuple((len(w), tuple(sorted(entries[w]))) for w in words)

    def iter(self, text: str, found: list[tuple[int, int, int]] | None = None,
             ) -> list[tuple[int, tuple[int, tuple[str, ...]]]]:
        """*found*: the automaton's matches in *text*, if already known (:mod:`.fixedscan`)."""
        if found is None:
            found = self._auto.find_matches_as_indexes(text, overlapping=True)
        if not found:
            return []
        values = self._values
        out = [(e - 1, values[i]) for i, s, e in found]
        out.sort(key=lambda x: (x[0], -x[1][0]))
        return out


def prepare(policy: Any) -> dict[str, Any]:
    """The keyword automaton, for ``policy.extra``."""
    entries: dict[str, set[str]] = {}
    for kind, words in _KEYWORDS.items():
        for w in words:
            entries.setdefault(w, set()).add(kind)
    return {"handle_keywords": _Keywords(entries)}


def official_handles(company: Any) -> frozenset[tuple[str, str]]:
    """``[company] official_handles`` as ``(kind, canonical handle)`` (kind ``*``: any)."""
    official: set[tuple[str, str]] = set()
    for item in company.official_handles:
        kind, sep, handle = item.partition(":")
        if not sep:
            kind, handle = "*", item
        official.add((kind.strip().lower(), canonical_handle(handle)))
    return frozenset(official)


def find_handles(view: NormText, auto: Any,
                 found: list[tuple[int, tuple[int, tuple[str, ...]]]] | None = None,
                 ) -> Iterator[tuple[int, int, str, str]]:
    """``(start, end, kind, handle)`` for each handle in a normalised view (*found*: the
    keyword matches ``auto.iter(view.text)`` would return, if already known)."""
    text = view.text
    done_until = -1
    for end_idx, (length, kinds) in auto.iter(text) if found is None else found:
        start = end_idx - length + 1
        if start < done_until:
            continue
        if _LATIN.match(text[start]) and start > 0 and _LATIN.match(text[start - 1]):
            continue  # "swap", "away": keyword inside a word
        for kind in kinds:
            found = _match_at(text, start, kind)
            if found is not None:
                s, e, handle = found
                done_until = e
                yield s, e, kind, handle
                break


def _match_at(text: str, start: int, kind: str) -> tuple[int, int, str] | None:
    for pat in _PATTERNS[kind]:
        m = pat.match(text, start)
        if m is None:
            continue
        handle = m.group("h")
        sep = m.groupdict().get("sep")
        end = m.end()
        if end < len(text) and _LATIN.match(text[end - 1]) and _LATIN.match(text[end]):
            continue
        if "sep" in pat.groupindex and not sep and not re.search(r"[\d_]", handle):
            continue  # "wechat please": no separator and no digit, not a handle
        if handle.strip().lower() in _KEYWORD_WORDS:
            continue  # "WeChat: WeChat BrightLightingCN" (a label, then alt text): the name, not an ID
        return start, end, handle.strip()
    return None


class LocatedHit(NamedTuple):
    """A handle's hit (from its keyword to its end) and where the handle itself lies in the
    segment's text (``segment.text[start:end]``), for those that rewrite only the handle."""

    hit: Hit
    kind: str
    start: int
    end: int


def check(doc: Doc) -> list[Hit]:
    """One hit per IM handle that is not an official company handle."""
    return [located.hit for located in located_hits(doc)]


def located_hits(doc: Doc) -> list[LocatedHit]:
    """:func:`check`'s hits, each with its kind and the handle's own place in the text."""
    auto = doc.policy.extra.get("handle_keywords")
    if auto is None:
        return []
    hits: list[LocatedHit] = []
    # One keyword search over all segments; a keyword never spans two of them.
    per_segment = doc.split(auto.iter(doc.joined()[0], fixedscan.group(doc, fixedscan.KEYWORDS)))
    for seg, found in zip(doc.segments, per_segment):
        if found:
            hits.extend(_check_segment(doc, seg, doc.view(seg), auto, found))
    return hits


def _check_segment(doc: Doc, seg: Segment, view: NormText, auto: Any,
                   found: list[tuple[int, tuple[int, tuple[str, ...]]]] | None = None,
                   ) -> Iterator[LocatedHit]:
    official = doc.policy.official_handles
    for start, end, kind, handle in find_handles(view, auto, found):
        canon = canonical_handle(handle)
        if (kind, canon) in official or ("*", canon) in official:
            continue
        if canon.isdigit() and len(canon) >= 7 and any(
            p.lstrip("+").endswith(canon.lstrip("0")) for p in _known_numbers(doc)
        ):
            continue  # WhatsApp/WeChat on an official number or the customer's own number
        # Every pattern ends with the handle (``h``), which find_handles only strips of the
        # white space it cannot have.
        h_start, h_end = view.span(end - len(handle), end)
        yield LocatedHit(doc.hit(_RULES[kind], seg, view, start, end), kind, h_start, h_end)


def _known_numbers(doc: Doc) -> set[str]:
    from .phones import known_numbers  # noqa: PLC0415

    return known_numbers(doc)
