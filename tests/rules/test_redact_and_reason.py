"""Redaction of text and HTML parts; the readable reason; JSON shape."""

from __future__ import annotations

from email import message_from_bytes, policy as email_policy
from pathlib import Path

from mailwarden.rules import RulesSettings, evaluate, load_policy, redact
from tests.rules.rulesutil import COMPANY, CTX, make_message


def _redacting_policy(tmp_path: Path):
    pack = tmp_path / "redact.toml"
    pack.write_text('[[rule]]\nid = "PRIVATE_WECHAT"\naction = "redact"\n'
                    '[[rule]]\nid = "PRIVATE_EMAIL_FREEMAIL"\naction = "redact"\n', encoding="utf-8")
    return load_policy(COMPANY, RulesSettings(packs=(pack,)))


def test_redact_replaces_in_plain_and_html_and_keeps_the_rest(tmp_path: Path) -> None:
    p = _redacting_policy(tmp_path)
    msg = make_message("Price 3.2 USD. 微信：tom_8888 or tom at gmail dot com\n",
                       html="<p>Price 3.2 USD. 微信：tom_8888 or <a href=\"mailto:tom@gmail.com\">tom@gmail.com</a></p>",
                       charset="gbk")
    msg.add_attachment(b"wechat: tom_8888", maintype="text", subtype="plain", filename="keep.txt")
    raw = msg.as_bytes()
    d = evaluate(p, raw, CTX)
    assert d.action == "redact"
    out = redact(raw, d)
    parsed = message_from_bytes(out, policy=email_policy.default)
    plain = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "tom_8888" not in plain and "gmail" not in plain and "Price 3.2 USD" in plain
    assert "tom_8888" not in html and "tom@gmail.com" not in html and "Price 3.2 USD" in html
    att = [a for a in parsed.iter_attachments()][0]
    assert att.get_content() == "wechat: tom_8888"  # attachments are not rewritten
    assert parsed["Subject"] == "Quotation"
    again = evaluate(p, out, CTX)
    assert {f.where for f in again.findings} == {"attachment:keep.txt"}


def test_redact_without_redact_findings_returns_input_unchanged(policy) -> None:
    raw = make_message("my wechat: tom_8888").as_bytes()
    d = evaluate(policy, raw, CTX)
    assert redact(raw, d) is raw


def test_reason_names_rule_and_match(policy) -> None:
    d = evaluate(policy, make_message("加我微信 tom_8888").as_bytes(), CTX)
    en, zh = d.reason("en"), d.reason("zh")
    assert "PRIVATE_WECHAT" in en and "tom_8888" in en and "\n" not in en
    assert "PRIVATE_WECHAT" in zh and "tom_8888" in zh and "拦截" in zh
    assert evaluate(policy, make_message("hello").as_bytes(), CTX).reason() == "No rule matched"


def test_to_json_shape(policy) -> None:
    d = evaluate(policy, make_message("my new company").as_bytes(), CTX)
    js = d.to_json()
    assert js["action"] == "quarantine"
    assert js["findings"] == [{"rule": "DIVERT_BUSINESS", "category": "sensitive_word",
                               "kind": "word", "match": "my new company", "severity": "high",
                               "confidence": "high", "cue": ""}]
