"""What the submission says to a salesperson, in their language.

Once a client has logged in the gateway knows who it is talking to, so every refusal from then
on (a block and why, a message too big, an address it cannot relay, a message held) is in that
user's language (``users.lang``, set with ``mailwarden user edit --lang``; none: ``[rules]
language``): one language a reply, never Chinese inside an English one.  Before login the
language is not known: those few replies carry both (see :mod:`.smtp`, :mod:`.limits`), as does
:func:`bilingual` for a reply the protocol gives on its own.
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")

_TEXTS: dict[str, dict[str, str]] = {
    "held": {
        "en": "250 2.0.0 Held for review as {id}: a supervisor must release it before it is sent",
        "zh": "250 2.0.0 邮件 {id} 需主管审核，审核通过后才会发出",
    },
    "too_big": {
        "en": "552 5.3.4 The message is larger than the {mb:g} MB limit; it was not sent",
        "zh": "552 5.3.4 邮件超过 {mb:g} MB 的大小上限，未发送",
    },
    "line_too_long": {
        "en": "552 5.3.4 The message has a line longer than 1000 characters (RFC 5321); it was not sent",
        "zh": "552 5.3.4 邮件中有超过 1000 个字符的长行（RFC 5321），未发送",
    },
    "non_ascii": {
        "en": "553 5.6.7 Addresses with non-ASCII characters are not supported",
        "zh": "553 5.6.7 不支持含中文等非 ASCII 字符的地址",
    },
    "unsignable": {
        "en": "550 5.7.1 This message cannot carry the company signature ({why}) and company policy refuses such mail",
        "zh": "550 5.7.1 此类邮件无法添加公司签名（{why}），按公司规定不予发送",
    },
    "blocked": {
        "en": "550 5.7.1 {reason}",
        "zh": "550 5.7.1 {reason}",
    },
}


def language(lang: str | None, default: str) -> str:
    """The language to speak: the user's if it is one we speak, else the config's, else English."""
    for code in (lang, default):
        code = (code or "").lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def say(key: str, lang: str, **values: object) -> str:
    """The reply *key* in *lang* (one of :data:`LANGUAGES`), with *values* filled in."""
    return _TEXTS[key][lang if lang in LANGUAGES else "en"].format(**values)


def bilingual(key: str, **values: object) -> str:
    """The reply *key* in English with the Chinese after it: for when the user is not known."""
    en, zh = say(key, "en", **values), say(key, "zh", **values)
    return f"{en} ({zh.split(' ', 2)[2]})"
