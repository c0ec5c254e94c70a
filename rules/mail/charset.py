"""Decoding bytes to text: honour the declared charset, repair wrong or missing ones."""

from __future__ import annotations

import codecs
import re

__all__ = ["decode_bytes", "html_meta_charset", "looks_binary"]

# Declared names mapped to the superset codec that decodes them (mail clients mislabel GBK as
# GB2312 all the time; Big5 mail often carries HKSCS characters).
_ALIASES = {
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "chinese": "gb18030",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "utf8": "utf-8",
    "ks_c_5601-1987": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
}
# Declared charsets that decode any byte sequence, so a wrong label never fails loudly.
_PERMISSIVE = {"ascii", "cp1252", "iso-8859-15", "windows-1252", "latin-1", "iso8859-1"}
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd\ue000-\uf8ff]")


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


# The same count without a regex scan (which costs ~8 ns a character): in UTF-8 the control
# characters are single bytes below 0x80 and counted with bytes.translate; U+E000-U+EFFF start
# with 0xEE, U+F000-U+F8FF with 0xEF 0x80-0xA3, and U+FFFD is EF BF BD.
_NOT_CONTROL = bytes(b for b in range(256) if not (b <= 8 or b in (0x0B, 0x7F) or 0x0E <= b <= 0x1F))
_PRIVATE_EF = re.compile(rb"\xef[\x80-\xa3]")


def _bad_count(sample: str) -> int:
    """``len(_BAD_CHARS.findall(sample))``."""
    if sample.isascii():
        return len(sample.encode("ascii").translate(None, _NOT_CONTROL))
    data = sample.encode("utf-8", "surrogatepass")
    n = len(data.translate(None, _NOT_CONTROL)) + data.count(b"\xee")
    if b"\xef" in data:
        n += data.count(b"\xef\xbf\xbd") + len(_PRIVATE_EF.findall(data))
    return n


def looks_binary(text: str) -> bool:
    """True when more than 3 % of *text* are control, private-use or replacement characters."""
    if not text:
        return False
    sample = text[:100_000]
    return _bad_count(sample) > 0.03 * len(sample)


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, bool]:
    """Decode *data*; returns ``(text, ok)``. ``ok`` is False when no charset fits.

    Valid UTF-8 wins over any label (it is self-validating and GBK text is practically never
    valid UTF-8); then the declared charset (mapped to its superset); then charset-normalizer.
    7-bit data is read in the declared charset too when that reads ASCII differently (UTF-7,
    HZ-GB-2312, ISO-2022-*, UTF-16): what the recipient's mail program shows is what is
    scanned, and 7-bit data that is not valid in its declared charset is not ``ok``.
    """
    if not data:
        return "", True
    codec = _codec(declared)
    if data.isascii():
        return _ascii_bytes(data, codec, declared)
    if codec == "ascii":
        codec = declared = None  # 8-bit data labelled US-ASCII: the label says nothing
    if codec not in _WIDE:
        try:
            text = data.decode("utf-8")
            return text, not looks_binary(text)
        except UnicodeDecodeError:
            pass
    if codec and codec not in _PERMISSIVE and codec not in ("utf-8", "ascii"):
        try:
            text = data.decode(codec)
            if not looks_binary(text):
                return text, True
        except (UnicodeDecodeError, LookupError):
            stripped = data.rstrip(b"\r\n")
            if codec in _WIDE and len(data) % 2 and stripped != data:
                # a line end added in 8 bits after UTF-16 text (Python's email package does)
                return decode_bytes(stripped, declared)
    declared_ok = codec in _PERMISSIVE
    if declared_ok and _western(data):
        text = data.decode(codec, errors="replace")  # type: ignore[arg-type]
        return text, not looks_binary(text)
    cjk = _cjk(data, strict_big5=declared_ok)
    if cjk is not None:
        return cjk, True
    guess = _guess(data)
    if declared_ok and guess not in _CJK_CODECS:
        other = _single_byte_script(data, codec, guess)  # type: ignore[arg-type]
        if other is not None:
            return other, True
    if guess is not None and not (declared_ok and guess not in _CJK_CODECS):
        try:
            text = data.decode(guess, errors="replace")
            if not looks_binary(text):
                return text, True
        except LookupError:
            pass
    if declared_ok:
        text = data.decode(codec, errors="replace")  # type: ignore[arg-type]
        return text, not looks_binary(text)
    text = data.decode("utf-8", errors="replace")
    return text, False


