"""Phone numbers: a fast regular-expression pre-filter, then ``phonenumbers`` validation.

Not phones: order, container (MSCU1234567), HS (9405.40.90), model and tracking numbers,
prices and dates. The pre-filter only takes digit runs that stand alone (no letter or code
prefix, no currency, no date shape); in the policy's home region a number written without
a country or trunk prefix must be a mobile number. A hint word nearby (mobile, WhatsApp,
手机, 微信, call me…) raises the finding to ``PRIVATE_PHONE_HINTED``. Chinese numerals
(一三八…, 幺, 两) and digits split by spaces, dots or dashes are read as digits.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import Any, Callable, Iterator

from ..mail.segments import Segment
from ..normalize import NormText
from . import fixedscan
from .base import Doc, Hit
from .phonescan import (_NOT_DIGITS, _cand_spans, _candidates, _skeleton_matches,
                        _special_automaton, _special_positions)

NAME = "phones"
DESCRIPTION = "Phone numbers other than the company's official ones and the customer's own"

_MOBILE_CN = re.compile(r"1[3-9]\d{9}")

# Hint words, found with one automaton pass per segment (built in prepare()).
_HINT_WORDS = (
    "mobile", "mob:", "mob.", "cell", "phone", "telephone", "tel", "whatsapp", "whats app", "wechat", "we chat", "viber",
    "telegram", "signal", "text me", "sms", "call", "m:", "t:", "p:", "m：", "t：",
    "手机", "电话", "微信", "联系", "私人", "号码", "打给我", "致电", "座机", "热线", "📱", "☎", "✆",
)
_HINT_WINDOW_BEFORE = 40
_HINT_WINDOW_AFTER = 20
# Words right before a number that make it an order/container/HS/price/... number.
_NEG_WORDS = (
    "order", "po", "p.o", "invoice", "inv", "item", "model", "型号", "订单", "单号", "运单", "快递",
    "物流", "tracking", "track", "awb", "b/l", "bl", "booking", "container", "cntr", "柜号", "箱号",
    "集装箱", "hs", "海关编码", "商品编码", "税号", "sku", "art", "ref", "qty", "数量", "price",
    "单价", "总价", "金额", "amount", "total", "usd", "rmb", "cny", "eur", "hkd", "us$", "$", "¥",
    "￥", "€", "£", "账号", "account", "acct", "iban", "swift", "batch", "lot", "serial", "s/n", "sn",
    "编号", "code", "id", "date", "日期", "no", "nr", "number", "pcs", "数量",
)
_NEG_SUFFIXES = ("number", "no", "nr", "号码", "号", "码", "#")
_SEPS = " \t:：#.-=\n"
_DATE = re.compile(
    r"^(?:(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)\d\d)"
)
_HS = re.compile(r"^\d{4}\.\d{2}(?:\.\d{2,4})?$")


_NONDIGIT = re.compile(r"\D+")
_TRIM_KEEP = frozenset("+零〇一二三四五六七八九幺两兩")


def _digits(s: str) -> str:
    return _NONDIGIT.sub("", s)


def _e164(raw: str, region: str) -> str | None:
    import phonenumbers  # noqa: PLC0415

    try:
        num = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def official_phones(company: Any, region: str) -> frozenset[str]:
    """The company's official phones, E.164 (or digits only when not valid), parsed once."""
    official: set[str] = set()
    for p in company.official_phones:
        e = _e164(p, region)
        official.add(e if e else _digits(p))
    return frozenset(official)


def prepare(policy: Any) -> dict[str, Any]:
    """Warm up the phone metadata; the hint-word automaton for ``policy.extra``."""
    import phonenumbers  # noqa: PLC0415

    phonenumbers.is_valid_number(phonenumbers.parse("+8613800138000", None))
    from ..words import Dictionary, Term  # noqa: PLC0415

    _special_automaton()
    return {"phone_hints": Dictionary([Term(w, w, "HINT", None, "phones") for w in _HINT_WORDS])}


_MISSING: Any = object()


def _customer_set(doc: Doc) -> set[str]:
    region = doc.policy.phone_region
    cache = doc.policy.memos.phone_e164
    out: set[str] = set()
    for p in doc.customer_phones:
        # One lookup, never check-then-get: the gateway evaluates on several threads, and
        # another may clear the memo in between.
        e = cache.get(p, _MISSING)
        if e is _MISSING:
            e = cache.put(p, _e164(p, region))
        out.add(e if e else _digits(p))
    return out


def _validate(cand: str, region: str, hinted: bool) -> str | None:
    raw = cand.strip()
    digits = _digits(raw)
    if len(digits) < 7 or len(digits) > 15:
        return None
    plus = raw.startswith("+") or digits.startswith("00")
    if plus:
        return _e164("+" + digits[2:] if digits.startswith("00") else "+" + digits, region)
    if region == "CN" and not digits.startswith("0"):
        # Without a country or trunk prefix only mobile numbers are written in China.
        if not re.fullmatch(r"1[3-9]\d{9}", digits):
            return _e164("+" + digits, region) if hinted and len(digits) >= 10 else None
    e = _e164(digits, region)
    if e is None and hinted and len(digits) >= 10:
        e = _e164("+" + digits, region)
    return e


