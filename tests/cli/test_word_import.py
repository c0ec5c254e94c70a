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


def _rules_events(cli):  # type: ignore[no-untyped-def]
    r = cli("audit", "log", "--action", "rules", "--json")
    assert r.exit_code == 0, r.output
    return sorted((json.loads(line) for line in r.stdout.splitlines()), key=lambda e: e["seq"])


def test_each_import_and_reload_is_an_audit_event_naming_the_admin(cli, words, tmp_path):
    from mailwarden.cli.common import actor

    assert cli("rules", "import-words", str(words("rival lamps gmbh\n新公司,high\n"))).exit_code == 0
    assert cli("rules", "import-words", str(words("rival lamps gmbh,low\nsecond rival\n"))).exit_code == 0
    assert cli("rules", "import-words", "--dry-run", str(words("third rival\n"))).exit_code == 0  # no event
    r = cli("rules", "reload", "--reason", "edited site.toml")
    assert r.exit_code == 0 and "epoch 3" in r.output, r.output
    first, second, reload = _rules_events(cli)
    assert {e["actor"] for e in (first, second, reload)} == {actor()}
    assert first["action"] == "rules.import_words" and first["target"] == "competitors"
    assert (first["detail"]["added"], first["detail"]["epoch"], first["detail"]["replaced"]) == (2, 1, False)
    d = second["detail"]
    assert (d["added"], d["removed"], d["changed"], d["replaced"], d["epoch"]) == (1, 1, 1, True, 2)
    assert reload["action"] == "rules.reload" and reload["detail"]["reason"] == "edited site.toml"
    listing = cli("rules", "list").stdout
    assert f"last change: edited site.toml by {actor()}" in listing and "(epoch 3)" in listing


def test_reload_refuses_rules_that_do_not_load(cli, tmp_path):
    cfg = tmp_path / "mailwarden.toml"
    (tmp_path / "site.toml").write_text('[[rule]]\nid = "PRIVATE_PHONE"\naction = "explode"\n')
    cfg.write_text(cfg.read_text() + '[rules]\npacks = ["site.toml"]\n')
    r = cli("rules", "reload")
    assert r.exit_code == 2 and "site.toml" in r.output and "keep the rules they run" in r.output
    assert _rules_events(cli) == []
