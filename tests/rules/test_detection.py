"""The detection "Must hold" bullets of issue 3 and the detectors' basic behaviour."""

from __future__ import annotations

import pytest

from mailwarden.rules import CheckContext, RecipientInfo
from mailwarden.rules.findings import action_rank
from tests.rules.rulesutil import ACME, CTX, make_message

QUOTE_HEAD = "\n\nOn Mon, Mar 4, 2024 at 10:01 AM John <buyer@acme-imports.com> wrote:\n"


def raised(decision, minimum: str = "warn") -> list:
    return [f for f in decision.findings if action_rank(f.action) >= action_rank(minimum)]


# ------------------------------------------------ company signature, official phones/handles
SIGNATURE_TEXT = (
    "Please see the price list attached.\n\n-- \nTom Li | Bright Lighting Co., Ltd.\n"
    "Tel: +86 755 8888 6666 | Hotline 400-820-8820\nWeChat: BrightLightingCN\n"
    "WhatsApp: +86 755 8888 6666\nsales@brightlight.cn | www.brightlight.cn\n"
)


def test_company_signature_never_triggers(check) -> None:
    d = check(make_message(SIGNATURE_TEXT))
    assert d.action == "allow", d.findings


def test_company_signature_html_never_triggers(check) -> None:
    html = (
        "<div>Please see the price list.</div><div class=\"mailwarden-signature\">"
        "<p>Tom Li, Bright Lighting Co., Ltd.</p><p>Tel: +86 755 8888 6666</p>"
        "<p>微信: BrightLightingCN</p><p><a href=\"mailto:sales@brightlight.cn\">sales@brightlight.cn</a></p></div>"
    )
    assert check(make_message(html=html)).action == "allow"


def test_official_phones_and_handles_in_new_text_never_trigger(check) -> None:
    body = ("Call our office on 0755-8888 6666 or +86 755 8888 6666, hotline 400 820 8820.\n"
            "Add our WeChat: BrightLightingCN, 微信：brightlightingcn, WhatsApp +86 755 8888 6666.\n")
    assert check(make_message(body)).findings == []


def test_private_contact_in_signature_marker_without_company_is_not_hidden(check) -> None:
    body = "Thanks.\n-- \nTom\nmy wechat: tom_8888\n"
    d = check(make_message(body))
    assert d.action == "block"
    assert d.deciding.where == "body"


def test_private_contact_inside_real_company_signature_is_capped_at_tag(check) -> None:
    body = "Thanks.\n-- \nTom, Bright Lighting\nWeChat: tom_8888\n"
    d = check(make_message(body))
    assert d.action == "tag" and d.findings[0].where == "signature"


# ------------------------------------------------ customer's own data in quoted history
def test_customer_phone_and_address_in_quoted_history_never_trigger(check) -> None:
    body = ("Dear John, price confirmed." + QUOTE_HEAD
            + "> Please call me on +1 650 253 0000 or mail buyer@acme-imports.com\n"
            "> my colleague john.acme@gmail.com\n> WhatsApp: +1 650-253-0000\n")
    assert check(make_message(body)).findings == []


def test_customer_phone_in_outlook_html_history_never_triggers(check) -> None:
    html = ("<div>Price confirmed.</div><div id=\"divRplyFwdMsg\"><b>From:</b> John"
            " &lt;buyer@acme-imports.com&gt;<br><b>Sent:</b> Monday</div>"
            "<div>Mobile: +1 (650) 253-0000</div>")
    assert check(make_message(html=html)).findings == []


def test_other_contact_in_quoted_history_is_capped_at_tag(check) -> None:
    body = "Price confirmed." + QUOTE_HEAD + "> my personal wechat: jimmy_2024\n"
    d = check(make_message(body))
    assert d.action == "tag"
    assert all(f.where == "quoted" for f in d.findings)


def test_fake_attribution_does_not_hide_new_text_after_prefix_quote(check) -> None:
    body = "On Mon, John wrote:\n> price?\n\nSure. Add my wechat: tom_8888\n"
    assert check(make_message(body)).action == "block"


@pytest.mark.parametrize("line", ["他在信中写道：", "我朋友写道：", "客户寫道:"])
def test_chinese_wrote_line_in_new_text_does_not_hide_what_follows(check, line: str) -> None:
    body = f"您好，\n{line}\n“价格太高了”。\n有事加我微信：tom_li88\n"
    d = check(make_message(body))
    assert d.action == "block" and d.deciding.kind == "wechat" and d.deciding.where == "body"


