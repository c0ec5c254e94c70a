"""Contacts in disguise: the contact detectors again, on new text with disguises undone.

:func:`~..deobfuscate.reveal` undoes spaced-out letters, look-alike letters, digits written
as words or Chinese numerals, emoji digits and base64; the handle and phone detectors then
read the result. Only what the first look did not find is reported, under the original
segment's place, with the cue ``disguised``.
"""

from __future__ import annotations

from dataclasses import replace

from ..deobfuscate import MAX_CHARS, reveal
from ..mail.segments import Segment
from . import handles, phones
from .base import Doc, Hit

NAME = "disguised"
DESCRIPTION = "Contacts written in disguise (w.e.c.h.a.t, 微 信, wеchаt, one three eight, 壹叁捌, base64)"
REVEALED = "revealed"  # doc.cache key: ids of the segments this detector made


def check(doc: Doc) -> list[Hit]:
    budget = MAX_CHARS
    pairs: list[tuple[Segment, Segment]] = []
    for seg in doc.segments:
        if seg.region == "quoted" or budget <= 0:
            continue
        text = seg.text[:budget]
        budget -= len(text)
        shown = reveal(text)
        if shown is not None:
            pairs.append((seg, Segment(shown, seg.where, seg.region)))
    if not pairs:
        return []
    sub = Doc(replace(doc.parsed, segments=[p[1] for p in pairs]), doc.ctx, doc.policy,
              doc.customer_domains, doc.customer_contacts, doc.customer_phones)
    originals = {id(new): old for old, new in pairs}
    hits = [h for h in (*handles.check(sub), *phones.check(sub))
            if h.segment is not None and h.match not in originals[id(h.segment)].text]
    doc.cache.setdefault(REVEALED, set()).update(originals)  # type: ignore[union-attr]
    return hits
