"""What a customer's private contacts are in a text, and how each one shows masked.

The :class:`Masker` asks the product's own detectors (:mod:`mailwarden.rules.detectors`:
phones, IM handles, e-mail addresses) with the policy the gateway checks outbound mail with,
so what counts as a private contact inbound is what counts outbound: the company's official
phones and handles and its own domains are never masked. Of the addresses, only those at a
free-mail domain (the policy's one free-mail list) are private; a business address, at the
customer's domain or any other, is how the customer is reached and stays. Of the phone
numbers, those that ``phonenumbers`` knows as fixed lines (an office, a hotline) stay unless
``mask_landlines``; a number given as a messenger account is masked whatever it is.

How they show: a phone keeps the first 3 and last 4 digits of its national number, each
other digit a ``*`` (``+86 138 **** 8000``, ``138****5678``); a handle keeps its first 3 and
last 2 characters, an address the first 2 characters of its local part, the rest written as
``****`` (``wx_****88``, ``ma****@gmail.com``). Short ones keep fewer, so that some of each
is always hidden.

Pure: text in, replacements out (:meth:`Masker.find`); no sockets, no database.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailwarden.rules.context import CheckContext
from mailwarden.rules.detectors import emails, handles, phones
from mailwarden.rules.detectors.base import Doc
from mailwarden.rules.mail.segments import ParsedMessage, Segment

if TYPE_CHECKING:
    from mailwarden.rules.context import CompanyProfile, RulesSettings
    from mailwarden.rules.policy import Policy

__all__ = ["Masker", "Replacements", "apply"]

Replacements = dict[int, str]  # index of a character in the text -> what shows instead ("" : nothing)

STARS = "****"
_CHINESE_DIGITS = {"零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "兩": "2", "三": "3",
                   "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_PHONE_HANDLE = re.compile(r"\+?[\d\s\-().]{7,24}")


def _digit(c: str) -> str | None:
    if "0" <= c <= "9":
        return c
    if c in _CHINESE_DIGITS:
        return _CHINESE_DIGITS[c]
    d = unicodedata.digit(c, None) if not c.isascii() else None
    return None if d is None else str(d)


def _visible(n: int, first: int, last: int, min_hidden: int) -> tuple[int, int]:
    """How many of ``n`` characters to show at the start and at the end: ``first`` and
    ``last``, fewer when that would hide less than ``min_hidden`` (the start gives first)."""
    min_hidden = min(min_hidden, n)
    while first + last > 0 and n - first - last < min_hidden:
        if first > 0:
            first -= 1
        else:
            last -= 1
    return first, last


def _as_run(start: int, end: int) -> Replacements:
    """The characters ``[start, end)`` shown as one :data:`STARS`, whatever their number."""
    return {i: (STARS if i == start else "") for i in range(start, end)}


@dataclass(frozen=True)
class _Phone:
    """The digits of a number as written (``(index, digit)``) and how many of them precede
    the national number (country code, "00", trunk "0")."""

    digits: list[tuple[int, str]]
    prefix: int
    fixed_line: bool
    valid: bool = True


def _parse_phone(text: str, start: int, end: int, region: str) -> _Phone | None:
    import phonenumbers  # noqa: PLC0415 - loaded with the policy
    from phonenumbers import PhoneNumberType  # noqa: PLC0415

    digits = [(i, d) for i in range(start, end) if (d := _digit(text[i])) is not None]
    if len(digits) < 3:
        return None
    number = "".join(d for _i, d in digits)
    plus = text[start:end].lstrip(" (（").startswith(("+", "＋"))
    tries = ["+" + number[2:]] if number.startswith("00") else []
    tries += ["+" + number] if plus else [number, "+" + number]
    for candidate in tries:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(parsed):
            continue
        national = phonenumbers.national_significant_number(parsed)
        kind = phonenumbers.number_type(parsed)
        fixed = kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE,
                         PhoneNumberType.SHARED_COST, PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL)
        return _Phone(digits, max(0, len(digits) - len(national)), fixed)
    return _Phone(digits, 0, False, valid=False)


def _phone_mask(phone: _Phone) -> Replacements:
    national = phone.digits[phone.prefix :]
    first, last = _visible(len(national), 3, 4, 3)
    return {i: "*" for i, _d in national[first : len(national) - last]}


def _handle_mask(text: str, start: int, end: int, kind: str, region: str) -> Replacements:
    value = text[start:end]
    if kind != "qq" and _PHONE_HANDLE.fullmatch(value) and sum(c.isdigit() for c in value) >= 7:
        phone = _parse_phone(text, start, end, region)
        if phone is not None and phone.valid:
            return _phone_mask(phone)
    if "/" in value.rstrip("/"):  # a link's path: the account is its last step
        start += value.rstrip("/").rfind("/") + 1
    while start < end and text[start] in "@+~":
        start += 1
    first, last = _visible(end - start, 3, 2, 3)
    return _as_run(start + first, end - last)


class Masker:
    """Finds a customer's private contacts in text, as the outbound rules would; built once
    per policy (:func:`mailwarden.rules.load_policy`, so its automata are ready) and shared by
    threads."""

    def __init__(self, policy: Policy, *, mask_landlines: bool = False) -> None:
        if policy.extra.get("handle_keywords") is None:
            raise ValueError("the policy was not prepared for the detectors: build it with load_policy()")
        self.policy = policy
        self.mask_landlines = mask_landlines
        self._ctx = CheckContext()

    @classmethod
    def build(cls, company: CompanyProfile, settings: RulesSettings, *, mask_landlines: bool = False) -> Masker:
        """A masker for the company and ``[rules]`` settings (loads the policy)."""
        from mailwarden.rules.engine import load_policy  # noqa: PLC0415

        return cls(load_policy(company, settings), mask_landlines=mask_landlines)

    def find(self, text: str) -> Replacements:
        """What to show instead of the private contacts' characters in ``text`` (empty: none)."""
        if not text:
            return {}
        seg = Segment(text, "body")
        doc = Doc(ParsedMessage([seg]), self._ctx, self.policy)
        region = self.policy.phone_region
        taken: set[int] = set()  # characters of the contacts masked so far
        out: Replacements = {}

        def add(start: int, end: int, reps: Replacements) -> None:
            span = range(start, end)
            if not taken.isdisjoint(span):
                return  # one contact seen by two detectors (a WhatsApp number is a phone too)
            taken.update(span)
            out.update(reps)

        for located in handles.located_hits(doc):
            add(located.start, located.end, _handle_mask(text, located.start, located.end, located.kind, region))
        view = doc.view(seg)
        for start, _end, address, _obfuscated in emails.find_addresses(view, doc.cache):
            if emails.rule_of(doc, address) != "PRIVATE_EMAIL_FREEMAIL":
                continue
            local = address.partition("@")[0]
            s, e = view.span(start, start + len(local))
            first, _last = _visible(e - s, 2, 0, 1)
            add(s, e, _as_run(s + first, e))
        for hit in phones.check(doc):
            assert hit.start is not None and hit.end is not None
            phone = _parse_phone(text, hit.start, hit.end, region)
            if phone is None or (phone.fixed_line and not self.mask_landlines):
                continue
            add(hit.start, hit.end, _phone_mask(phone))
        return out


def apply(text: str, reps: Replacements) -> str:
    """``text`` with the replacements made."""
    if not reps:
        return text
    out: list[str] = []
    pos = 0
    for i in sorted(reps):
        out.append(text[pos:i])
        out.append(reps[i])
        pos = i + 1
    out.append(text[pos:])
    return "".join(out)
