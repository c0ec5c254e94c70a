"""Wording without a stock phrase: the intents of the lexicon (:mod:`..lexicon`).

An intent hits where a term of each of its groups occurs within its window in one segment
("3% of the invoice … for you personally", "transfer … to my card"), in any of the
lexicon's languages. One hit per intent and segment is enough to explain a decision.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from ..lexicon import Lexicon, load_lexicon
from .base import SEP, Doc, Hit

NAME = "intents"
DESCRIPTION = "Kickbacks, payment to one's own account, moving business away, secrecy (all languages)"

# Line breaks and tabs read as spaces (a phrase wrapped over two lines still matches);
# str.replace keeps every position, so hits need no map back.
_BREAKS = ("\n", "\r", "\t")


def prepare(policy: Any) -> dict[str, Any]:
    """The compiled lexicon (shipped plus the site packs' intents and cues)."""
    return {"lexicon": load_lexicon(tuple(policy.settings.packs), set(policy.rules))}


def _spans(found: list[tuple[int, int, int]], groups: int, window: int, text: str) -> list[tuple[int, int]]:
    """Spans of at most *window* characters, within one segment (no :data:`SEP`), holding a
    term of every group (*found*: ``(start, end, group)``); at most one per start."""
    found.sort()
    out: list[tuple[int, int]] = []
    if groups == 1:
        return [(s, e) for s, e, _g in found]
    done = -1
    for i, (start, end, _g) in enumerate(found):
        if start < done:
            continue
        seen: set[int] = set()
        last = end
        for s, e, g in found[i:]:
            if e - start > window:
                break
            seen.add(g)
            last = max(last, e)
            if len(seen) == groups:
                if SEP not in text[start:last]:
                    out.append((start, last))
                    done = last
                break
    return out


def check(doc: Doc) -> list[Hit]:
    lex: Lexicon | None = doc.policy.extra.get("lexicon")
    if lex is None or not len(lex.intent_terms) or not lex.intents:
        return []
    joined, starts = doc.joined()
    text = joined
    for c in _BREAKS:
        if c in text:
            text = text.replace(c, " ")
    hits: list[Hit] = []
    seen: set[tuple[int, int]] = set()  # (intent, segment): one hit each
    for i, found in lex.intent_terms.find(text).items():
        intent = lex.intents[i]
        if intent.groups > 1 and len({g for _s, _e, g in found}) < intent.groups:
            continue
        for s, e in _spans(found, intent.groups, intent.window, text):
            js, je = s, e  # positions in the joined views
            k = bisect_right(starts, js) - 1
            if (i, k) in seen:
                continue
            seen.add((i, k))
            seg = doc.segments[k]
            hits.append(doc.hit(intent.rule, seg, doc.view(seg), js - starts[k], je - starts[k]))
    return hits
