"""Policy as data: packs, overlays, overrides, word lists, audit mode, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwarden.rules import (
    ACTIONS,
    CheckContext,
    RecipientInfo,
    RulesConfigError,
    RulesSettings,
    evaluate,
    load_policy,
)
from mailwarden.rules.words import collect_word_list_errors
from tests.rules.rulesutil import COMPANY, CTX, make_message


def _eval(policy, body: str, ctx: CheckContext = CTX):
    return evaluate(policy, make_message(body).as_bytes(), ctx)


def test_actions_order() -> None:
    assert ACTIONS == ("allow", "tag", "warn", "flag", "redact", "quarantine", "block")


def test_default_pack_rule_ids_are_upper_snake(policy) -> None:
    assert all(r.id.isupper() and " " not in r.id for r in policy.rules.values())
    assert {"PRIVATE_WECHAT", "DIVERT_BUSINESS", "CUSTOMER_LIST_EXPORT"} <= set(policy.rules)


def test_site_pack_overlays_and_overrides(tmp_path: Path) -> None:
    pack = tmp_path / "site.toml"
    pack.write_text(
        '''
[policy]
competitor_domains = ["rival-led.com"]

[[rule]]
id = "PRIVATE_WECHAT"
action = "redact"

[[rule]]
id = "PRICE_LEAK"
category = "sensitive_word"
severity = "medium"
action = "warn"
words = ["底价", "floor price"]

[[override]]
rule = "PRICE_LEAK"
team = "export"
action = "flag"

[[override]]
rule = "DIVERT_BUSINESS"
customer = "ACME Imports"
action = "block"

[[override]]
category = "private_contact"
role = "admin"
enabled = false
''',
        encoding="utf-8",
    )
    p = load_policy(COMPANY, RulesSettings(packs=(pack,)))
    assert p.rules["PRIVATE_WECHAT"].action == "redact"
    assert p.rules["PRIVATE_WECHAT"].category == "private_contact"
    assert "site.toml" in p.rules["PRICE_LEAK"].source
    assert _eval(p, "my wechat: tom_8888").action == "redact"
    assert _eval(p, "our floor price is 3.1").action == "flag"  # team export
    other_team = CheckContext(operator="tom", team="domestic", recipients=CTX.recipients)
    assert _eval(p, "底价 3.1", other_team).action == "warn"
    assert _eval(p, "my new company").action == "block"  # customer ACME
    stranger = CheckContext(operator="tom", recipients=(RecipientInfo("x@y.com", 1, "Other", "tom"),))
    assert _eval(p, "my new company", stranger).action == "quarantine"
    admin = CheckContext(operator="boss", role="admin", recipients=CTX.recipients)
    assert _eval(p, "my wechat: tom_8888", admin).action == "allow"


def test_audit_mode_decides_but_does_not_enforce(tmp_path: Path) -> None:
    p = load_policy(COMPANY, RulesSettings(mode="audit"))
    d = _eval(p, "my wechat: tom_8888")
    assert (d.action, d.enforced_action, d.mode) == ("block", "tag", "audit")
    clean = _eval(p, "hello")
    assert clean.enforced_action == "allow"
    pack = tmp_path / "audit.toml"
    pack.write_text('[policy]\nmode = "audit"\n', encoding="utf-8")
    assert load_policy(COMPANY, RulesSettings(packs=(pack,))).mode == "audit"


def test_word_list_with_severities(tmp_path: Path) -> None:
    wl = tmp_path / "competitors products.txt"
    wl.write_text("# description: competitor product names\n# severity: low\nSuperLED X1\n"
                  "暗标,high\nsecret discount,critical\n\n", encoding="utf-8")
    p = load_policy(COMPANY, RulesSettings(word_lists=(wl,)))
    rule = p.rules["WORDLIST_COMPETITORS_PRODUCTS"]
    assert rule.category == "sensitive_word" and rule.severity == "low"
    assert _eval(p, "compare with superled x1").action == "tag"
    assert _eval(p, "这次是暗标").action == "quarantine"
    d = _eval(p, "a SECRET discount for you")
    assert d.action == "block" and d.findings[0].severity == "critical"


def test_ten_thousand_terms_build_once(tmp_path: Path) -> None:
    wl = tmp_path / "big.txt"
    wl.write_text("\n".join(f"term{i:05d}x" for i in range(10_000)), encoding="utf-8")
    p = load_policy(COMPANY, RulesSettings(word_lists=(wl,)))
    assert len(p.dictionary) > 10_000
    assert _eval(p, "we saw term09999x today").findings[0].match == "term09999x"


@pytest.mark.parametrize(
    "content,needle",
    [
        ("[[rule]]\nid = \"bad id\"\ncategory = \"sensitive_word\"\nseverity = \"low\"\naction = \"tag\"\n", "UPPER_SNAKE"),
        ("[[rule]]\nid = \"X\"\ncategory = \"nonsense\"\nseverity = \"low\"\naction = \"tag\"\n", "rule X.category"),
        ("[[rule]]\nid = \"PRIVATE_WECHAT\"\naction = \"explode\"\n", "rule PRIVATE_WECHAT.action"),
        ("[[rule]]\nid = \"NEW_ONE\"\ncategory = \"sensitive_word\"\n", "needs severity, action"),
        ("[[override]]\nrule = \"NOPE\"\naction = \"tag\"\n", "unknown rule 'NOPE'"),
        ("[[override]]\nrule = \"PRIVATE_QQ\"\n", "needs action"),
        ("[rulez]\n", "unknown table"),
        ("[[rule]]\nid = \"PRIVATE_QQ\"\nactoin = \"tag\"\n", "rule PRIVATE_QQ.actoin: unknown key"),
        ("this is = = not toml", "invalid TOML"),
        ("[policy]\nmode = \"loud\"\n", "policy.mode"),
    ],
)
def test_config_errors_name_file_key_and_problem(tmp_path: Path, content: str, needle: str) -> None:
    pack = tmp_path / "site.toml"
    pack.write_text(content, encoding="utf-8")
    with pytest.raises(RulesConfigError) as e:
        load_policy(COMPANY, RulesSettings(packs=(pack,)))
    assert str(pack) in str(e.value)
    assert needle in str(e.value)


def test_missing_pack_file(tmp_path: Path) -> None:
    with pytest.raises(RulesConfigError, match="file not found"):
        load_policy(COMPANY, RulesSettings(packs=(tmp_path / "nope.toml",)))


def test_bad_word_list_lines_are_reported_with_line_numbers(tmp_path: Path) -> None:
    wl = tmp_path / "w.txt"
    wl.write_text("good term\nab\n新公司\tsevere\nfine one\n# severity: loud\n", encoding="utf-8")
    errors = collect_word_list_errors(wl)
    assert [n for n, _ in errors] == [2, 3, 5]
    with pytest.raises(RulesConfigError, match=r"line 2.*too short.*2 more"):
        load_policy(COMPANY, RulesSettings(word_lists=(wl,)))


def test_policy_is_reusable_and_thread_safe(policy) -> None:
    from concurrent.futures import ThreadPoolExecutor

    msgs = [make_message(f"msg {i} my wechat: tom_{i:04d}").as_bytes() for i in range(40)]
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda m: evaluate(policy, m, CTX).action, msgs))
    assert set(results) == {"block"}