def _excluded(text: str, start: int, end: int, cand: str) -> bool:
    before = text[max(0, start - 24) : start]
    after = text[end : end + 3]
    if start > 0 and text[start - 1] in "-_/.#" and start > 1 and text[start - 2].isalnum():
        return True  # part of a model/part number: BL-13800138000, PO#...
    if after[:1].isalpha() and after[:1].isascii():
        return True  # 13800138000W, 1380013800pcs
    if after[:1] in (",", ".") and after[1:2].isdigit():
        return True  # 1,380,013.50: a price or a quantity
    stripped = cand.strip()
    if _DATE.match(stripped) or _HS.match(stripped):
        return True
    return _negative_before(before)


def _negative_before(before: str) -> bool:
    b = before.rstrip(_SEPS)
    for _ in range(2):  # "Order No.:", "订单号："
        if b.endswith(_NEG_WORDS):
            for w in _NEG_WORDS:
                if b.endswith(w):
                    head = b[: len(b) - len(w)]
                    if not (w[0].isascii() and w[0].isalnum() and head[-1:].isascii()
                            and head[-1:].isalnum()):
                        return True
        stripped = False
        for suf in _NEG_SUFFIXES:
            if b.endswith(suf):
                b = b[: len(b) - len(suf)].rstrip(_SEPS)
                stripped = True
                break
        if not stripped:
            break
    return False


def known_numbers(doc: Doc) -> set[str]:
    """E.164 forms of the official phones and the recipient customers' phones."""
    return set(doc.policy.official_phones) | _customer_set(doc)


def check(doc: Doc) -> list[Hit]:
    """One hit per valid phone number that is neither official nor the customer's."""
    allowed = known_numbers(doc)
    text, starts = doc.joined()
    # One pass of each scanner over all segments (see Doc.joined): SEP is neither a digit, a
    # separator, a Chinese numeral nor part of a hint word.
    odd, cn = _special_positions(text, fixedscan.group(doc, fixedscan.SPECIAL))
    odd_segments = {k for k, seg in enumerate(doc.split((p, None) for p in odd)) if seg} if odd else set()
    cn_segments = {k for k, seg in enumerate(doc.split((p, None) for p in cn)) if seg} if cn else set()
    hints = _Hints(doc)
    memo = doc.policy.memos.phone
    segments = doc.segments
    by_segment: dict[int, list[Hit]] = {}
    cn_spans: dict[int, list[tuple[int, int]]] = {k: [] for k in cn_segments}
    n_seg = len(starts)
    k, seg_lo = 0, 0
    nxt = starts[1] if n_seg > 1 else len(text) + 1
    for m in _skeleton_matches(text):
        s, e = m.span()
        if s >= nxt:
            k = bisect_right(starts, s) - 1
            seg_lo = starts[k]
            nxt = starts[k + 1] if k + 1 < n_seg else len(text) + 1
        if k in odd_segments or k in cn_segments:
            if k in cn_spans:
                cn_spans[k].append((s - seg_lo, e - seg_lo))
            continue
        # The verdict of a digit run, memoised by the window around it (see _WINDOW_BEFORE),
        # clipped to the run's segment (nxt - 1 is the SEP after it).
        lo = s - _WINDOW_BEFORE if s - _WINDOW_BEFORE > seg_lo else seg_lo  # noqa: FURB136 - hot loop
        hi = e + _WINDOW_AFTER
        key = (text[lo : hi if hi < nxt else nxt - 1], s - lo, e - s)
        found = memo.get(key)
        if found is None:
            shift = lo - seg_lo
            found = memo.put(key, tuple(
                (start - shift, end - shift, rule, e164, digits)
                for start, end, rule, e164, digits in _judge(
                    doc, doc.view(segments[k]), [(s - seg_lo, e - seg_lo)], False,
                    lambda k=k: hints.of(k))))
        for start, end, rule, e164, digits in found:
            if e164 is None or e164 in allowed or digits in allowed:
                continue
            seg = segments[k]
            shift = lo - seg_lo
            by_segment.setdefault(k, []).append(
                doc.hit(rule, seg, doc.view(seg), start + shift, end + shift))
    for k in odd_segments | cn_segments:
        seg = segments[k]
        seg_spans = _cand_spans(doc.view(seg).text, True) if k in odd_segments else cn_spans[k]
        if seg_spans or k in cn_segments:
            by_segment[k] = list(_check_segment(doc, seg, doc.view(seg), allowed, seg_spans,
                                                k in cn_segments, lambda k=k: hints.of(k)))
    return [h for k in sorted(by_segment) for h in by_segment[k]]


