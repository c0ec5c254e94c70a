"""Which messages go to a scan worker process, and the evaluation that refuses to open a reader."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from mailwarden.gateway.submission.scanpool import INLINE_MAX, ScanSettings, needs_worker
from mailwarden.rules import RulesSettings, evaluate, load_policy
from mailwarden.rules.mail import Mail
from mailwarden.rules.mail.attachments import ReadersNeeded
from mailwarden.testing import bombs

from tests.rules.rulesutil import COMPANY, CTX


def _text(body: str = "Quote below.\n", *, html: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "tom@brightlight.cn", "buyer@acme-imports.com", "q"
    msg.set_content(body)
    if html:
        msg.add_alternative(f"<p>{body}</p>", subtype="html")
    return msg


def test_text_and_pictures_stay_on_the_thread() -> None:
    assert not needs_worker(Mail(_text().as_bytes()))
    assert not needs_worker(Mail(_text(html=True).as_bytes()))
    msg = _text()
    msg.add_attachment(b"\x89PNG" + b"\0" * (INLINE_MAX + 10), maintype="image", subtype="png", filename="p.png")
    assert not needs_worker(Mail(msg.as_bytes()))


@pytest.mark.parametrize("name", ["q.xlsx", "a.txt", "d.pdf"])
def test_any_attachment_goes_to_a_worker(name: str) -> None:
    msg = _text()
    msg.add_attachment(b"data", maintype="application", subtype="octet-stream", filename=name)
    assert needs_worker(Mail(msg.as_bytes()))


def test_much_text_or_an_unreadable_structure_goes_to_a_worker() -> None:
    assert needs_worker(Mail(_text("x" * (INLINE_MAX + 10) + "\n").as_bytes()))
    forwarded = b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhello\r\n"
    assert needs_worker(Mail(forwarded))


def test_without_readers_an_attachment_is_refused_not_read() -> None:
    policy = load_policy(COMPANY, RulesSettings())
    raw = bombs.message_with(bombs.xlsx_huge_dimension(), "sheet.xlsx", bombs.XLSX)
    with pytest.raises(ReadersNeeded):
        evaluate(policy, raw, CTX, readers=False)
    assert evaluate(policy, raw, CTX).action == "quarantine"
    assert evaluate(policy, _text().as_bytes(), CTX, readers=False).action == "allow"


def test_scan_keys_are_read_and_checked(tmp_path) -> None:
    from mailwarden.gateway.config import ConfigError, load_config
    from mailwarden.gateway.engines import scan_settings

    p = tmp_path / "mailwarden.toml"
    p.write_text("[rules]\nscan_workers = 3\nscan_memory_mb = 512\n")
    assert scan_settings(load_config(p, {"rules"})) == ScanSettings(3, 512)
    p.write_text("[rules]\nscan_workers = 0\n")
    with pytest.raises(ConfigError, match=r"\[rules\] scan_workers: must be between 1 and 64"):
        scan_settings(load_config(p, {"rules"}))
    p.write_text("[rules]\nscan_memory_mb = 10\n")
    with pytest.raises(ConfigError, match=r"\[rules\] scan_memory_mb: must be at least 64"):
        scan_settings(load_config(p, {"rules"}))