def test_real_chinese_attribution_still_caps_quoted_contacts(check) -> None:
    body = "好的，明天发货。\n\nJohn <buyer@acme-imports.com> 于2024年3月4日周一 10:01写道：\n我的微信：jimmy_2024\n"
    d = check(make_message(body))
    assert d.action == "tag" and all(f.where == "quoted" for f in d.findings)


# ------------------------------------------------ obfuscation does not hide a contact
@pytest.mark.parametrize(
    "body,kind",
    [
        ("my mobile 138\u200b0013\u200b8000", "phone"),
        ("my mobile １３８００１３８０００", "phone"),
        ("手机：一三八 零零一三 八零零零", "phone"),
        ("call me 138-0013-8000", "phone"),
        ("call me 1 3 8 0 0 1 3 8 0 0 0", "phone"),
        ("call me 138.0013.8000", "phone"),
        ("write to tom at gmail dot com", "email"),
        ("write to tom[at]qq.com", "email"),
        ("write to tom(at)163(dot)com", "email"),
        ("write to tom＠ｇｍａｉｌ．ｃｏｍ", "email"),
        ("write to to\u200bm@gm\u200bail.com", "email"),
        ("write to tom#qq.com", "email"),
        ("ｗｅｃｈａｔ：ｔｏｍ＿８８８８", "wechat"),
        ("微\u200b信: tom_8888", "wechat"),
        ("加我V信 tom8888", "wechat"),
        ("vx：tom_li_88", "wechat"),
        ("WhatsApp: +86 139 0013 9000", "whatsapp"),
        ("https://wa.me/8613900139000", "whatsapp"),
        ("QQ：12345678", "qq"),
        ("扣扣 87654321", "qq"),
        ("telegram: @tomli88", "telegram"),
        ("t.me/tomli_88", "telegram"),
        ("skype: live:.cid.123abc", "skype"),
        ("Line ID: tom.li88", "line"),
        ("viber: +86 139 0013 9000", "viber"),
    ],
)
def test_obfuscated_contacts_are_found(check, body: str, kind: str) -> None:
    d = check(make_message(f"Hello John,\n{body}\nThanks"))
    kinds = {f.kind for f in raised(d)}
    assert kind in kinds, (body, d.findings)


def test_match_reports_the_original_text(check) -> None:
    d = check(make_message("please write to tom at gmail dot com soon"))
    assert d.deciding.match == "tom at gmail dot com"
    assert d.deciding.rule == "PRIVATE_EMAIL_FREEMAIL"


# ------------------------------------------------ things that are not phones
@pytest.mark.parametrize(
    "text",
    [
        "Order No. 4500123456 confirmed",
        "PO#13800138000 shipped",
        "订单号：13800138000",
        "Container MSCU1234567 and TGHU 8765432",
        "HS code 9405.40.90 and 8541.40.2000",
        "HS: 94054090",
        "Unit price USD 1,380.50, total US$ 13800138.00",
        "Total: ¥13800138000",
        "Amount 13,800,138,000 RMB",
        "ETD 2024-05-17, ETA 17/06/2024, 2024.05.30, 20240517",
        "Model LED-PL-600600-40W, item BL-13800138000",
        "Tracking 1Z999AA10123456784, SF1234567890123, EA123456789CN, DHL 1234567890",
        "Qty 13800138000pcs",
        "invoice no: 13800138000",
        "batch 2024051700123",
    ],
)
def test_numbers_that_are_not_phones(check, text: str) -> None:
    d = check(make_message(f"Dear John,\n{text}\nRegards"))
    assert not [f for f in d.findings if f.kind == "phone"], d.findings


def test_phone_hint_raises_confidence(check) -> None:
    plain = check(make_message("see 13800138000 ok"))
    hinted = check(make_message("my mobile 13800138000"))
    assert {f.rule for f in plain.findings} == {"PRIVATE_PHONE"}
    assert {f.rule for f in hinted.findings} == {"PRIVATE_PHONE_HINTED"}
    assert action_rank(hinted.action) > action_rank(plain.action)


def test_international_phone_found(check) -> None:
    d = check(make_message("my cell: +44 20 7946 0958"))
    assert [f.kind for f in d.findings] == ["phone"]


# ------------------------------------------------ words
@pytest.mark.parametrize(
    "text,rule",
    [
        ("我已经去了新公司，以后联系我", "DIVERT_BUSINESS"),
        ("我們可以私下合作", "DIVERT_BUSINESS"),  # traditional
        ("请转账到个人账户", "PRIVATE_PAYMENT"),
        ("請轉賬到個人賬戶", "PRIVATE_PAYMENT"),
        ("新 公 司 价格更低", "DIVERT_BUSINESS"),
        ("Please contact me privately", "DIVERT_BUSINESS"),
        ("This is MY NEW\nCOMPANY", "DIVERT_BUSINESS"),
        ("we offer a kickback", "PRIVATE_PAYMENT"),
        ("回扣", "PRIVATE_PAYMENT"),
    ],
)
def test_sensitive_words(check, text: str, rule: str) -> None:
    d = check(make_message(f"Hi,\n{text}\n"))
    assert rule in {f.rule for f in d.findings}


