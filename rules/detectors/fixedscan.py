"""One automaton pass for the fixed strings several detectors look for in a message.

The e-mail anchors (:mod:`.emails`), the IM keywords (:mod:`.handles`) and, in text that is not
all ASCII, the phone detector's odd digits and Chinese numeral triples (:mod:`.phonescan`) are
found in one ahocorasick-rs pass over the joined segments (``Doc.joined``) instead of one pass
each (a pass costs about 0.4 ms per 100 KB, whatever it looks for). With overlapping matches
every occurrence of every string is reported, so each group gets exactly what an automaton of
its own strings would report; the detectors sort their matches as before. The groups are put
together by :func:`mailwarden.rules.detectors.prepare`; this module knows no detector.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Doc

__all__ = ["FixedScan", "group", "ANCHORS", "KEYWORDS", "SPECIAL"]

ANCHORS, KEYWORDS, SPECIAL = 0, 1, 2


class FixedScan:
    """Strings in groups; :meth:`find` returns per group ``(index in group, start, end)``.

    Immutable once built (the automaton is only read), so threads share it."""

    __slots__ = ("n_groups", "_owners", "_auto")

    def __init__(self, groups: Sequence[Sequence[str]]) -> None:
        import ahocorasick_rs  # noqa: PLC0415

        self.n_groups = len(groups)
        patterns: list[str] = []
        index: dict[str, int] = {}
        owners: list[list[tuple[int, int]]] = []
        for g, words in enumerate(groups):
            for i, w in enumerate(words):
                j = index.get(w)
                if j is None:
                    j = index[w] = len(patterns)
                    patterns.append(w)
                    owners.append([])
                owners[j].append((g, i))
        self._owners = tuple(tuple(o) for o in owners)
        self._auto = ahocorasick_rs.AhoCorasick(patterns)

    def find(self, text: str) -> list[list[tuple[int, int, int]]]:
        out: list[list[tuple[int, int, int]]] = [[] for _ in range(self.n_groups)]
        owners = self._owners
        for j, s, e in self._auto.find_matches_as_indexes(text, overlapping=True):
            for g, i in owners[j]:
                out[g].append((i, s, e))
        return out


def build(anchors: Sequence[str], keywords: Sequence[str], special: Sequence[str],
          ) -> tuple[FixedScan, FixedScan]:
    """The two automata: without the special group (for ASCII text, where it can never
    match) and with it; kept as ``policy.extra["fixed_scan"]``."""
    return FixedScan([anchors, keywords]), FixedScan([anchors, keywords, special])


def group(doc: Doc, g: int) -> list[tuple[int, int, int]] | None:
    """Group *g*'s matches in the joined text (one pass per evaluation, cached), or None when
    the policy has no combined automaton (then the detector searches on its own)."""
    found = doc.cache.get("fixed_scan")
    if found is None:
        scans = doc.policy.extra.get("fixed_scan")
        if scans is None:
            return None
        text = doc.joined()[0]
        found = doc.cache["fixed_scan"] = scans[0 if text.isascii() else 1].find(text)
    groups: list[list[tuple[int, int, int]]] = found  # type: ignore[assignment]
    return groups[g] if g < len(groups) else []
