"""The attachment readers stop at their caps whatever a file declares, a limit is named in its
finding, and the budget counts the evaluation's CPU time."""

from __future__ import annotations

import time

import pytest
from mailwarden.rules import RulesSettings, evaluate, load_policy
from mailwarden.rules.budget import Deadline, EvaluationTimeout
from mailwarden.rules.mail import attachments as att
from mailwarden.rules.mail.charset import decode_bytes
from mailwarden.testing import bombs

from tests.rules.rulesutil import COMPANY, CTX


def _limit(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(att.Uninspectable) as exc:
        call()
    assert exc.value.kind == att.LIMIT
    return exc.value.detail


def test_a_sheet_declaring_a_million_rows_stops_at_the_row_cap() -> None:
    assert "limit rows" in _limit(lambda: att.extract("s.xlsx", bombs.XLSX, bombs.xlsx_huge_dimension()))


def test_empty_rows_count(monkeypatch) -> None:
    monkeypatch.setattr(att, "MAX_ROWS", 1000)
    assert "limit rows" in _limit(lambda: att.extract("s.xlsx", bombs.XLSX, bombs.xlsx_empty_rows(1001)))
    att.extract("s.xlsx", bombs.XLSX, bombs.xlsx_empty_rows(999))


def test_docx_is_streamed_with_caps_on_paragraphs_and_characters(monkeypatch) -> None:
    doc = bombs.docx_paragraphs(3, "WeChat: zhang_private88")
    assert att.extract("d.docx", bombs.DOCX, doc)[0].text.count("zhang_private88") == 3
    monkeypatch.setattr(att, "MAX_PARAGRAPHS", 100)
    assert "limit paragraphs" in _limit(lambda: att.extract("d.docx", bombs.DOCX, bombs.docx_paragraphs(101)))
    monkeypatch.setattr(att, "MAX_TEXT", 1000)
    assert "limit characters" in _limit(lambda: att.extract("d.docx", bombs.DOCX, bombs.docx_paragraphs(50, "x" * 30)))


def test_pdf_text_is_read_page_by_page_with_a_character_cap(monkeypatch) -> None:
    pdf = bombs.pdf_pages(pages=3, lines=2)
    assert "LED panel" in att.extract("c.pdf", bombs.PDF, pdf)[0].text
    monkeypatch.setattr(att, "MAX_TEXT", 100)
    assert "limit characters" in _limit(lambda: att.extract("c.pdf", bombs.PDF, pdf))


def test_a_finding_names_the_limit() -> None:
    policy = load_policy(COMPANY, RulesSettings())
    raw = bombs.message_with(bombs.xlsx_huge_dimension(), "sheet.xlsx", bombs.XLSX)
    d = evaluate(policy, raw, CTX)
    assert d.action == "quarantine"
    assert d.findings[0].rule == "INSPECTION_LIMIT" and "limit rows" in d.findings[0].match


@pytest.mark.parametrize("text,label", [("微信 zhang_private88", "utf-7"), ("微信 zhang_private88", "hz-gb-2312"),
                                        ("WeChat：zhang_private88", "iso-2022-jp")])
def test_7bit_charsets_are_read_as_declared(text: str, label: str) -> None:
    data = text.encode(label)
    assert data.isascii()
    assert decode_bytes(data, label) == (text, True)


def test_an_unknown_label_is_read_every_way_and_invalid_7bit_is_not_ok() -> None:
    read, ok = decode_bytes("微信 zhang_private88".encode("utf-7"), "x-mystery")
    assert ok and "微信 zhang_private88" in read
    assert decode_bytes(b"Price +!!! here", "utf-7")[1] is False
    assert decode_bytes(b"plain words", "x-mystery") == ("plain words", True)


def test_the_budget_counts_cpu_time_not_waiting() -> None:
    deadline = Deadline(50)
    time.sleep(0.2)  # waiting (for a core, a lock, the disk) spends no CPU
    deadline.check()
    end = time.thread_time() + 0.1
    while time.thread_time() < end:
        pass
    with pytest.raises(EvaluationTimeout):
        deadline.check()
    assert deadline.describe().startswith("cpu ")


def test_wall_time_is_a_ceiling_far_above_the_budget() -> None:
    deadline = Deadline(50, wall_ms=100)
    time.sleep(0.15)
    with pytest.raises(EvaluationTimeout):
        deadline.check()
    assert deadline.describe().startswith("wall ")
