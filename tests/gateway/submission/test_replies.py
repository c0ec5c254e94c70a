"""The submission's replies to a logged-in user are in one language: theirs, else the config's."""

from __future__ import annotations

import re

import pytest
from mailwarden.gateway.submission.replies import _TEXTS, bilingual, language, say

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(("user", "default", "want"), [
    ("zh", "en", "zh"), ("en", "zh", "en"), (None, "zh", "zh"), ("", "zh", "zh"), ("fr", "zh", "zh"),
    (None, "de", "en"), ("ZH", "en", "zh"), ("zh-Hant", "en", "zh"),
])
def test_the_users_language_else_the_configs_else_english(user, default, want) -> None:
    assert language(user, default) == want


@pytest.mark.parametrize("key", sorted(_TEXTS))
def test_each_reply_is_one_language_and_keeps_its_code(key) -> None:
    values = {"id": 7, "mb": 50, "why": "smime", "reason": "x"}
    en, zh = say(key, "en", **values), say(key, "zh", **values)
    assert en[:9] == zh[:9] and re.match(r"\d{3} \d\.\d\.\d", en)
    assert not CJK.search(en)
    assert key == "blocked" or CJK.search(zh)


def test_before_login_both_languages_in_one_reply() -> None:
    assert bilingual("too_big", mb=50) == ("552 5.3.4 The message is larger than the 50 MB limit; it was not sent "
                                           "(邮件超过 50 MB 的大小上限，未发送)")
