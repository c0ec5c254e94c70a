"""Contacts in disguise and in hidden places (issue 19, "Misses")."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest

from mailwarden.rules.deobfuscate import reveal
from mailwarden.rules.findings import action_rank
from tests.rules.rulesutil import make_message


def _raised_kinds(d) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.kind for f in d.findings if action_rank(f.action) >= action_rank("warn")}


@pytest.mark.parametrize(("body", "kind"), [
    ("Add my w.e.c.h.a.t: tom_8888 for quick answers.", "wechat"),
    ("My W h a t s A p p is +86 138 1234 5678.", "whatsapp"),
    ("加我微 信：zhang8888，方便沟通。", "wechat"),
    ("加我薇❤：zhang8888 详聊。", "wechat"),
    ("有事加我V❤ zhang_8888。", "wechat"),
    ("Пишите в т е л е г р а м @tomli_sales.", "telegram"),
    ("Add my w\u0435ch\u0430t: tom_8888.", "wechat"),
    ("Call my mobile: one three eight, one two three four, five six seven eight.", "phone"),
    ("手机：壹叁捌 壹贰叁肆 伍陆柒捌，打我电话。", "phone"),
    ("私の携帯：〇九〇ー八七六五ー四三二一 までお電話ください。", "phone"),
    ("WhatsApp me: 1\ufe0f\u20e33\ufe0f\u20e38\ufe0f\u20e3 1234 5678 (+86).", "phone"),
    ("My mobile +86 138\U0001f31f1234\U0001f31f5678, text me.", "phone"),
    (f"Decode this (base64): {base64.b64encode(b'my wechat: tom_8888').decode()}", "wechat"),
])
def test_disguised_contacts_are_found(check, body: str, kind: str) -> None:
    d = check(make_message(body))
    assert kind in _raised_kinds(d), d.findings
    assert all(f.cue == "disguised" for f in d.findings if f.kind == kind), d.findings


@pytest.mark.parametrize("body", [
    "Please see the attached price list for the A B C series.",  # letters, but no contact
    "The Q3 figures: one two three items shipped.",
    "我们的产品一二三号线都在生产。",
    "Der Preis für Modell XK-200 beträgt 12,50 €.",
])
def test_ordinary_text_stays_clean(check, body: str) -> None:
    assert check(make_message(body)).action == "allow"


def test_reveal_leaves_plain_text_alone() -> None:
    assert reveal("Thank you for the order, delivery in 25 days.") is None
    assert reveal("附件是报价单，请查收。") is None
    assert reveal("w.e.c.h.a.t") == "wechat"


@pytest.mark.parametrize(("html", "kind"), [
    ('<p>Scan me: <img src="cid:qr" alt="my WeChat: tom_8888"></p>', "wechat"),
    ("<p>Hover: <a href='#' title='WhatsApp +86 138 1234 5678'>here</a></p>", "whatsapp"),
    ('<p><a href="weixin://dl/chat?zhang_8888">点这里加我微信</a></p>', "wechat"),
])
def test_contacts_in_alt_title_and_link_targets_are_found(check, html: str, kind: str) -> None:
    assert kind in _raised_kinds(check(make_message(html=html)))


@pytest.mark.parametrize("html", [
    '<p><a href="weixin://dl/chat?BrightLightingCN">WeChat</a> <img alt="WeChat BrightLightingCN"></p>',
    '<p>Our WeChat: <img src="cid:qr" alt="WeChat BrightLightingCN"></p>',
])
def test_official_wechat_link_and_alt_text_stay_official(check, html: str) -> None:
    assert check(make_message(html=html)).action == "allow"


@pytest.mark.parametrize(("body", "kind"), [
    ("以後有事直接加我自己的LINE ming_li88，回覆比較快。", "line"),
    ("今後は私個人のライン liming_jp にご連絡ください。", "line"),
    ("Со мной быстрее в моём личном Телеграме @tomli_sales.", "telegram"),
    ("Пишите в ватсап +7 916 123 4567.", "whatsapp"),
])
def test_messenger_names_in_other_scripts_and_bare_handles(check, body: str, kind: str) -> None:
    assert kind in _raised_kinds(check(make_message(body)))


@pytest.mark.parametrize("body", ["柜号 TGHU8765432，提单号 COSU6231234560。", "The LINE-IN port and line item 4.",
                                  "Please check line 12 of the invoice."])
def test_codes_and_line_words_are_not_handles(check, body: str) -> None:
    assert check(make_message(body)).action == "allow"


def test_qr_code_announced_as_personal_wechat(check) -> None:
    msg = make_message("Scan the QR code attached to add my personal WeChat.")
    msg.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(32), maintype="image", subtype="png", filename="qr.png")
    assert "wechat" in _raised_kinds(check(msg))
    official = make_message("欢迎扫描附件中的公司官方微信二维码关注我们。", charset="gbk")
    assert check(official).action == "allow"


def test_reply_to_a_private_address_is_found(check) -> None:
    msg = EmailMessage()
    msg["From"] = "Tom <sales@brightlight.cn>"
    msg["To"] = "buyer@acme-imports.com"
    msg["Reply-To"] = "tom.li.private@gmail.com"
    msg["Subject"] = "Quote"
    msg.set_content("Please reply to this mail.")
    assert "email" in _raised_kinds(check(msg))
