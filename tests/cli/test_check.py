"""``mailwarden check`` against the real upstream: one line per check, a readable line for each
failure (a wrong upstream password, a store not yet upgraded, a loose data directory), exit 1."""

from __future__ import annotations

import os

import pytest
from mailwarden.cli.app import app
from typer.testing import CliRunner

pytestmark = pytest.mark.integration

SHARED = "sales@company.test"


def write_config(tmp_path, upstream, password: str) -> str:  # type: ignore[no-untyped-def]
    (tmp_path / "upstream.password").write_text(password + "\n")
    cfg = tmp_path / "mailwarden.toml"
    cfg.write_text(f'[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n'
                   f'[upstream]\nimap = "localhost:{upstream.imaps_port}"\nsmtp = "localhost:{upstream.submission_port}"\n'
                   f'smtp_tls = "starttls"\nusername = "{SHARED}"\npassword_file = "upstream.password"\n'
                   f'ca_file = "{upstream.ca_file}"\n[listen]\nsmtp = "127.0.0.1:0"\n[store]\ndata_dir = "data"\n')
    return str(cfg)


def test_check_passes_with_a_working_setup(upstream, tmp_path):
    cfg = write_config(tmp_path, upstream, upstream.password_for(SHARED))
    runner = CliRunner()
    assert runner.invoke(app, ["--config", cfg, "db", "upgrade"]).exit_code == 0
    r = runner.invoke(app, ["--config", cfg, "check"])
    assert r.exit_code == 0, r.output
    for what in ("config", "store", "clock", "tls", "upstream smtp", "upstream imap"):
        assert f"ok    {what}:" in r.output, r.output


def test_check_names_each_failure(upstream, tmp_path):
    cfg = write_config(tmp_path, upstream, "not-the-company-password")
    r = CliRunner().invoke(app, ["--config", cfg, "check"])  # and the store was never upgraded
    assert r.exit_code == 1
    said = " ".join(r.output.split())
    assert "FAIL store: schema is at revision none" in said and "mailwarden db upgrade" in said
    assert "FAIL upstream smtp:" in said and "refused the shared account's login" in said
    assert "FAIL upstream imap:" in said
    assert "not-the-company-password" not in said
    os.chmod(tmp_path / "data", 0o755)
    said = " ".join(CliRunner().invoke(app, ["--config", cfg, "check"]).output.split())
    assert f"FAIL files: {tmp_path / 'data'} has mode 0755" in said
