"""Helpers for the signature tests: a company, users, message builders and readers."""

from __future__ import annotations

import base64
import email
import re
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from mailwarden.rules.mail.quotes import find_quote_start_html, find_quote_start_text
from mailwarden.signatures import SignatureCompany, SignatureSettings, SignatureUser, load_signatures
from mailwarden.signatures.htmlsig import find_signature_elements, html_to_text
from mailwarden.signatures.textsig import extract_text_signature

COMPANY = SignatureCompany(
    name="ACME Trading Co., Ltd.",
    domains=("acme.example",),
    official_phones=("+86 571 8888 0000",),
    official_handles=("WeChat: ACME_Official",),
    address="No. 1 Wensan Road, Hangzhou, China",
    website="www.acme.example",
)
ZHANG = SignatureUser("zhangwei", "张伟", "Export Sales Manager", "+86 138 0000 1111", "zhangwei@acme.example",
                      team="export", role="sales")
MUELLER = SignatureUser("mueller", "Jürgen Müller", "Vertrieb", None, "mueller@acme.example", role="senior")
JOSE = SignatureUser("jose", "José Núñez", None, None, None)
LI = SignatureUser("lina", "李娜", "Sales", None, "lina@acme.example")

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def sigs(**settings: object):
    company = settings.pop("company", COMPANY)
    return load_signatures(SignatureSettings(**settings), company)  # type: ignore[arg-type]


def crlf(text: str) -> bytes:
    """A message written with \\n in the test, as CRLF bytes like SMTP DATA delivers."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=default_policy)  # type: ignore[return-value]


def parts_of(raw: bytes, ctype: str) -> list[EmailMessage]:
    return [p for p in parse(raw).walk() if p.get_content_type() == ctype]


def text_of(part: EmailMessage) -> str:
    """Decoded content with \n line endings (the email package keeps CRLF from QP bodies)."""
    return part.get_content().replace("\r\n", "\n")


def content(raw: bytes, ctype: str, index: int = 0) -> str:
    return text_of(parts_of(raw, ctype)[index])


def structure(raw: bytes) -> list[str]:
    return [p.get_content_type() for p in parse(raw).walk()]


def norm(text: str) -> str:
    """Lines with collapsed whitespace, empty lines dropped: for comparing text and HTML."""
    lines = (re.sub(r"\s+", " ", line).strip() for line in text.replace("\xa0", " ").split("\n"))
    return "\n".join(line for line in lines if line)


def html_signatures(html: str) -> list[tuple[int, str]]:
    """(offset, visible text) of every company-signature element in the document."""
    return [(s, norm(html_to_text(html[s:e]))) for s, e in find_signature_elements(html)]


def html_quote_start(html: str) -> int:
    q = find_quote_start_html(html)
    return len(html) if q is None else q


def text_signature(body: str) -> str | None:
    sig = extract_text_signature(body)
    return None if sig is None else norm(sig)


def text_quote_start(body: str) -> int:
    q = find_quote_start_text(body)
    return len(body) if q is None else q


def max_line_length(raw: bytes) -> int:
    return max(len(line.rstrip(b"\r")) for line in raw.split(b"\n"))


def write_templates(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
