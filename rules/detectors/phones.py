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
from bisect import bisect_left
from typing import Any, Iterator

from ..message import Segment
from ..normalize import NormText
from .base import Doc, Hit

NAME = "phones"
DESCRIPTION = "Phone numbers other than the company's official ones and the customer's own"

# Starts with a digit so that sre scans ahead quickly; a "+" or "(" before it is added back.
# The lookahead is implied by the rest (7+ digits, only digits and separators) but lets sre
# give up on short numbers ("12.50", "25 days") before trying the separator alternatives.
_CAND = re.compile(r"\d(?=[\d \t.\-/()（）]{6})(?:[ \t.\-/()（）]{0,3}\d){6,15}(?![0-9])")
_PREFIX = re.compile(r"(?:\+|00)?[ \t]?[(（]?[ \t]?$")
_MOBILE_CN = re.compile(r"1[3-9]\d{9}")
_CN_DIGITS = "零〇一二三四五六七八九"
_CN_MAP = {ord(c): str(i) for i, c in enumerate("零一二三四五六七八九")}
_CN_MAP.update({ord("〇"): "0", ord("幺"): "1", ord("两"): "2", ord("兩"): "2"})
_CN_RUN = re.compile(r"[零〇一二三四五六七八九幺两兩][零〇一二三四五六七八九幺两兩0-9 \-.]{6,24}")
_CN_PRESENT = re.compile(r"[零〇一二三四五六七八九幺两兩]{3}")

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
# Everything a candidate holds besides digits (separators, the "+"/"(" prefix, and for
# Chinese numerals the converted run): deleting these is _digits() without a regex.
_NOT_DIGITS = str.maketrans("", "", " \t.-/()（）+")


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


def prepare(policy: Any) -> None:
    """Parse the official phones once (E.164) and warm up the phone metadata."""
    import phonenumbers  # noqa: PLC0415

    region = policy.phone_region
    official: set[str] = set()
    for p in policy.company.official_phones:
        e = _e164(p, region)
        official.add(e if e else _digits(p))
    policy.official_phones = frozenset(official)
    phonenumbers.is_valid_number(phonenumbers.parse("+8613800138000", None))
    policy.extra["phone_cache"] = {}
    from ..words import Dictionary, Term  # noqa: PLC0415

    policy.extra["phone_hints"] = Dictionary(
        [Term(w, w, "HINT", None, "phones") for w in _HINT_WORDS]
    )


def _customer_set(doc: Doc) -> set[str]:
    region = doc.policy.phone_region
    cache: dict[str, str | None] = doc.policy.extra.setdefault("phone_cache", {})
    out: set[str] = set()
    for p in doc.customer_phones:
        if p not in cache:
            if len(cache) > 10_000:
                cache.clear()
            cache[p] = _e164(p, region)
        e = cache[p]
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


def _candidates(view: NormText, home_cn: bool = False) -> Iterator[tuple[int, int, str]]:
    """Digit runs that may be phone numbers, as ``(start, end, candidate text)``.

    With *home_cn* (policy region CN) runs that :func:`_check_segment` would drop anyway are
    skipped here, before any slicing: no "+"/"0"/"(" prefix, not starting with 0 and fewer
    than 10 digits (so neither prefixed, trunk-dialled nor an 11-digit mobile). Number-heavy
    text (dates, HS codes, prices, quantities) is mostly such runs.
    """
    text = view.text
    for m in _CAND.finditer(text):
        start = m.start()
        if start:
            # Only "+", "00" or "(" can extend the candidate backwards (see _PREFIX); the
            # window test saves a regex search for the common " 12345678" case.
            w = text[max(0, start - 5) : start]
            if "+" in w or "0" in w or "(" in w or "（" in w:
                p = _PREFIX.search(text, max(0, start - 5), start)
                if p is not None and p.start() < start and p.group().strip(" \t"):
                    start = p.start()
            elif home_cn:
                g = m.group()
                if g[0] != "0" and (len(g) < 10 or len(g.translate(_NOT_DIGITS)) < 10):
                    continue
            if start:
                prev = text[start - 1]
                if prev.isascii() and (prev.isalnum() or prev in "@._%+-"):
                    continue  # MSCU1234567, x@1234567.com, part of a longer code
        yield start, m.end(), text[start : m.end()]
    if _CN_PRESENT.search(text):
        for m in _CN_RUN.finditer(text):
            conv = m.group().translate(_CN_MAP).rstrip(" -.")
            if sum(c.isdigit() for c in conv) >= 7:
                yield m.start(), m.start() + len(conv), conv


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
    hits: list[Hit] = []
    for seg in doc.segments:
        hits.extend(_check_segment(doc, seg, doc.view(seg), allowed))
    return hits


def _hint_positions(doc: Doc, view: NormText) -> list[int]:
    """Start positions of hint words in the view (computed only when a number needs it)."""
    dictionary = doc.policy.extra["phone_hints"]
    text = view.text
    out = []
    for s, e, term in dictionary.search(view, strip=False):
        if term.text in ("call", "tel", "cell", "m:", "t:", "p:", "m：", "t：") and s > 0 \
                and text[s - 1].isascii() and text[s - 1].isalpha():
            continue  # "recall", "hotel", "item:"
        out.append(s)
    out.sort()
    return out


def _check_segment(doc: Doc, seg: Segment, view: NormText, allowed: set[str]) -> Iterator[Hit]:
    text = view.text
    region = doc.policy.phone_region
    home_cn = region == "CN"
    cache: dict[tuple[str, bool], str | None] = doc.policy.extra.setdefault("phone_valid", {})
    seen: set[tuple[int, int]] = set()
    hints: list[int] | None = None
    for start, end, cand in _candidates(view, home_cn):
        # Trim separators caught at the edges ("(", spaces).
        while start < end and not (text[start].isdigit() or text[start] in _TRIM_KEEP):
            start += 1
        if (start, end) in seen:
            continue
        seen.add((start, end))
        digits = cand.translate(_NOT_DIGITS)
        if not digits.isdigit():
            digits = _digits(cand)
        if not 7 <= len(digits) <= 15:
            continue
        # Cheap plausibility first: most digit runs are neither prefixed nor mobile numbers.
        plus = cand.lstrip(" (（").startswith("+")
        plausible = (plus or digits[0] == "0" or not home_cn
                     or (len(digits) == 11 and _MOBILE_CN.fullmatch(digits) is not None))
        if not plausible and len(digits) < 10:
            continue
        if hints is None:
            hints = _hint_positions(doc, view)
        i = bisect_left(hints, start - _HINT_WINDOW_BEFORE)
        hinted = i < len(hints) and hints[i] <= end + _HINT_WINDOW_AFTER
        if not plausible and not hinted:
            continue
        if not hinted and _excluded(text, start, end, cand):
            continue
        if hinted and _DATE.match(cand.strip()):
            continue
        key = ("+" + digits if plus else digits, hinted)
        if key in cache:
            e164 = cache[key]
        else:
            if len(cache) > 50_000:
                cache.clear()
            e164 = cache[key] = _validate(key[0], region, hinted)
        if e164 is None or e164 in allowed or digits in allowed:
            continue
        yield doc.hit("PRIVATE_PHONE_HINTED" if hinted else "PRIVATE_PHONE", seg, view, start, end)
