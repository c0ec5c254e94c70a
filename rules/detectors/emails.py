"""E-mail addresses outside the company's and the recipient customer's domains.

Sees through "name at gmail dot com", "name[at]qq.com", "name(at)163(dot)com", "name#qq.com",
full-width "＠" and zero-width characters (the last two are undone by normalisation).
"""

from __future__ import annotations

import re
from typing import Iterator

from ..message import Segment
from ..normalize import NormText
from .base import Doc, Hit

NAME = "emails"
DESCRIPTION = "E-mail addresses outside the company's and the recipient customer's domains"

# Where an address may have its "@": the real one, bracketed "at", a spaced-out " at " or "#".
_ANCHOR = re.compile(
    r"\s*(?:@|[(\[{<（【]\s*at\s*[)\]}>）】]|#)\s*|(?<=[a-z0-9])\s+at\s+(?=[a-z0-9])"
)
# Literal anchors found with str.find (C speed); " at " also covers "at\t"/"at\n" variants
# rarely enough that the cost of a regex pass is not worth it.
_ANCHOR_LITERALS = ("@", "#", " at ", "(at", "[at", "{at", "<at", "（at", "【at", "\tat ", "\nat ")


_ANCHOR_SHIFT = tuple(1 if lit[0] in " \t\n" else 0 for lit in _ANCHOR_LITERALS)
_anchor_auto: object | None = None


def _anchor_positions(text: str) -> list[int]:
    """Every occurrence of every literal anchor, in one ahocorasick-rs pass (eleven
    ``str.find`` scans of a 100 KB body cost more than the rest of this detector)."""
    global _anchor_auto
    if _anchor_auto is None:
        import ahocorasick_rs  # noqa: PLC0415

        _anchor_auto = ahocorasick_rs.AhoCorasick(list(_ANCHOR_LITERALS))
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


def _find(view: NormText) -> Iterator[tuple[int, int, str, bool]]:
    text = view.text
    pos = 0
    for anchor in _anchor_positions(text):
        if anchor < pos:
            continue
        lo = max(0, anchor - 3)
        am = _ANCHOR.search(text, lo, anchor + 12)
        if am is None or am.start() > anchor:
            continue
        lm = _LOCAL_BEFORE.search(text, max(0, am.start() - 64), am.start())
        if lm is None:
            continue
        dm = _DOMAIN.match(text, am.end())
        if dm is None:
            continue
        sep = am.group().strip()
        labels = _DOT_SPLIT.split(dm.group())
        obfuscated = sep != "@" or any(
            s.group() != "." for s in _DOT_SPLIT.finditer(dm.group())
        )
        full = len(labels)
        # Trailing labels that are not a TLD are words after the address ("x at y dot com. Tel").
        while len(labels) > 2 and (not labels[-1].isalpha()
                                   or obfuscated and labels[-1] not in _COMMON_TLDS):
            labels.pop()
        tld = labels[-1]
        if not tld.isalpha() or len(tld) < 2:
            continue
        if obfuscated and (tld not in _COMMON_TLDS or sep == "#" and len(labels[0]) < 2):
            continue
        end = dm.end()
        if len(labels) != full:
            # Cut the domain back to the accepted labels.
            m2 = re.compile(rf"{_LABEL}(?:{_DOT}{_LABEL}){{{len(labels) - 1}}}").match(text, am.end())
            if m2:
                end = m2.end()
        address = f"{lm.group()}@{'.'.join(labels)}".strip(".")
        pos = end
        yield lm.start(), end, address, obfuscated


def prepare(policy: object) -> None:
    """Build the anchor automaton now rather than on the first message."""
    _anchor_positions("")


def check(doc: Doc) -> list[Hit]:
    """One hit per address that is neither the company's nor the recipient customer's."""
    hits: list[Hit] = []
    for seg in doc.segments:
        hits.extend(_check_segment(doc, seg, doc.view(seg)))
    return hits


def _check_segment(doc: Doc, seg: Segment, view: NormText) -> Iterator[Hit]:
    pol = doc.policy
    for start, end, address, _obf in find_addresses(view, doc.cache):
        domain = address.rpartition("@")[2]
        if pol.is_company_domain(domain) or doc.is_customer_domain(domain):
            continue
        if address in doc.customer_contacts:
            continue
        if _in(domain, pol.competitor_domains):
            rule = "PRIVATE_EMAIL_COMPETITOR"
        elif _in(domain, pol.freemail_domains):
            rule = "PRIVATE_EMAIL_FREEMAIL"
        else:
            rule = "EXTERNAL_EMAIL"
        yield doc.hit(rule, seg, view, start, end)


def _in(domain: str, domains: frozenset[str]) -> bool:
    if domain in domains:
        return True
    parts = domain.split(".")
    return any(".".join(parts[i:]) in domains for i in range(1, len(parts) - 1))
