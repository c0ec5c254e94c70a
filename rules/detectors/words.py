"""Sensitive words and phrases from the rule packs and word lists (one automaton)."""

from __future__ import annotations

from .base import SEP, Doc, Hit

NAME = "words"
DESCRIPTION = "Sensitive words and phrases (shipped pack, site packs, imported word lists)"


def check(doc: Doc) -> list[Hit]:
    """One hit per dictionary term occurrence."""
    dictionary = doc.policy.dictionary
    if not len(dictionary):
        return []
    hits: list[Hit] = []
    if dictionary.can_join(SEP):
        # One search over all segments: no term contains SEP, so none spans two segments.
        found = dictionary.search_text(doc.joined()[0])
        per_segment = doc.split((s, (e - s, term)) for s, e, term in found)
        for seg, seg_hits in zip(doc.segments, per_segment):
            if seg_hits:
                view = doc.view(seg)
                for start, (length, term) in seg_hits:
                    hits.append(doc.hit(term.rule, seg, view, start, start + length,
                                        severity=term.severity))
        return hits
    for seg in doc.segments:
        view = doc.view(seg)
        for start, end, term in dictionary.search(view):
            hits.append(doc.hit(term.rule, seg, view, start, end, severity=term.severity))
    return hits