def test_latin_words_need_boundaries(check) -> None:
    d = check(make_message("the kickbacks in kickboxing: mykickback and personal accounts"))
    assert not [f for f in d.findings if f.match.lower() == "kickback"]


def test_words_in_subject_and_attachment(check) -> None:
    msg = make_message("see attached", subject="我的新公司报价")
    msg.add_attachment("请转账到个人账户".encode("utf-8"), maintype="text", subtype="plain",
                       filename="note.txt")
    d = check(msg)
    wheres = {(f.rule, f.where) for f in d.findings}
    assert ("DIVERT_BUSINESS", "subject") in wheres
    assert ("PRIVATE_PAYMENT", "attachment:note.txt") in wheres


# ------------------------------------------------ customer lists
def test_many_external_addresses_is_a_list_export(check) -> None:
    rows = "\n".join(f"Client {i}: buyer{i}@client{i}.com" for i in range(25))
    d = check(make_message("list:\n" + rows))
    assert "CUSTOMER_LIST_EXPORT" in {f.rule for f in d.findings}
    assert d.action == "quarantine"


def test_few_addresses_are_not_a_list(check) -> None:
    rows = "\n".join(f"buyer{i}@client{i}.com" for i in range(5))
    assert "CUSTOMER_LIST_EXPORT" not in {f.rule for f in check(make_message(rows)).findings}


def test_contact_spreadsheet_csv(check) -> None:
    csv = "Company,Contact,Email,Phone\n" + "\n".join(
        f"Firm {i},Person {i},p{i}@firm{i}.de,+49 30 {i:07d}" for i in range(12))
    msg = make_message("for your reference")
    msg.add_attachment(csv.encode(), maintype="text", subtype="csv", filename="clients.csv")
    assert "CUSTOMER_LIST_SPREADSHEET" in {f.rule for f in check(msg).findings}


# ------------------------------------------------ recipients
def test_freemail_recipient_and_forward(check) -> None:
    stranger = RecipientInfo("tom.private@gmail.com", None, None, None)
    ctx = CheckContext(operator="tom", recipients=(stranger,))
    assert check(make_message("hello"), ctx).deciding.rule == "RECIPIENT_FREEMAIL"
    fwd = make_message("FYI" + QUOTE_HEAD + "> order 500 pcs\n")
    assert check(fwd, ctx).deciding.rule == "RECIPIENT_FORWARD_PRIVATE"


def test_customer_contact_on_freemail_is_fine(check) -> None:
    contact = RecipientInfo("john.acme@gmail.com", 7, "ACME Imports", "tom",
                            ("acme-imports.com",), ("john.acme@gmail.com",))
    assert check(make_message("hello"), CheckContext(operator="tom", recipients=(contact,))).findings == []


def test_cross_owner(check) -> None:
    other = RecipientInfo("buyer@globex.com", 9, "Globex", "mary", ("globex.com",))
    d = check(make_message("hello"), CheckContext(operator="tom", recipients=(other,)))
    assert d.deciding.rule == "RECIPIENT_CROSS_OWNER" and d.action == "flag"
    sup = CheckContext(operator="lee", role="supervisor", recipients=(other,))
    assert check(make_message("hello"), sup).action == "allow"


def test_competitor_recipient(policy) -> None:
    from mailwarden.rules import RulesSettings, evaluate, load_policy
    from tests.rules.rulesutil import COMPANY

    p = load_policy(COMPANY, RulesSettings(competitor_domains=("rival-led.com",)))
    ctx = CheckContext(operator="tom", recipients=(RecipientInfo("x@rival-led.com", None, None, None),))
    d = evaluate(p, make_message("hello").as_bytes(), ctx)
    assert d.action == "block" and d.deciding.kind == "competitor"


def test_recipients_from_headers_when_context_has_none(check) -> None:
    d = check(make_message("hello", to="someone@163.com"), CheckContext(operator="tom"))
    assert d.deciding.rule == "RECIPIENT_FREEMAIL"


def test_clean_message_is_allowed(check) -> None:
    d = check(make_message("Dear John,\nThe price for 500 pcs is USD 3.20/pc, delivery 30 days.\n"))
    assert d.action == "allow" and d.findings == [] and d.enforced_action == "allow"
    assert d.to_json() == {"action": "allow", "findings": []}
    assert CTX.recipients[0] is ACME
