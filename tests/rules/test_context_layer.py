"""The context layer (issue 19): confidence and cue per finding, intents in every language,
lexicons and cues from site packs validated with the line named."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwarden.rules import RulesConfigError, RulesSettings, evaluate, load_policy
from mailwarden.rules.findings import action_rank
from tests.rules.rulesutil import COMPANY, CTX, make_message


def raised(d) -> list:  # type: ignore[no-untyped-def]
    return [f for f in d.findings if action_rank(f.action) >= action_rank("warn")]


# ------------------------------------------------ warnings and notices are not the thing
@pytest.mark.parametrize("body", [
    "Please note: we never ask customers to pay into a personal account.",
    "郑重提醒：我司从不要求客户把货款付到个人账户。",
    "为了您的资金安全，请勿私下联系我司员工。",
    "Wir bitten Kunden niemals, auf ein Privatkonto zu zahlen, und nie an eine personal account.",
])
def test_a_warning_against_the_thing_is_low_confidence(check, body: str) -> None:
    d = check(make_message(body))
    assert not raised(d), d.findings
    assert d.findings and all(f.confidence == "low" and f.cue.startswith("negation") for f in d.findings)


@pytest.mark.parametrize("body", [
    "Please pay into my personal account this time.",
    "这次请把货款付到个人账户，谢谢。",
    "Don't hesitate to write to my private WhatsApp +86 138 1234 5678.",
])
def test_the_thing_itself_stays_high(check, body: str) -> None:
    d = check(make_message(body))
    assert raised(d) and raised(d)[0].confidence == "high", d.findings


def test_secrecy_is_not_undone_by_its_own_negation(check) -> None:
    d = check(make_message("Please keep this between us, my boss must not see this mail."))
    secrecy = [f for f in raised(d) if f.rule == "SECRECY"]
    assert d.action == "quarantine" and secrecy and secrecy[0].confidence == "high", d.findings


# ------------------------------------------------ whose thing it is
@pytest.mark.parametrize("body", ["Congratulations on your new company and our new company brochure!",
                                  "恭喜贵司新公司开业！", "I attach our new company brochure."])
def test_the_recipients_or_the_companys_own_new_company_is_low(check, body: str) -> None:
    d = check(make_message(body))
    assert not raised(d) and all(f.confidence == "low" for f in d.findings), d.findings


def test_my_new_company_is_high(check) -> None:
    assert check(make_message("I moved to my new company, order there.")).action == "quarantine"


def test_contact_me_directly_beside_official_channels_is_low(check) -> None:
    d = check(make_message("Feel free to contact me directly: tel +86 755 8888 6666, sales@brightlight.cn."))
    assert not raised(d) and d.findings[0].cue == "official channel nearby"
    assert check(make_message("Contact me directly from now on, not via the office.")).action == "quarantine"


def test_a_forwarders_contacts_are_a_third_partys(check) -> None:
    d = check(make_message("Our forwarder will call you: Ms Chen, tel +86 21 6123 4567."))
    assert not raised(d) and d.findings[0].cue == "third party: forwarder"
    d = check(make_message("Ms Chen of Sino Trans will call, +86 21 6123 4567, chen@sinotrans-log.com."))
    assert not raised(d) and d.findings[0].cue == "third party: sinotrans-log.com"


def test_a_personal_contact_beside_a_forwarder_is_still_raised(check) -> None:
    d = check(make_message("The forwarder is slow, call my personal mobile +86 138 1234 5678 instead."))
    assert raised(d), d.findings


# ------------------------------------------------ the signature block
def test_a_contact_marked_personal_in_the_signature_is_as_severe_as_in_the_body(check) -> None:
    d = check(make_message("Thanks.\n-- \nTom, Bright Lighting\n私人微信：tom_8888\n"))
    assert d.action == "block" and d.findings[0].where == "signature" and d.findings[0].cue.startswith("personal")


# ------------------------------------------------ wording without the stock phrase, every language
@pytest.mark.parametrize(("body", "rule"), [
    ("Si hace el pedido, le devuelvo un 3% del valor de la factura a usted personalmente.", "PRIVATE_PAYMENT"),
    ("Die Provision für Sie läuft wie immer in bar, außerhalb der Rechnung.", "PRIVATE_PAYMENT"),
    ("Je vous reverse une commission de 2 % en liquide, hors facture.", "PRIVATE_PAYMENT"),
    ("A sua comissão de 2% vai por fora, em dinheiro.", "PRIVATE_PAYMENT"),
    ("Ваш откат 3% передам наличными, как обычно.", "PRIVATE_PAYMENT"),
    ("田中様へのリベートは現金でお渡しします。", "PRIVATE_PAYMENT"),
    ("سأعطيك عمولة 2% نقداً خارج الفاتورة.", "PRIVATE_PAYMENT"),
    ("這次的佣金照舊私下給您現金。", "PRIVATE_PAYMENT"),
    ("Überweisen Sie die Anzahlung diesmal bitte auf mein eigenes Konto.", "PRIVATE_PAYMENT"),
    ("这次定金请直接打到我本人的卡上。", "PRIVATE_PAYMENT"),
    ("El mes que viene monto mi propia empresa. Pase sus pedidos allí.", "DIVERT_BUSINESS"),
    ("下个月我自己出来单干了，以后的订单转到我那边做。", "DIVERT_BUSINESS"),
    ("Пусть это останется между нами.", "SECRECY"),
    ("Que cela reste entre nous, s'il vous plaît.", "SECRECY"),
])
def test_intents_in_every_language(check, body: str, rule: str) -> None:
    d = check(make_message(body))
    found = {f.rule for f in raised(d)}
    assert rule in found, d.findings
    assert all(f.category == "sensitive_word" for f in raised(d) if f.rule == rule)


def test_intent_terms_far_apart_do_not_hit(check) -> None:
    body = "We pay commission to agents. " + "The panels are 600x600 and ship in cartons. " * 6 \
        + "Samples are free for you personally to test."
    assert not raised(check(make_message(body)))


def test_check_json_carries_confidence_and_cue(policy) -> None:
    d = evaluate(policy, make_message("We never ask you to pay into a personal account.").as_bytes(), CTX)
    js = d.to_json()["findings"][0]
    assert js["confidence"] == "low" and js["cue"] == "negation: never"


# ------------------------------------------------ site packs: intents and cues, validated
def _pack(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "site.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_site_pack_adds_an_intent_and_a_cue(tmp_path: Path) -> None:
    pack = _pack(tmp_path, '[[intent]]\nrule = "PRIVATE_PAYMENT"\nwindow = 40\n'
                           'groups = [["red envelope"], ["for you"]]\n\n[cues]\nnegation = ["under no circumstances"]\n')
    policy = load_policy(COMPANY, RulesSettings(packs=(pack,)))
    d = evaluate(policy, make_message("A red envelope for you at New Year.").as_bytes(), CTX)
    assert "PRIVATE_PAYMENT" in {f.rule for f in raised(d)}
    d = evaluate(policy, make_message("Under no circumstances pay to my personal account.").as_bytes(), CTX)
    assert not raised(d)


@pytest.mark.parametrize(("text", "where", "problem"), [
    ('# site\n\n[[intent]]\nrule = "NO_SUCH_RULE"\ngroups = [["x y"]]\n', "line 3: intent[0].rule", "not a rule"),
    ('[[intent]]\nrule = "SECRECY"\ngroups = [["ok"]]\n[[intent]]\nrule = "SECRECY"\ngroups = "x"\n',
     "line 4: intent[1].groups", "list"),
    ('[[intent]]\nrule = "SECRECY"\nwindow = -1\ngroups = [["between us"]]\n', "line 1: intent[0].window", "integer"),
    ('\n[cues]\nnegation = [""]\n', "line 2: cues.negation[0]", "empty"),
    ('[cues]\nsarcasm = ["yeah right"]\n', "line 1: cues.sarcasm", "unknown cue kind"),
    ('[[intent]]\nrule = "SECRECY"\ncolour = "red"\ngroups = [["between us"]]\n', "line 1: intent[0].colour",
     "unknown key"),
])
def test_bad_site_lexicon_names_file_line_and_key(tmp_path: Path, text: str, where: str, problem: str) -> None:
    pack = _pack(tmp_path, text)
    with pytest.raises(RulesConfigError) as e:
        load_policy(COMPANY, RulesSettings(packs=(pack,)))
    assert e.value.file == str(pack) and e.value.where == where and problem in e.value.problem, str(e.value)


# ------------------------------------------------ the thread as evidence of a customer
_THREAD = ("Dear Mike, price confirmed, I copy mike.buyer@gmail.com.\n\n"
           "On Mon, Mar 4, 2024 at 10:01 AM Mike <mike.buyer@gmail.com> wrote:\n> Please quote 500 pcs.\n")


def test_an_unknown_freemail_recipient_answering_his_own_quoted_mail_is_low(policy) -> None:
    from mailwarden.rules import CheckContext, RecipientInfo

    ctx = CheckContext(operator="tom", recipients=(RecipientInfo("mike.buyer@gmail.com", None, None, None),))
    d = evaluate(policy, make_message(_THREAD, to="mike.buyer@gmail.com").as_bytes(), ctx)
    assert not raised(d) and {f.cue for f in d.findings} == {"thread: quoted mail from this address"}
    other = _THREAD.replace("Mike <mike.buyer@gmail.com>", "John <buyer@acme-imports.com>")
    d = evaluate(policy, make_message(other, to="mike.buyer@gmail.com").as_bytes(), ctx)
    assert "RECIPIENT_FORWARD_PRIVATE" in {f.rule for f in raised(d)} and not any(f.cue for f in raised(d))


# ------------------------------------------------ what low confidence does, per site
def test_site_pack_may_flag_low_confidence_findings(tmp_path: Path) -> None:
    pack = _pack(tmp_path, '[confidence]\nlow = { sensitive_word = "flag" }\n')
    policy = load_policy(COMPANY, RulesSettings(packs=(pack,)))
    body = "Please note: we never ask customers to pay into a personal account."
    d = evaluate(policy, make_message(body).as_bytes(), CTX)
    assert d.action == "flag" and d.findings[0].confidence == "low"
    d = evaluate(policy, make_message("Our forwarder: tel +86 21 6123 4567.").as_bytes(), CTX)
    assert d.action == "tag"  # private_contact keeps the shipped "tag"


@pytest.mark.parametrize(("text", "where"), [
    ('\n[confidence]\nlow = "shout"\n', "line 2: confidence.low.*"),
    ('[confidence]\nlow = { gossip = "tag" }\n', "line 1: confidence.low.gossip"),
    ('[confidence]\nhigh = "tag"\n', "line 1: confidence.high"),
])
def test_bad_confidence_table_names_the_line(tmp_path: Path, text: str, where: str) -> None:
    pack = _pack(tmp_path, text)
    with pytest.raises(RulesConfigError) as e:
        load_policy(COMPANY, RulesSettings(packs=(pack,)))
    assert e.value.where == where, str(e.value)
