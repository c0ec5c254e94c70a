"""``mailwarden rules check|list|import-words``: output shapes, exit codes, word-list import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailwarden.cli.app import app
from mailwarden.rules import RulesSettings
from mailwarden.rules.policy import word_list_paths
from tests.rules.rulesutil import make_message

CONFIG = """\
[company]
name = "Bright Lighting"
domains = ["brightlight.cn"]
official_phones = ["+86 755 8888 6666"]
official_handles = ["wechat:BrightLightingCN"]
[store]
data_dir = "data"
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg = tmp_path / "mailwarden.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(cfg))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input)

    run.cfg = cfg  # type: ignore[attr-defined]
    run.tmp = tmp_path  # type: ignore[attr-defined]
    return run


def _eml(path: Path, body: str, charset: str = "utf-8", **kw: str) -> Path:
    path.write_bytes(make_message(body, charset=charset, **kw).as_bytes())
    return path


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_check_json_gbk_wechat_exact_shape(env):
    f = _eml(env.tmp / "wx.eml", "您好，报价见附件。有问题请加我微信：tom_li88 谢谢\n", charset="gbk")
    assert b"charset=\"gbk\"" in f.read_bytes()
    r = env("rules", "check", "--json", str(f))
    assert r.exit_code == 0, r.output
    raw = r.stdout.strip()
    assert "微信" in raw  # ensure_ascii=False: readable Chinese, not \\u escapes
    assert json.loads(raw) == {
        "file": str(f),
        "action": "block",
        "findings": [{"rule": "PRIVATE_WECHAT", "category": "private_contact", "kind": "wechat",
                      "match": "微信：tom_li88", "severity": "high", "confidence": "high", "cue": ""}],
    }
    assert list(json.loads(raw)) == ["file", "action", "findings"]


def test_check_company_official_phone_and_handle_do_not_trigger(env):
    f = _eml(env.tmp / "ok.eml", "Please call our office +86 755 8888 6666 or add WeChat: BrightLightingCN.\n"
                                 "公司电话：0755-8888 6666\n")
    r = env("rules", "check", "--json", str(f))
    assert r.exit_code == 0, r.output
    assert _lines(r.stdout) == [{"file": str(f), "action": "allow", "findings": []}]


def test_check_missing_file_exits_2_and_checks_the_others(env):
    good = _eml(env.tmp / "good.eml", "Call me on my mobile 13800138000\n")
    r = env("rules", "check", "--json", str(env.tmp / "missing.eml"), str(good))
    assert r.exit_code == 2
    assert "missing.eml" in r.stderr and "cannot read" in r.stderr
    rows = _lines(r.stdout)
    assert [row["file"] for row in rows] == [str(good)]
    assert rows[0]["findings"][0]["kind"] == "phone"


def test_check_block_is_a_report_exit_0_with_reason_in_configured_language(env):
    env.cfg.write_text(CONFIG + '[rules]\nlanguage = "zh"\n', encoding="utf-8")
    f = _eml(env.tmp / "wx.eml", "加我微信：tom_li88\n")
    r = env("rules", "check", str(f))
    assert r.exit_code == 0, r.output
    assert "block" in r.stdout and "PRIVATE_WECHAT" in r.stdout
    assert "已拦截：规则 PRIVATE_WECHAT" in r.stdout


def test_check_bad_rules_config_is_a_clean_error(env):
    env.cfg.write_text(CONFIG + '[rules]\nmode = "loud"\n', encoding="utf-8")
    f = _eml(env.tmp / "a.eml", "hello\n")
    r = env("rules", "check", str(f))
    assert r.exit_code == 2
    assert "mode" in r.stderr and "Traceback" not in r.output


def test_check_bad_site_pack_names_the_file(env):
    pack = env.tmp / "site.toml"
    pack.write_text('[[rule]]\nid = "lower_case"\ncategory = "sensitive_word"\n', encoding="utf-8")
    env.cfg.write_text(CONFIG + '[rules]\npacks = ["site.toml"]\n', encoding="utf-8")
    r = env("rules", "check", str(_eml(env.tmp / "a.eml", "hello\n")))
    assert r.exit_code == 2 and "site.toml" in r.stderr and "UPPER_SNAKE" in r.stderr


def test_check_needs_only_company_and_rules(env):
    env.cfg.write_text(CONFIG.split("[store]")[0], encoding="utf-8")
    r = env("rules", "check", "--json", str(_eml(env.tmp / "a.eml", "hello\n")))
    assert r.exit_code == 0, r.output
    assert _lines(r.stdout)[0]["action"] == "allow"
    assert not (env.tmp / "data").exists()  # a report creates no database


def test_check_to_resolves_customer_from_store(env):
    assert env("user", "add", "tom", "--name", "Tom", "--password-stdin", input="correct-horse\n").exit_code == 0
    assert env("customer", "add", "ACME", "--domain", "acme-imports.com", "--contact", "john.acme@gmail.com",
               "--owner", "tom").exit_code == 0
    f = _eml(env.tmp / "cc.eml", "Please also send it to john.acme@gmail.com\n")
    plain = _lines(env("rules", "check", "--json", str(f)).stdout)[0]
    assert plain["action"] == "block"  # a private gmail address, as far as the rules know
    r = env("rules", "check", "--json", "--from", "tom", "--to", "buyer@acme-imports.com", str(f))
    assert r.exit_code == 0, r.output
    assert _lines(r.stdout)[0] == {"file": str(f), "action": "allow", "findings": []}