_ASCII_BYTES = bytes(range(128))
_NOT_LETTERS = bytes(b for b in range(256) if not (65 <= b <= 90 or 97 <= b <= 122))


def _western(data: bytes) -> bool:
    """Few 8-bit bytes among many ASCII letters: Western European text, which its Latin-1 /
    windows-1252 label reads right (CJK, Cyrillic or Arabic text is mostly 8-bit bytes), so
    no guessing (charset-normalizer costs about a millisecond a part)."""
    high = len(data.translate(None, _ASCII_BYTES))
    letters = len(data.translate(None, _NOT_LETTERS))
    return high < 0.25 * letters


_WIDE = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")
# Codecs that read every 7-bit byte as the same ASCII character: nothing to decode again.
_ASCII_SAME = {"ascii", "utf-8", "cp1252", "iso8859-1", "iso8859-15", "gb18030", "big5hkscs", "cp949",
               "euc_jp", "shift_jis", "euc_kr"}
# Readings of 7-bit text that a mail program may apply to a charset label Python does not know.
_SEVEN_BIT_READINGS = ("utf-7", "hz")


def _ascii_bytes(data: bytes, codec: str | None, declared: str | None) -> tuple[str, bool]:
    """:func:`decode_bytes` for 7-bit *data*; *codec*: the declared charset's codec (None when
    none was declared or Python does not know it)."""
    text = data.decode("ascii")
    if b"\x1b" in data and (codec is None or codec in _ASCII_SAME):
        # ISO-2022 escape sequences under no label or a label that cannot be right (mail
        # from Japanese clients is often sent so): read what every mail program shows.
        read = _iso2022(data)
        if read is not None:
            return read, not looks_binary(read)
    if codec is not None and codec not in _ASCII_SAME:
        try:
            read = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            return text, False  # e.g. broken UTF-7: what would the recipient see?
        return read, not looks_binary(read)
    if codec is None and declared and declared.strip().strip("\"'"):
        # A label Python does not know: scan the plain reading and every other one it may get.
        readings = [text]
        for other in _SEVEN_BIT_READINGS:
            try:
                alt = data.decode(other)
            except UnicodeDecodeError:
                continue
            if alt != text:
                readings.append(alt)
        text = "\n".join(readings)
    return text, not looks_binary(text)


# ISO-2022 codecs tried on 7-bit data with escape sequences, the widest first
# (iso2022_jp_2 also reads ESC $ A for GB 2312 and ESC $ ( C for KS X 1001).
_ISO2022 = ("iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_3", "iso2022_kr")


def _iso2022(data: bytes) -> str | None:
    for name in _ISO2022:
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        if "\x1b" not in text:
            return text
    return None


# Single-byte codecs charset-normalizer may name for text whose label says Western European.
_NON_LATIN_SINGLE = {codecs.lookup(n).name for n in (
    "cp1251", "koi8_r", "koi8_u", "iso8859_5", "mac_cyrillic", "cp866", "cp1256", "iso8859_6", "cp1253",
    "iso8859_7", "cp1255", "iso8859_8", "cp1250", "iso8859_2")}
_LATIN_SUPPLEMENT = re.compile(r"[\u00c0-\u00ff]")


