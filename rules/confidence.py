"""The context layer: how sure a finding is, from the words around it.

Between the detectors and the policy table: each hit in a text segment gets a confidence
(``high`` or ``low``) and the cue that decided it, in the segment's own sentence:

* a warning or notice names the thing to warn against it ("we never ask you to pay into a
  personal account", "请勿私下联系"): a negation cue before it (after it in Japanese);
* another business's contacts: a forwarder's or a bank's phone and address (a third-party
  cue, or a business address of another domain, in the same sentence);
* whose thing it is: "your new company", "贵司新公司" (an other-owner cue right before),
  "our new company brochure" (an object right after);
* "contact me directly" beside the company's own channels (an official phone, handle or
  address within :data:`OFFICIAL_NEAR` characters);
* a free-mail address the registry does not know, that wrote the mail quoted in this one
  (:func:`thread_authors`): the customer's own, in the recipients and in the text.

A low-confidence finding is capped at ``tag`` (recorded and shown, not enforced). Cues come
from the lexicon (:mod:`.lexicon`); a first-person "personal" cue in the sentence keeps a
contact high.
"""

from __future__ import annotations

import re
from typing import Any

from .detectors.base import SEP, Doc, Hit
from .policy import Rule

__all__ = ["assess", "personal_cue", "thread_authors", "official_pattern", "OFFICIAL_NEAR", "LOW_CAP"]

OFFICIAL_NEAR = 120
LOW_CAP = "tag"
_SENTENCE_END = re.compile(r"[!?。！？;；\n]|\.(?=\s|$)")
_EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
_CONTEXT = 160  # characters looked at on each side of a hit
_OWNER_GAP = 3  # an other-owner cue or an object at most this far from the phrase
_CONTACT_WORDS = ("contact", "direct", "联系", "找我", "聯絡")
_FIRST_PERSON = ("my", "me", "我", "mi", "mein", "mon", "ma", "meu", "minha", "мо", "私")


def official_pattern(company: Any) -> re.Pattern[str] | None:
    """One pattern for the company's own channels as written in text: its domains, official
    handles and the last eight digits of its official phones with any separators."""
    alts: list[str] = []
    for d in company.domains:
        d = d.strip().lower().lstrip("@")
        if d:
            alts.append(re.escape(d))
    for h in company.official_handles:
        handle = h.partition(":")[2] or h
        handle = re.sub(r"\W", "", handle)
        if len(handle) >= 5 and not handle.isdigit():
            alts.append(re.escape(handle))
    for p in company.official_phones:
        digits = re.sub(r"\D", "", p)[-8:]
        if len(digits) >= 6:
            alts.append(r"[\s\-.()]*".join(digits))
    return re.compile("|".join(alts), re.I) if alts else None


def _cues(doc: Doc) -> list[list[tuple[int, int, str, str]]]:
    """Per segment, ``(start, end, kind, term)`` of every cue, in segment-text positions."""
    cached = doc.cache.get("cues")
    if cached is not None:
        return cached  # type: ignore[return-value]
    lex = doc.policy.extra.get("lexicon")
    out: list[list[tuple[int, int, str, str]]] = [[] for _ in doc.segments]
    if lex is not None and len(lex.cue_terms) and lex.cue_terms.can_join(SEP):
        found = lex.cue_terms.search_text(doc.joined()[0])
        found.sort(key=lambda x: x[0])
        for k, items in enumerate(doc.split((s, (e - s, t)) for s, e, t in found)):
            if not items:
                continue
            seg = doc.segments[k]
            view = doc.view(seg)
            for start, (length, term) in items:
                s, e = view.span(start, start + length)
                out[k].append((s, e, term.rule, term.text))
    doc.cache["cues"] = out
    return out


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    lo = max(0, start - _CONTEXT)
    s = lo
    for m in _SENTENCE_END.finditer(text, lo, start):
        s = m.end()
    m = _SENTENCE_END.search(text, end, min(len(text), end + _CONTEXT))
    return s, (m.start() if m else min(len(text), end + _CONTEXT))


def _third_party_address(doc: Doc, sentence: str) -> str | None:
    pol = doc.policy
    for m in _EMAIL.finditer(sentence):
        dom = m.group(1).lower()
        if pol.is_company_domain(dom) or doc.is_customer_domain(dom) or dom in pol.freemail_domains:
            continue
        return dom
    return None


_ATTRIBUTION = re.compile(r"wrote|写道|寫道|a écrit|schrieb|escribió|escreveu|написал|からの|كتب|"
                          r"^\s*(?:from|发件人|寄件者|von|de|от|差出人|من)\s*[:：]", re.I | re.M)
