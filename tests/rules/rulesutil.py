"""Shared helpers for the rules tests (imported by the tests and by conftest)."""

from __future__ import annotations

from email.message import EmailMessage

from mailwarden.rules import CheckContext, CompanyProfile, Decision, RecipientInfo

COMPANY = CompanyProfile(
    name="Bright Lighting",
    domains=("brightlight.cn",),
    official_phones=("+86 755 8888 6666", "400-820-8820"),
    official_handles=("wechat:BrightLightingCN", "whatsapp:+86 755 8888 6666"),
)
ACME = RecipientInfo(
    address="buyer@acme-imports.com",
    customer_id=7,
    customer_name="ACME Imports",
    owner="tom",
    domains=("acme-imports.com",),
    contacts=("buyer@acme-imports.com", "john.acme@gmail.com"),
    phones=("+1 650 253 0000",),
)
CTX = CheckContext(operator="tom", role="sales", team="export", recipients=(ACME,))



def make_message(
    body: str | None = None,
    *,
    html: str | None = None,
    subject: str = "Quotation",
    charset: str = "utf-8",
    to: str = "buyer@acme-imports.com",
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Tom <sales@brightlight.cn>"
    msg["To"] = to
    msg["Subject"] = subject
    if body is not None:
        msg.set_content(body, charset=charset)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    elif html is not None:
        msg.set_content(html, subtype="html", charset=charset)
    else:
        msg.set_content("")
    return msg


def rules_of(decision: Decision) -> set[str]:
    return {f.rule for f in decision.findings}


def kinds_of(decision: Decision, minimum: str = "allow") -> set[str]:
    from mailwarden.rules.findings import action_rank

    return {f.kind for f in decision.findings if action_rank(f.action) >= action_rank(minimum)}


def photos_message() -> bytes:
    """A message above ``STRIP_MEDIA_ABOVE`` that is nearly all one picture, with a private
    WeChat handle in its text."""
    from mailwarden.rules.mail.segments import STRIP_MEDIA_ABOVE

    m = EmailMessage()
    m["Subject"] = "photos"
    m.set_content("Photos attached. WeChat: zhang_private88\n")
    m.add_attachment(b"\xff\xd8" + bytes(range(256)) * (STRIP_MEDIA_ABOVE // 256 + 10), maintype="image",
                     subtype="jpeg", filename="p.jpg")
    return m.as_bytes()