def _single_byte_script(data: bytes, codec: str, guess: str | None) -> str | None:
    """Russian, Arabic, Greek, Hebrew or Central European text labelled Latin-1 / windows-1252
    (a default many clients send): when the Western reading is mostly accented capitals and
    symbols — letters no Western text has that many of — read it in the guessed codec."""
    if guess not in _NON_LATIN_SINGLE:
        return None
    western = data.decode(codec, errors="replace")
    wide = sum(1 for c in western if ord(c) > 0x7F)
    letters = sum(1 for c in western if c.isalpha())
    if not letters or wide < 0.4 * letters:
        return None  # a few accents: Western text
    if len(_LATIN_SUPPLEMENT.findall(western)) < 0.8 * wide:
        return None
    try:
        text = data.decode(guess)  # type: ignore[arg-type]
    except UnicodeDecodeError:
        return None
    return None if looks_binary(text) else text


_KANA = re.compile(r"[\u3040-\u30ff]")


def _japanese(data: bytes) -> str | None:
    """Undeclared Japanese (EUC-JP or Shift_JIS): kana make up much of any Japanese text and
    almost none of Chinese, whose readings of the same bytes would win otherwise."""
    for name in ("euc_jp", "shift_jis", "cp932"):
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        wide = sum(1 for c in text if ord(c) > 0x7F)
        if wide and len(_KANA.findall(text)) >= 0.2 * wide and not looks_binary(text):
            return text
    return None


_CJK_CODECS = {"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp950", "hz", "euc_jp", "shift_jis",
               "euc_kr", "cp949", "iso2022_jp"}
_IDEOGRAPH = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")


def _cjk(data: bytes, *, strict_big5: bool) -> str | None:
    """Undeclared or mislabelled Chinese: GBK if the text is mostly common simplified
    characters (GB2312 repertoire), else Big5 if it decodes to ideographs; Japanese first
    (:func:`_japanese`)."""
    ja = _japanese(data)
    if ja is not None:
        return ja
    try:
        gb = data.decode("gb18030")
    except UnicodeDecodeError:
        gb = None
    if gb is not None:
        wide = [c for c in gb if ord(c) > 0x7F]
        if wide:
            common = 0
            for c in wide:
                try:
                    c.encode("gb2312")
                    common += 1
                except UnicodeEncodeError:
                    pass
            if common >= 0.9 * len(wide) and not looks_binary(gb):
                return gb
    try:
        b5 = data.decode("big5hkscs")
    except UnicodeDecodeError:
        return None
    wide = [c for c in b5 if ord(c) > 0x7F]
    if not wide or looks_binary(b5):
        return None
    ratio = len(_IDEOGRAPH.findall(b5)) / len(wide)
    if ratio >= (0.98 if strict_big5 else 0.9) and (not strict_big5 or len(wide) >= 4):
        return b5
    return None


def _guess(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        return None
    best = from_bytes(data[:200_000]).best()
    if best is None:
        return None
    codec = _codec(best.encoding)
    if codec is not None and codec.startswith(("shift_jis", "cp932")):
        return _not_halfwidth_kana(data, codec)
    return codec


_HALFWIDTH_KANA = re.compile(r"[\uff61-\uff9f]")


def _not_halfwidth_kana(data: bytes, codec: str) -> str:
    """A short Russian text reads as Shift_JIS half-width katakana (bytes 0xA1-0xDF), which
    no Japanese mail is written in: then KOI8-R or windows-1251, by letter case (Russian text
    is mostly lower case: 0xC0-0xDF in KOI8-R, 0xE0-0xFF in windows-1251)."""
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return codec
    wide = sum(1 for c in text if ord(c) > 0x7F)
    if not wide or len(_HALFWIDTH_KANA.findall(text)) < 0.5 * wide:
        return codec
    low = sum(1 for b in data if 0xC0 <= b <= 0xDF)
    high = sum(1 for b in data if b >= 0xE0)
    return "koi8-r" if low > high else "cp1251"


_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.I)


def html_meta_charset(data: bytes) -> str | None:
    """The charset an HTML document names in a ``<meta>`` tag in its first 4 KB (what a mail
    program reads when the MIME header names none)."""
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii") if m else None
