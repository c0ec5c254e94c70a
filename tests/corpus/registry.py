"""The company and customers the corpus is written for, and the check context of a message.

The same company as the rules tests (:mod:`tests.rules.rulesutil`), with one customer per
corpus language; each customer has a free-mail contact of his own (a known customer's
Gmail is a customer, not a private address).
"""

from __future__ import annotations

from mailwarden.rules import CheckContext, CompanyProfile, RecipientInfo

COMPANY = CompanyProfile(
    name="Bright Lighting",
    domains=("brightlight.cn",),
    official_phones=("+86 755 8888 6666", "400-820-8820"),
    official_handles=("wechat:BrightLightingCN", "whatsapp:+86 755 8888 6666"),
)


def _customer(cid: int, name: str, address: str, freemail: str, phone: str) -> RecipientInfo:
    return RecipientInfo(address=address, customer_id=cid, customer_name=name, owner="tom",
                         domains=(address.split("@", 1)[1],), contacts=(address, freemail),
                         phones=(phone,))


# language → the customer the mail goes to
CUSTOMERS: dict[str, RecipientInfo] = {
    "en": _customer(7, "ACME Imports", "buyer@acme-imports.com", "john.acme@gmail.com", "+1 650 253 0000"),
    "es": _customer(8, "Iluminación Sol", "compras@iluminacion-sol.es", "ana.sol@hotmail.com", "+34 912 345 678"),
    "de": _customer(9, "Müller Leuchten", "einkauf@mueller-leuchten.de", "klaus.mueller@gmx.de",
                    "+49 89 1234 5678"),
    "fr": _customer(10, "Lumière Paris", "achats@lumiere-paris.fr", "claire.durand@orange.fr", "+33 1 42 68 53 00"),
    "pt": _customer(11, "Luz Brasil", "compras@luz-brasil.com.br", "paulo.souza@gmail.com", "+55 11 3456 7890"),
    "zh": _customer(12, "华信贸易", "purchase@huaxin-trading.cn", "wang.huaxin@qq.com", "+86 139 2233 4455"),
    "zh-Hant": _customer(13, "幸運照明", "purchase@lucky-light.com.tw", "chen.lucky@yahoo.com.tw",
                         "+886 912 345 678"),
    "ja": _customer(14, "光商事", "tanaka@hikari-shoji.co.jp", "tanaka.hikari@yahoo.co.jp", "+81 90 1234 5678"),
    "ru": _customer(15, "Свет-Торг", "zakaz@svet-torg.ru", "ivan.svet@mail.ru", "+7 495 123 45 67"),
    "ar": _customer(16, "Nur Lighting", "info@nur-lighting.ae", "ahmed.nur@gmail.com", "+971 4 123 4567"),
}
_BY_ADDRESS = {c.lower(): r for r in CUSTOMERS.values() for c in r.contacts}


def recipient(address: str) -> RecipientInfo:
    """The recipient as the gateway resolves it against the customer store."""
    known = _BY_ADDRESS.get(address.lower())
    if known is not None:
        return RecipientInfo(address=address, customer_id=known.customer_id, customer_name=known.customer_name,
                             owner=known.owner, domains=known.domains, contacts=known.contacts, phones=known.phones)
    return RecipientInfo(address=address, customer_id=None, customer_name=None, owner=None)


def context(recipients: list[str]) -> CheckContext:
    """The context of a corpus message sent by the salesperson ``tom`` to *recipients*."""
    return CheckContext(operator="tom", role="sales", team="export",
                        recipients=tuple(recipient(a) for a in recipients))