def test_check_from_an_unknown_login_is_refused(env):
    assert env("user", "add", "tom", "--name", "Tom", "--password-stdin", input="correct-horse\n").exit_code == 0
    f = _eml(env.tmp / "a.eml", "hello\n")
    r = env("rules", "check", "--json", "--from", "nobody", "--to", "x@buyer.test", str(f))
    assert r.exit_code == 2 and "--from nobody: no such user" in r.stderr and r.stdout == ""


def test_list_shows_rules_and_where_they_came_from(env):
    r = env("rules", "list", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["id"]: row for row in _lines(r.stdout)}
    assert rows["PRIVATE_WECHAT"]["category"] == "private_contact"
    assert rows["PRIVATE_WECHAT"]["source"] == ["shipped pack"]
    assert {"id", "category", "kind", "action", "severity", "source"} <= set(rows["PRIVATE_WECHAT"])
    assert all(row["enabled"] for row in rows.values())
    table = env("rules", "list")
    assert table.exit_code == 0 and "PRIVATE_WECHAT" in table.stdout and "shipped" in table.stdout


def test_import_words_bad_line_exits_2_names_the_line_writes_nothing(env):
    wl = env.tmp / "competitors.txt"
    wl.write_text("私下合作渠道\nok phrase here\nab\nnew company,hgih\n", encoding="utf-8")
    r = env("rules", "import-words", str(wl))
    assert r.exit_code == 2
    assert f"{wl}: line 3:" in r.stderr and "too short" in r.stderr
    assert "nothing was imported" in r.stderr
    assert not (env.tmp / "data" / "rules" / "competitors.txt").exists()


def test_import_words_then_the_word_triggers(env):
    msg = _eml(env.tmp / "m.eml", "我们可以通过锦绣灯饰城合作，也可以找Zorgblatt Trading\n")
    before = _lines(env("rules", "check", "--json", str(msg)).stdout)[0]
    assert before["action"] == "allow"
    wl = env.tmp / "site words.txt"
    wl.write_bytes("# description: local words\n锦绣灯饰城\nzorgblatt trading,critical\n".encode("gb18030"))
    r = env("rules", "import-words", str(wl), "--name", "local", "--severity", "high")
    assert r.exit_code == 0, r.output
    assert "imported 2 terms" in r.stdout and "WORDLIST_LOCAL" in r.stdout
    installed = env.tmp / "data" / "rules" / "local.txt"
    assert installed.read_text(encoding="utf-8").startswith("# severity: high\n")
    assert [p.name for p in installed.parent.iterdir()] == ["local.txt"]  # no staging leftovers
    after = _lines(env("rules", "check", "--json", str(msg)).stdout)[0]
    found = {(f["rule"], f["match"], f["severity"]) for f in after["findings"]}
    assert found == {("WORDLIST_LOCAL", "锦绣灯饰城", "high"), ("WORDLIST_LOCAL", "Zorgblatt Trading", "critical")}
    assert after["action"] == "block"
    rows = {row["id"]: row for row in _lines(env("rules", "list", "--json").stdout)}
    assert rows["WORDLIST_LOCAL"]["terms"] == 2
    assert rows["WORDLIST_LOCAL"]["source"] == [f"word list {installed}"]
    # Importing under the same name replaces the list.
    wl.write_text("另一个词语\n", encoding="utf-8")
    r = env("rules", "import-words", str(wl), "--name", "local")
    assert r.exit_code == 0 and "replaced" in r.stdout
    assert _lines(env("rules", "check", "--json", str(msg)).stdout)[0]["action"] == "allow"


def test_import_words_rule_id_clash_is_refused(env):
    wl = env.tmp / "x.txt"
    wl.write_text("# rule: PRIVATE_WECHAT\nsomething odd\n", encoding="utf-8")
    r = env("rules", "import-words", str(wl))
    assert r.exit_code == 2 and "PRIVATE_WECHAT" in r.stderr and "nothing was imported" in r.stderr
    assert not any((env.tmp / "data" / "rules").iterdir())


def test_import_words_bad_options(env):
    wl = env.tmp / "x.txt"
    wl.write_text("something odd\n", encoding="utf-8")
    assert env("rules", "import-words", str(wl), "--severity", "huge").exit_code == 2
    assert env("rules", "import-words", str(wl), "--name", "../etc/passwd").exit_code == 2
    r = env("rules", "import-words", str(env.tmp / "nope.txt"))
    assert r.exit_code == 2 and "nope.txt" in r.stderr


def test_word_dirs_load_every_txt_once(tmp_path: Path):
    d = tmp_path / "rules"
    d.mkdir()
    (d / "b.txt").write_text("x\n")
    (d / "a.txt").write_text("x\n")
    (d / "notes.md").write_text("x\n")
    (d / ".import-1").mkdir()
    (d / ".import-1" / "c.txt").write_text("x\n")
    s = RulesSettings(word_lists=(d / "b.txt",), word_dirs=(d, tmp_path / "absent"))
    assert [p.name for p in word_list_paths(s)] == ["b.txt", "a.txt"]
