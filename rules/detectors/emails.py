"""E-mail addresses outside the company's and the recipient customer's domains.

Sees through "name at gmail dot com", "name[at]qq.com", "name(at)163(dot)com", "name#qq.com",
full-width "＠" and zero-width characters (the last two are undone by normalisation).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Iterator

from ..mail.segments import Segment
from ..normalize import NormText
from . import fixedscan
from .base import Doc, Hit

__all__ = ["ANCHOR_LITERALS", "NAME", "DESCRIPTION", "check", "find_addresses", "prepare",
           "rule_of", "segment_addresses"]

NAME = "emails"
DESCRIPTION = "E-mail addresses outside the company's and the recipient customer's domains"

# Where an address may have its "@": the real one, bracketed "at", a spaced-out " at " or "#".
_ANCHOR = re.compile(
    r"\s*(?:@|[(\[{<（【]\s*at\s*[)\]}>）】]|#)\s*|(?<=[a-z0-9])\s+at\s+(?=[a-z0-9])"
)
# Literal anchors found with str.find (C speed); " at " also covers "at\t"/"at\n" variants
# rarely enough that the cost of a regex pass is not worth it.
ANCHOR_LITERALS = ("@", "#", " at ", "(at", "[at", "{at", "<at", "（at", "【at", "\tat ", "\nat ")


_ANCHOR_SHIFT = tuple(1 if lit[0] in " \t\n" else 0 for lit in ANCHOR_LITERALS)
_anchor_auto: object | None = None


def _anchor_positions(text: str) -> list[int]:
    """Every occurrence of every literal anchor, in one ahocorasick-rs pass (eleven
    ``str.find`` scans of a 100 KB body cost more than the rest of this detector)."""
    global _anchor_auto
    if _anchor_auto is None:
        import ahocorasick_rs  # noqa: PLC0415

        _anchor_auto = ahocorasick_rs.AhoCorasick(list(ANCHOR_LITERALS))
    found = _anchor_auto.find_matches_as_indexes(text, overlapping=True)  # type: ignore[attr-defined]
    if not found:
        return []
    shift = _ANCHOR_SHIFT
    out = [s + shift[i] for i, s, _e in found]
    out.sort()
    return out
_LOCAL_BEFORE = re.compile(r"[a-z0-9][a-z0-9._%+\-]{0,63}$")
_DOT = r"(?:\s*(?:\.|[(\[{<（【]\s*(?:dot|点)\s*[)\]}>）】]|。)\s*|\s+(?:dot|点)\s+|点)"
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:{_DOT}{_LABEL}){{1,5}}")
_DOT_SPLIT = re.compile(_DOT)
# TLDs accepted for obfuscated spellings ("x at gmail dot com"): guessing here is costly.
_COMMON_TLDS = frozenset(
    "com net org cn hk tw mo sg my jp kr ru de uk fr it es nl be ch at se no dk fi pl pt tr in "
    "id th vn ph au nz ca us mx br ar cl co io me info biz ae sa il eg za ng ke pk bd lk".split()
)


def find_addresses(view: NormText, cache: dict | None = None) -> list[tuple[int, int, str, bool]]:
    """``(start, end, address, obfuscated)`` for every address in a normalised view.

    With *cache* (``Doc.cache``) the result is computed once per view and evaluation.
    """
    if cache is None:
        return list(_find(view))
    key = ("addresses", id(view))
    found = cache.get(key)
    if found is None:
        found = cache[key] = list(_find(view))
    return found


def segment_addresses(doc: Doc) -> list[list[tuple[int, int, str, bool]]]:
    """:func:`find_addresses` for every segment of *doc* (in order), computed once per
    evaluation by one pass over all segments joined (see Doc.joined): no part of an address
    (nor :data:`_ANCHOR`'s look-behind) matches SEP, so only the anchor search's start is kept
    inside the anchor's own segment."""
    found = doc.cache.get("segment_addresses")
    if found is None:
        text, starts = doc.joined()
        per_segment: list[list[tuple[int, int, str, bool]]] = [[] for _ in starts]
        memo = doc.policy.memos.email
        k = 0
        end_of_text = len(text) + 1  # where a SEP after the last segment would be, plus one
        nxt = starts[1] if len(starts) > 1 else end_of_text
        pos = 0
        found_anchors = fixedscan.group(doc, fixedscan.ANCHORS)
        if found_anchors is None:
            anchors = _anchor_positions(text)
        else:
            shift = _ANCHOR_SHIFT
            anchors = sorted(s + shift[i] for i, s, _e in found_anchors)
        for anchor in anchors:
            if anchor >= nxt:
                k = bisect_right(starts, anchor) - 1
                nxt = starts[k + 1] if k + 1 < len(starts) else end_of_text
            if anchor < pos:
                continue
            seg_lo = starts[k]
            # What decides about an anchor lies between the 67 characters before it (the
            # anchor pattern's start and look-behind, the local part) and the first character
            # from 12 after it on that no part of _DOMAIN can consume (or the segment's end):
            # the verdict is memoised by that window (the same addresses recur all through a
            # thread's quoted history; tests/rules/test_memo_scans.py checks).
            # Prose with no punctuation but dots is all "domain" characters: past _WINDOW_MAX
            # the window is not worth keeping, and the anchor is judged in place.
            lo = anchor - 67 if anchor - 67 > seg_lo else seg_lo  # noqa: FURB136 - hot loop
            hi = nxt - 1 if nxt - 1 < anchor + _WINDOW_MAX else anchor + _WINDOW_MAX  # noqa: FURB136
            stop = _NOT_DOMAIN.search(text, anchor + 12 if anchor + 12 < hi else hi, hi + 1)  # noqa: FURB136
            if stop is None and hi < len(text):
                am = _ANCHOR.search(text, anchor - 3 if anchor - 3 > seg_lo else seg_lo, anchor + 12)  # noqa: FURB136
                res = (_at(text, am.start(), am.end()) or ()) if (
                    am is not None and am.start() <= anchor) else ()
                if res:
                    res = (res[0] - lo, res[1] - lo, res[2], res[3])
            else:
                key = (text[lo : stop.start() + 1 if stop is not None else len(text)], anchor - lo)
                res = memo.get(key)
                if res is None:
                    window, a = key
                    am = _ANCHOR.search(window, a - 3 if a > 3 else 0, a + 12)
                    res = memo.put(key, (_at(window, am.start(), am.end()) or ()) if (
                        am is not None and am.start() <= a) else ())
            if res:
                start, end, address, obfuscated = res
                pos = end + lo
                per_segment[k].append((start + lo - seg_lo, end + lo - seg_lo, address, obfuscated))
        found = per_segment
        for seg, addresses in zip(doc.segments, found):
            doc.cache[("addresses", id(doc.view(seg)))] = addresses
        doc.cache["segment_addresses"] = found
    return found  # type: ignore[return-value]


_WINDOW_MAX = 300  # characters after an anchor kept in a memo key (Policy.memos.email)
# Any character that no part of _DOMAIN (labels, the spelled-out and bracketed dots,
# whitespace) can match: the domain match never looks past the first one.
_NOT_DOMAIN = re.compile(r"[^\sa-z0-9\-.(\[{<（【。点)\]}>）】]")


_LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._%+-"


def _local_before(text: str, end: int) -> tuple[int, str] | None:
    """``_LOCAL_BEFORE.search(text, max(0, end - 64), end)`` as ``(start, local part)``,
    without trying the pattern at each of the 64 positions: the match is the run of
    local-part characters that ends at *end* (or before a newline there, where ``$`` also
    holds), from its first letter or digit."""
    lo = max(0, end - 64)
    if end <= lo:
        return None
    last = text[end - 1]
    if last == "\n":
        end -= 1
    elif last not in _LOCAL_CHARS:
        return None
    window = text[lo:end]
    run = window[len(window.rstrip(_LOCAL_CHARS)) :]
    local = run.lstrip("._%+-")
    if not local:
        return None
    return end - len(local), local


def _find(view: NormText, anchors: list[int] | None = None) -> Iterator[tuple[int, int, str, bool]]:
    text = view.text
    pos = 0
    for anchor in _anchor_positions(text) if anchors is None else anchors:
        if anchor < pos:
            continue
        lo = max(0, anchor - 3)
        am = _ANCHOR.search(text, lo, anchor + 12)
        if am is None or am.start() > anchor:
            continue
        found = _at(text, am.start(), am.end())
        if found is not None:
            pos = found[1]
            yield found


def _at(text: str, a_start: int, a_end: int) -> tuple[int, int, str, bool] | None:
    """The address around the anchor match ``text[a_start:a_end]``, or None."""
    lm = _local_before(text, a_start)
    if lm is None:
        return None
    dm = _DOMAIN.match(text, a_end)
    if dm is None:
        return None
    sep = text[a_start:a_end].strip()
    domain = dm.group()
    if domain.isascii() and domain.replace(".", "").replace("-", "").isalnum():
        # Only labels and dots: _DOT can only have matched the dots.
        labels = domain.split(".")
        obfuscated = sep != "@"
    else:
        labels = _DOT_SPLIT.split(domain)
        obfuscated = sep != "@" or any(s.group() != "." for s in _DOT_SPLIT.finditer(domain))
    full = len(labels)
    # Trailing labels that are not a TLD are words after the address ("x at y dot com. Tel").
    while len(labels) > 2 and (not labels[-1].isalpha()
                               or obfuscated and labels[-1] not in _COMMON_TLDS):
        labels.pop()
    tld = labels[-1]
    if not tld.isalpha() or len(tld) < 2:
        return None
    if obfuscated and (tld not in _COMMON_TLDS or sep == "#" and len(labels[0]) < 2):
        return None
    end = dm.end()
    if len(labels) != full:
        # Cut the domain back to the accepted labels.
        m2 = re.compile(rf"{_LABEL}(?:{_DOT}{_LABEL}){{{len(labels) - 1}}}").match(text, a_end)
        if m2:
            end = m2.end()
    address = f"{lm[1]}@{'.'.join(labels)}".strip(".")
    return lm[0], end, address, obfuscated


def prepare(policy: object) -> dict[str, object]:
    """Build the anchor automaton now rather than on the first message (nothing to keep)."""
    _anchor_positions("")
    return {}


def check(doc: Doc) -> list[Hit]:
    """One hit per address that is neither the company's nor the recipient customer's."""
    hits: list[Hit] = []
    rules: dict[str, str | None] = {}  # address → rule, for this evaluation
    for seg, found in zip(doc.segments, segment_addresses(doc)):
        if found:
            hits.extend(_check_segment(doc, seg, doc.view(seg), found, rules))
    return hits


def _check_segment(doc: Doc, seg: Segment, view: NormText,
                   found: list[tuple[int, int, str, bool]],
                   rules: dict[str, str | None] | None = None) -> Iterator[Hit]:
    if rules is None:
        rules = {}
    for start, end, address, _obf in found:
        if address in rules:
            rule = rules[address]
        else:
            rule = rules[address] = rule_of(doc, address)
        if rule is not None:
            yield doc.hit(rule, seg, view, start, end)


def rule_of(doc: Doc, address: str) -> str | None:
    """The rule an address found in the text falls under (None: the company's or the
    recipient customer's)."""
    pol = doc.policy
    domain = address.rpartition("@")[2]
    if pol.is_company_domain(domain) or doc.is_customer_domain(domain):
        return None
    if address in doc.customer_contacts:
        return None
    if _in(domain, pol.competitor_domains):
        return "PRIVATE_EMAIL_COMPETITOR"
    if _in(domain, pol.freemail_domains):
        return "PRIVATE_EMAIL_FREEMAIL"
    return "EXTERNAL_EMAIL"


def _in(domain: str, domains: frozenset[str]) -> bool:
    if domain in domains:
        return True
    parts = domain.split(".")
    return any(".".join(parts[i:]) in domains for i in range(1, len(parts) - 1))
