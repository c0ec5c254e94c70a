"""The memoised, all-segments-at-once paths of the phone and e-mail detectors find exactly
what the plain per-segment scans find.

Both remember a verdict by the text window around a digit run or an address anchor (per
policy, across evaluations), so each case runs twice on fresh documents (the second run is
served from the memo), with the same snippets recurring in different surroundings, and with
different known numbers (the memo must not remember who is allowed).
"""

from __future__ import annotations

import random

from mailwarden.rules import CheckContext, RecipientInfo
from mailwarden.rules.detectors import emails, phones
from mailwarden.rules.detectors.base import Doc
from mailwarden.rules.mail import ParsedMessage, Segment

from tests.rules.rulesutil import CTX

_PHONE_BITS = [
    "13800138000", "138 0013 8000", "+86 755 8888 6666", "+1 650 253 0000", "(0755) 8888-6666",
    "00 86 139 1234 5678", "4500123456", "9405.40.90", "2024-06-15", "1,380,013.50", "12.50",
    "mobile", "tel", "hotel", "call", "recall", "m:", "item:", "whatsapp", "order no.", "po#",
    "invoice", "usd", "hs", "model bl-", "mscu", "x@", "pcs", "w", " ", "  ", "\n", "\t", "-", ".",
    "(", ")", "+", "0", "1", "9", "a", "电话", "手机", "订单号", "一三八零零一三八零零零", "١٣٨",
]
_EMAIL_BITS = [
    "tom", "tom.li", "x_1", "@", "#", " at ", "(at)", "[at]", " dot ", "(dot)", "点", "。", ".",
    "gmail", "qq", "163", "com", "cn", "net", "acme-imports", "brightlight", " ", "   ", "\n",
    "\t", "<", ">", ",", "-", "wrote:", "on mon, mar 4, 2024 at 10:01 am john", "2024", "10:01",
    "a", "z9", "＠", "tel", "xyz",
]


def _doc(policy, texts: list[str], ctx: CheckContext) -> Doc:
    parsed = ParsedMessage(segments=[Segment(t, "body" if i % 2 else "quoted",
                                             "new" if i % 2 else "quoted")
                                     for i, t in enumerate(texts)])
    return Doc.build(parsed, ctx, policy)


def _texts(rng: random.Random, bits: list[str]) -> list[str]:
    """Segments that share pieces (the same number or address with the same near context),
    each with its own random text before and after, some far enough to fall out of a window."""
    def piece(n: int) -> str:
        return "".join(rng.choice(bits) for _ in range(rng.randint(0, n)))

    pool = [piece(12) for _ in range(3)]
    pad = [" " * rng.randint(0, 60), "x" * rng.randint(0, 60), ""]
    return [piece(15) + rng.choice(pad) + rng.choice(pool) + rng.choice(pad) + piece(15)
            for _ in range(rng.randint(1, 6))]


def _hits(doc: Doc, hits) -> list[tuple]:
    index = {id(s): i for i, s in enumerate(doc.segments)}
    return [(h.rule, h.match, index[id(h.segment)], h.start, h.end) for h in hits]


OTHER_CTX = CheckContext(operator="tom", recipients=(RecipientInfo(
    "x@y.com", 1, "Y", "tom", ("y.com",), (), ("+86 138 0013 8000", "+86 755 8888 6666")),))


def test_phones_memo_matches_the_per_segment_scan(policy) -> None:
    rng = random.Random(11)
    for _ in range(1500):
        texts = _texts(rng, _PHONE_BITS)
        for ctx in (CTX, OTHER_CTX, CTX):
            doc = _doc(policy, texts, ctx)
            got = _hits(doc, phones.check(doc))
            ref = _doc(policy, texts, ctx)
            allowed = phones.known_numbers(ref)
            want = _hits(ref, [h for seg in ref.segments
                               for h in phones._check_segment(ref, seg, ref.view(seg), allowed)])  # noqa: SLF001
            assert got == want, texts


def test_email_memo_matches_the_per_segment_scan(policy) -> None:
    rng = random.Random(12)
    for _ in range(3000):
        texts = _texts(rng, _EMAIL_BITS)
        for _run in range(2):
            doc = _doc(policy, texts, CTX)
            got = emails.segment_addresses(doc)
            want = [list(emails._find(doc.view(seg))) for seg in doc.segments]  # noqa: SLF001
            assert got == want, texts


def test_phones_memo_sees_every_word_that_decides(policy) -> None:
    # A hint or negative word at every distance before and after the same number: the
    # memoised verdicts (one message after another) must follow it in and out of range.
    for word in ("mobile", "tel", "whats app", "order no.", "usd", "hotel"):
        for number in ("13800138000", "4500123456", "+44 20 7946 0958", "0755 8888 6666",
                       "(020) 7946 0958"):
            for gap in range(70):
                for texts in ([f"{word}{' ' * gap}{number} ok"], [f"see {number}{' ' * gap}{word}"],
                              [f"{word}{'.' * gap}{number}", f"{number}"]):
                    doc = _doc(policy, texts, CTX)
                    ref = _doc(policy, texts, CTX)
                    allowed = phones.known_numbers(ref)
                    want = _hits(ref, [h for seg in ref.segments for h in
                                       phones._check_segment(ref, seg, ref.view(seg), allowed)])  # noqa: SLF001
                    assert _hits(doc, phones.check(doc)) == want, texts


def test_email_anchor_before_a_long_run_of_domain_characters(policy) -> None:
    # Prose with no punctuation but dots: the window would not end, the anchor is judged in place.
    tails = ["", " and more words." * 40, "\n" + "x" * 400 + ", done", " dot com" * 60]
    for head in ("mail tom@gmail.com", "tom at gmail dot com", "x#qq.com", "a@b", "tom (at) 163"):
        for tail in tails:
            texts = [head + tail, tail + head + tail, head]
            for _run in range(2):
                doc = _doc(policy, texts, CTX)
                want = [list(emails._find(doc.view(seg))) for seg in doc.segments]  # noqa: SLF001
                assert emails.segment_addresses(doc) == want, texts