_THREAD_RULES = ("RECIPIENT_FREEMAIL", "RECIPIENT_FORWARD_PRIVATE", "PRIVATE_EMAIL_FREEMAIL")


def thread_authors(doc: Doc) -> frozenset[str]:
    """Addresses that wrote mail quoted in this one (an attribution line "… <a@b> wrote:",
    "From: … a@b" in the quoted history): a customer the registry does not know yet is
    still the customer whose mail is being answered."""
    cached = doc.cache.get("thread_authors")
    if cached is not None:
        return cached  # type: ignore[return-value]
    found: set[str] = set()
    segs = doc.segments
    for i, seg in enumerate(segs):
        if seg.region != "quoted":
            continue
        # the attribution line may end the segment before the quote
        for text in (segs[i - 1].text[-300:] if i else "", seg.text[:2000]):
            for line in text.splitlines():
                if "@" in line and _ATTRIBUTION.search(line):
                    found.update(m.group(0).lower() for m in _EMAIL.finditer(line))
    out = frozenset(found)
    doc.cache["thread_authors"] = out
    return out


def assess(doc: Doc, hit: Hit, rule: Rule) -> tuple[str, str]:
    """``(confidence, cue)`` of *hit*; ``("high", "")`` when nothing around it says otherwise."""
    if rule.id in _THREAD_RULES and hit.match.strip().lower() in thread_authors(doc):
        return "low", "thread: quoted mail from this address"
    seg = hit.segment
    if seg is None or hit.start is None or hit.end is None:
        return "high", ""
    if rule.category not in ("private_contact", "sensitive_word"):
        return "high", ""
    try:
        k = next(i for i, s in enumerate(doc.segments) if s is seg)
    except StopIteration:
        return "high", ""
    text = seg.text
    start, end = hit.start, hit.end
    s_lo, s_hi = _sentence(text, start, end)
    cues = [c for c in _cues(doc)[k] if c[1] > s_lo - 1 and c[0] < s_hi]
    blocked = [(a, b) for a, b, kind, _ in cues if kind == "not_negation"]
    personal = any(kind == "personal" for _a, _b, kind, _t in cues)
    for a, b, kind, term in cues:
        if any(x <= a and b <= y for x, y in blocked):
            continue
        if kind == "negation" and b <= start and rule.id != "SECRECY":
            return "low", f"negation: {term}"
        if kind == "negation_after" and a >= end and rule.id != "SECRECY":
            return "low", f"negation: {term}"
        if kind == "third_party" and rule.category == "private_contact" and not personal:
            return "low", f"third party: {term}"
        if kind == "other_owner" and rule.id == "DIVERT_BUSINESS" and b <= start \
                and not text[b:start].strip(" \t:：,，") and start - b <= _OWNER_GAP:
            return "low", f"other owner: {term}"
        if kind == "object_after" and rule.id == "DIVERT_BUSINESS" and a >= end and a - end <= _OWNER_GAP + 1:
            low = hit.match.lower()
            if not any(low.startswith(p + " ") or low.startswith(p) and p == "我" for p in _FIRST_PERSON):
                return "low", f"object: {term}"
    if rule.category == "private_contact" and rule.kind in ("phone", "email") and not personal:
        dom = _third_party_address(doc, text[s_lo:s_hi])
        if dom is not None:
            return "low", f"third party: {dom}"
    if rule.id == "DIVERT_BUSINESS" and any(w in hit.match.lower() for w in _CONTACT_WORDS):
        pattern = doc.policy.extra.get("official_pattern")
        if pattern is not None and pattern.search(text, max(0, start - OFFICIAL_NEAR),
                                                  min(len(text), end + OFFICIAL_NEAR)):
            return "low", "official channel nearby"
    return "high", ""


def personal_cue(doc: Doc, hit: Hit) -> str | None:
    """The "personal" cue in *hit*'s sentence ("私人微信", "personal mobile"), if any: a
    contact so marked in the signature block is as severe there as in the body."""
    seg = hit.segment
    if seg is None or hit.start is None or hit.end is None:
        return None
    k = next((i for i, s in enumerate(doc.segments) if s is seg), None)
    if k is None:
        return None
    lo, hi = _sentence(seg.text, hit.start, hit.end)
    line_lo = seg.text.rfind("\n", 0, hit.start) + 1
    lo = max(lo, line_lo)
    for a, b, kind, term in _cues(doc)[k]:
        if kind == "personal" and lo <= a and b <= hi:
            return term
    return None
