"""rules import-words: one format (term, or term,severity), every other one refused with its line
number, and --dry-run showing what would change."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def words(cli, tmp_path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "competitors.txt"):  # type: ignore[no-untyped-def]
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


def installed(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return (tmp_path / "data" / "rules" / "competitors.txt").read_text(encoding="utf-8")


def test_term_comma_severity_is_the_format(cli, words, tmp_path):
    wl = words("# severity: low\nrival lamps gmbh\n新公司,high\nDear Sir, we moved,critical\n")
    r = cli("rules", "import-words", str(wl))
    assert r.exit_code == 0, r.output
    rows = {row["id"]: row for row in map(json.loads, cli("rules", "list", "--json").stdout.splitlines())}
    assert rows["WORDLIST_COMPETITORS"]["terms"] == 3


@pytest.mark.parametrize("line, problem", [
    ("新公司\thigh", "a TAB: write term,severity with a comma"),
    ("new company,hgih", "'hgih' after the last comma is not a severity"),
    ("Dear Sir, we moved", "'we moved' after the last comma is not a severity"),
    ("新公司，high", "'，' before 'high': the severity follows an ASCII comma (term,high)"),
    ("新公司;HIGH", "';' before 'HIGH'"),
    (",high", "empty term"),
])
def test_every_other_format_is_refused_with_its_line(cli, words, tmp_path, line, problem):
    wl = words(f"good term here\n{line}\n")
    r = cli("rules", "import-words", str(wl))
    assert r.exit_code == 2
    assert f"{wl}: line 2: " in r.output and problem in r.output, r.output
    assert "nothing was imported" in r.output
    assert not (tmp_path / "data" / "rules" / "competitors.txt").exists()


def test_dry_run_shows_the_changes_and_writes_nothing(cli, words, tmp_path):
    wl = words("rival lamps gmbh\n新公司,high\nsecret rebate\n")
    r = cli("rules", "import-words", str(wl), "--dry-run")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[:3] == ["+ rival lamps gmbh (medium)", "+ 新公司 (high)", "+ secret rebate (medium)"]
    assert "nothing was written" in r.stdout
    assert not (tmp_path / "data" / "rules").exists() or not any((tmp_path / "data" / "rules").iterdir())
    assert cli("rules", "import-words", str(wl)).exit_code == 0
    before = installed(tmp_path)
    wl = words("rival lamps gmbh,low\n新公司,high\nprivate channel\n")
    r = cli("rules", "import-words", str(wl), "--dry-run")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[:3] == ["+ private channel (medium)", "- secret rebate (medium)",
                                         "~ rival lamps gmbh: medium → low"]
    assert installed(tmp_path) == before
    r = cli("rules", "import-words", str(words("rival lamps gmbh\n新公司,high\nsecret rebate\n")), "--dry-run")
    assert r.stdout.splitlines()[0] == "no change to the terms"
