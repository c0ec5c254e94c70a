"""``mailwarden signature preview|apply`` over a real config file and store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sigkit import content, crlf, norm, parse, text_signature
from typer.testing import CliRunner

from mailwarden.cli.app import app

CONFIG = """
[company]
name = "ACME Trading Co., Ltd."
domains = ["acme.example"]
official_phones = ["+86 571 8888 0000"]
official_handles = ["wechat:ACME_Official"]
website = "www.acme.example"

[store]
data_dir = "data"

[signatures]
template_dir = "signatures"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mailwarden.toml"
    path.write_text(CONFIG, encoding="utf-8")
    (tmp_path / "signatures").mkdir()
    runner = CliRunner()
    result = runner.invoke(app, ["--config", str(path), "user", "add", "zhangwei", "--name", "张伟", "--team", "export",
                                 "--title", "Export Sales Manager", "--phone", "+86 138 0000 1111", "--password-stdin"],
                           input="correct horse battery staple 42\n")
    assert result.exit_code == 0, result.output
    return path


def test_preview_shows_the_rendered_signature(config: Path) -> None:
    result = CliRunner().invoke(app, ["--config", str(config), "signature", "preview", "--user", "zhangwei"])
    assert result.exit_code == 0, result.output
    assert "-- \n张伟 | Export Sales Manager\nACME Trading Co., Ltd.\nTel: +86 138 0000 1111" in result.stdout
    assert "Official accounts: WeChat: ACME_Official" in result.stdout
    html = CliRunner().invoke(app, ["--config", str(config), "signature", "preview", "--user", "zhangwei", "--html"])
    assert html.exit_code == 0 and "<div style=\"font-weight:bold;font-size:14px;\">张伟 | Export Sales Manager</div>" in html.stdout


def test_apply_prints_the_message_as_sent(config: Path, tmp_path: Path) -> None:
    eml = tmp_path / "reply.eml"
    eml.write_bytes(crlf("From: sales@acme.example\nTo: bob@customer.example\nSubject: Re: x\n\n"
                         "OK.\n\nOn Mon, Bob wrote:\n> price?\n"))
    result = CliRunner().invoke(app, ["--config", str(config), "signature", "apply", str(eml), "--user", "zhangwei",
                                      "--customer", "Bolt GmbH"])
    assert result.exit_code == 0, result.output
    raw = result.stdout_bytes
    assert parse(raw)["Subject"] == "Re: x"
    body = content(raw, "text/plain")
    assert body.startswith("OK.\n\n-- \n张伟") and body.endswith("On Mon, Bob wrote:\n> price?\n")
    assert text_signature(body).startswith(norm("张伟 | Export Sales Manager"))


def test_template_errors_and_unknown_users_are_named(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["--config", str(config), "signature", "preview", "--user", "nobody"])
    assert unknown.exit_code != 0 and "nobody" in unknown.output
    (tmp_path / "signatures" / "company.txt.j2").write_text("{{ user.name }\n", encoding="utf-8")
    (tmp_path / "signatures" / "company.html.j2").write_text("<p>{{ user.name }}</p>", encoding="utf-8")
    broken = runner.invoke(app, ["--config", str(config), "signature", "preview", "--user", "zhangwei"])
    assert broken.exit_code == 2 and "company.txt.j2:1:" in broken.output
