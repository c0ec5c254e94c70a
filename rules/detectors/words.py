"""Sensitive words and phrases from the rule packs and word lists (one automaton)."""

from __future__ import annotations

from .base import Doc, Hit

NAME = "words"
DESCRIPTION = "Sensitive words and phrases (shipped pack, site packs, imported word lists)"


def check(doc: Doc) -> list[Hit]:
    """One hit per dictionary term occurrence."""
    dictionary = doc.policy.dictionary
    if not len(dictionary):
        return []
    hits: list[Hit] = []
    for seg in doc.segments:
        view = doc.view(seg)
        for start, end, term in dictionary.search(view):
            hits.append(doc.hit(term.rule, seg, view, start, end, severity=term.severity))
    return hits