# What decides about a digit run found at [s, e) of a segment's view lies within this window
# around it: the "+"/"00"/"(" prefix (5 characters before), the negative words (24 before the
# prefix), the hint words (starting 40 before to 20 after, 9 long, and the letter before one),
# the 3 characters after. Within a message and across a thread the same numbers recur with
# the same surroundings (signatures, quoted history), so the verdict is memoised by window
# (tests/rules/test_memo_scans.py compares with the plain per-segment scan).
_WINDOW_BEFORE = 50
_WINDOW_AFTER = 30
_Judged = tuple[int, int, str, "str | None", str]  # (start, end, rule, E.164, digits)


class _Hints:
    """Hint-word positions per segment, searched over all segments at once when first needed."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc
        self.per_segment: list[list[int]] | None = None

    def of(self, k: int) -> list[int]:
        if self.per_segment is None:
            text = self.doc.joined()[0]
            found = self.doc.split((s, None) for s in _hint_starts(self.doc, text))
            self.per_segment = [sorted(s for s, _ in seg) for seg in found]
        return self.per_segment[k]


def _hint_starts(doc: Doc, text: str) -> list[int]:
    """Start positions of the hint words in *text*, in the dictionary's order."""
    dictionary = doc.policy.extra["phone_hints"]
    out = []
    for s, e, term in dictionary.search_text(text, strip=False):
        if term.text in ("call", "tel", "cell", "m:", "t:", "p:", "m：", "t：") and s > 0 \
                and text[s - 1].isascii() and text[s - 1].isalpha():
            continue  # "recall", "hotel", "item:"
        out.append(s)
    return out


def _hint_positions(doc: Doc, view: NormText) -> list[int]:
    """Start positions of hint words in the view, sorted."""
    return sorted(_hint_starts(doc, view.text))


_REJECT = ("", False, False)


def _shape(cand: str, home_cn: bool) -> tuple[str, bool, bool]:
    """``(digits, "+" prefix, plausible)`` of a candidate, or :data:`_REJECT` when it has the
    wrong number of digits or is neither plausible nor long enough to be a number with a
    missing "+" next to a hint word. Cheap plausibility first: most digit runs are neither
    prefixed nor mobile numbers."""
    digits = cand.translate(_NOT_DIGITS)
    if not digits.isdigit():
        digits = _digits(cand)
    if not 7 <= len(digits) <= 15:
        return _REJECT
    plus = cand.lstrip(" (（").startswith("+")
    plausible = (plus or digits[0] == "0" or not home_cn
                 or (len(digits) == 11 and _MOBILE_CN.fullmatch(digits) is not None))
    if not plausible and len(digits) < 10:
        return _REJECT
    return digits, plus, plausible


def _check_segment(doc: Doc, seg: Segment, view: NormText, allowed: set[str],
                   spans: list[tuple[int, int]] | None = None, cn: bool | None = None,
                   get_hints: Callable[[], list[int]] | None = None) -> Iterator[Hit]:
    for start, end, rule, e164, digits in _judge(doc, view, spans, cn, get_hints):
        if e164 is None or e164 in allowed or digits in allowed:
            continue
        yield doc.hit(rule, seg, view, start, end)


def _judge(doc: Doc, view: NormText, spans: list[tuple[int, int]] | None, cn: bool | None,
           get_hints: Callable[[], list[int]] | None) -> Iterator[_Judged]:
    """``(start, end, rule, E.164 or None, digits)`` for each candidate that is not ruled out
    before validation (the caller drops the official and the customer's numbers)."""
    text = view.text
    region = doc.policy.phone_region
    home_cn = region == "CN"
    cache = doc.policy.memos.phone_valid
    seen: set[tuple[int, int]] = set()
    hints: list[int] | None = None
    shapes = doc.policy.memos.phone_shapes
    for start, end, cand in _candidates(view, home_cn, spans, cn):
        # Trim separators caught at the edges ("(", spaces).
        while start < end and not (text[start].isdigit() or text[start] in _TRIM_KEEP):
            start += 1
        if (start, end) in seen:
            continue
        seen.add((start, end))
        info = shapes.get(cand)
        if info is None:
            info = shapes.put(cand, _shape(cand, home_cn))
        if info is _REJECT:
            continue
        digits, plus, plausible = info
        if hints is None:
            hints = _hint_positions(doc, view) if get_hints is None else get_hints()
        i = bisect_left(hints, start - _HINT_WINDOW_BEFORE)
        hinted = i < len(hints) and hints[i] <= end + _HINT_WINDOW_AFTER
        if not plausible and not hinted:
            continue
        if not hinted and _excluded(text, start, end, cand):
            continue
        if hinted and _DATE.match(cand.strip()):
            continue
        key = ("+" + digits if plus else digits, hinted)
        e164 = cache.get(key, _MISSING)
        if e164 is _MISSING:
            e164 = cache.put(key, _validate(key[0], region, hinted))
        yield start, end, "PRIVATE_PHONE_HINTED" if hinted else "PRIVATE_PHONE", e164, digits
