"""The labelled corpus (tests/corpus): what the script writes, what it covers."""

from __future__ import annotations

import json
from collections import Counter
from email import message_from_bytes

from tests.corpus import generate

LANGUAGES = {"en", "zh", "zh-Hant", "es", "de", "fr", "ru", "ja", "pt", "ar"}
CHARSETS = {"utf-8", "gbk", "gb18030", "big5", "utf-7", "iso-2022-jp", "koi8-r", "hz-gb-2312",
            "windows-1250", "windows-1251", "windows-1252", "windows-1256"}


def _labels() -> list[dict]:
    return [json.loads(line) for line in (generate.HERE / "labels.jsonl").read_text("utf-8").splitlines()]


def test_committed_corpus_is_what_the_script_writes() -> None:
    files = generate.render()
    on_disk = {f"mail/{p.name}" for p in generate.MAIL_DIR.glob("*.eml")}
    assert on_disk == {k for k in files if k.startswith("mail/")}, "run python -m tests.corpus.generate"
    for rel, data in files.items():
        assert (generate.HERE / rel).read_bytes() == data, f"{rel} differs: run python -m tests.corpus.generate"


def test_corpus_covers_the_languages_charsets_and_hard_clean_mail() -> None:
    labels = _labels()
    sets = Counter(lab["set"] for lab in labels)
    assert len(labels) >= 300
    assert sets["hard_clean"] >= len(labels) / 3
    assert {lab["lang"] for lab in labels} >= LANGUAGES
    assert {lab["charset"] for lab in labels} >= CHARSETS
    assert {lab["shape"] for lab in labels} == {"plain", "html", "attachment"}
    heldout = sum(lab["split"] == "heldout" for lab in labels)
    assert 0.2 * len(labels) < heldout < 0.4 * len(labels)
    for lab in labels:
        assert (lab["set"] == "risky") == (lab["expected_action"] != "allow") == bool(lab["categories"]), lab


def test_each_message_declares_the_charset_it_is_labelled_with() -> None:
    for lab in _labels():
        msg = message_from_bytes((generate.HERE / lab["file"]).read_bytes())
        declared = {p.get_content_charset() for p in msg.walk() if p.get_content_maintype() == "text"
                    and not p.get_filename()}
        assert (lab["declared"] or None) in declared, (lab["id"], declared)


def test_detection_on_the_corpus_does_not_fall_back() -> None:
    """A floor under the numbers bench_detection.py prints (issue 19's targets on the tune
    split; the held-out split, with its fresh cases, is reported, not asserted)."""
    from mailwarden.rules import RulesSettings, load_policy
    from tests.bench.bench_detection import load, run, summary
    from tests.corpus.registry import COMPANY

    results, _, _ = run(load("tune"), load_policy(COMPANY, RulesSettings()))
    s = summary(results)
    assert s["recall"] >= 0.97 and s["fp"] <= 0.03 and s["fp_hard"] <= 0.10, s
    for lang in LANGUAGES:
        part = summary([r for r in results if r[0]["lang"] == lang])
        assert part["recall"] >= 0.9, (lang, part)
    undecodable = [r[0]["id"] for r in results if any(f.kind == "undecodable" for f in r[2].findings)]
    assert undecodable == []
