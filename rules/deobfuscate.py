"""Undoing the usual disguises of a contact, for a second look by the contact detectors.

``w.e.c.h.a.t`` and ``т е л е г р а м`` (letters spaced out), ``微 信``, ``V❤`` and ``薇❤``
(WeChat by other characters), ``wеchаt`` with Cyrillic letters (look-alikes inside a Latin
word), digits as words (``one three eight``, ``一三八``, ``壹叁捌``, ``〇九〇ー``), emoji keycaps
and emoji between digit groups, and base64 the reader is told to decode. :func:`reveal`
returns the text with those undone, or None when there was nothing to undo (most text:
cheap prefilters decide that first).
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["reveal", "MAX_CHARS"]

MAX_CHARS = 32_000  # of new text per message looked at again: disguises are announced early

# Letters (Latin or Cyrillic) spaced out by one and the same separator: "w.e.c.h.a.t", "т е л е г р а м".
_L = "a-zA-Z\u0400-\u04ff"
_SPACED = re.compile(rf"(?<![{_L}])[{_L}]([ .\-_*·•|/❤♥♡])(?:[{_L}]\1){{2,}}[{_L}](?![{_L}])")
_SPACED_SEPS = re.compile(r"[ .\-_*·•|/❤♥♡]")
_WECHAT = re.compile(r"[微威薇徽vV](?:[\s❤♥♡·.\-*_]+[信❤♥♡]|[❤♥♡])|[微威薇徽][\s·.\-*_]+信")
_MIXED = re.compile(r"[a-zA-Z\u0400-\u04ff\u0370-\u03ff]*(?:[a-zA-Z][\u0400-\u04ff\u0370-\u03ff]|"
                    r"[\u0400-\u04ff\u0370-\u03ff][a-zA-Z])[a-zA-Z\u0400-\u04ff\u0370-\u03ff]*")
_HOMOGLYPHS = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "І": "I", "α": "a", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "ε": "e", "ι": "i", "κ": "k",
    "Α": "A", "Β": "B", "Ε": "E", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Χ": "X", "Υ": "Y", "Ζ": "Z",
})
_WORD_DIGITS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_DIGIT_WORDS = re.compile(r"\b(?:(?:zero|one|two|three|four|five|six|seven|eight|nine|oh)\b[\s,\-]*){7,}",
                          re.I)
_CJK_DIGIT_MAP = {"〇": "0", "零": "0", "一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6",
                  "七": "7", "八": "8", "九": "9", "壹": "1", "贰": "2", "貳": "2", "叁": "3", "參": "3", "肆": "4",
                  "伍": "5", "陆": "6", "陸": "6", "柒": "7", "捌": "8", "玖": "9", "幺": "1", "两": "2"}
_CJK_DIGITS = re.compile("(?:[" + "".join(_CJK_DIGIT_MAP) + r"][\s\-ー－—]*){7,}")
_KEYCAP = re.compile(r"([0-9#*])\ufe0f?\u20e3")
_EMOJI_IN_DIGITS = re.compile(r"(?<=\d)[\u2600-\u27bf\U0001f300-\U0001faff\ufe0f]+(?=\d)")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
# Cheap first looks (C-speed scans; most text has none of these, and the patterns above cost
# far more per character): spaced single letters, counts of digit words and numerals.
# In the UTF-8 bytes, ASCII letters as "a", other 8-bit bytes as "x", the rest as ".": four
# single letters in a row (".a.a.a.a.", or Cyrillic ".xx.xx.xx.xx.") is then a bytes.find.
_FLAT = bytes(ord("a") if chr(b).isascii() and chr(b).isalpha() else ord("x") if b >= 0x80 else ord(".")
              for b in range(256))
_NUMBER_WORDS = (" one", " two", " three", " four", " five", " six", " seven", " eight", " nine", " zero")
# ... the lead bytes of their UTF-8 (memchr, where sre costs ~8 ns a byte): Greek and
# Cyrillic letters, emoji (U+2600-27BF and astral)
_CYRILLIC_GREEK = (b"\xd0", b"\xd1", b"\xce", b"\xcf")
_EMOJI = (b"\xf0", b"\xe2\x98", b"\xe2\x99", b"\xe2\x9a", b"\xe2\x9b", b"\xe2\x9c", b"\xe2\x9d", b"\xe2\x9e")
_WECHAT_HINTS = ("微 ", "威 ", "徽 ", "薇", "❤", "♥", "♡", "微·", "微.", "微-", "微*", "微_", "微\u3000")
# Numerals are everywhere in Chinese text; a phone number in them comes with one of these.
_NUMERAL_CONTEXT = ("手机", "电话", "微信", "号码", "手機", "電話", "號碼", "携帯", "電話番号", "联系", "聯絡", "打我",
                    "加我", "whatsapp", "tel")


def _spaced(m: re.Match[str]) -> str:
    return _SPACED_SEPS.sub("", m.group(0))


def _digit_words(m: re.Match[str]) -> str:
    out = []
    for part in re.split(r"(,)|\s+|-", m.group(0)):
        if part is None or not part:
            continue
        out.append(" " if part == "," else _WORD_DIGITS.get(part.lower(), ""))
    return "".join(out).strip() + " "


def _cjk_digits(m: re.Match[str]) -> str:
    return "".join(_CJK_DIGIT_MAP.get(c, " " if c in "ー－—- " else "") for c in m.group(0))


def _base64(text: str) -> str | None:
    found = []
    for m in _BASE64.finditer(text):
        try:
            raw = base64.b64decode(m.group(0), validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if decoded.isprintable() and any(c.isalpha() for c in decoded):
            found.append(decoded)
    return "\n".join(found) if found else None


def reveal(text: str) -> str | None:
    """*text* with disguises undone, or None when it has none."""
    out = text
    low = text.lower()
    data = text.encode("utf-8", "surrogatepass")
    flat = b"." + data.translate(_FLAT) + b"."
    if b".a.a.a.a." in flat or b".xx.xx.xx.xx." in flat:
        out = _SPACED.sub(_spaced, out)
    if sum(low.count(w) for w in _NUMBER_WORDS) >= 5:
        out = _DIGIT_WORDS.sub(_digit_words, out)
    if not text.isascii():
        if any(x in text for x in _WECHAT_HINTS):
            out = _WECHAT.sub("微信", out)
        if any(b in data for b in _CYRILLIC_GREEK):
            out = _MIXED.sub(lambda m: m.group(0).translate(_HOMOGLYPHS), out)
        if any(w in low for w in _NUMERAL_CONTEXT):
            out = _CJK_DIGITS.sub(_cjk_digits, out)
        if "\u20e3" in out:
            out = _KEYCAP.sub(r"\1", out)
        if any(b in data for b in _EMOJI):
            out = _EMOJI_IN_DIGITS.sub(" ", out)
    if ("base64" in low or "decode" in low or "解码" in low or "dekod" in low or "décod" in low
            or "decodif" in low or "декод" in low):
        decoded = _base64(text)
        if decoded is not None:
            out = out + "\n" + decoded
    return None if out == text else out
