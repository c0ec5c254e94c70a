"""The admin CLI under test: a config with a store in the test's directory."""

from __future__ import annotations

import pytest
from mailwarden.cli.app import app
from typer.testing import CliRunner


@pytest.fixture
def plain_cli(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    cfg = tmp_path / "mailwarden.toml"
    cfg.write_text('[company]\nname = "Bright Lighting"\ndomains = ["company.test"]\n[store]\ndata_dir = "data"\n')
    monkeypatch.setenv("MAILWARDEN_CONFIG", str(cfg))
    runner = CliRunner()

    def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), input=input)

    return run


@pytest.fixture
def cli(plain_cli):  # type: ignore[no-untyped-def]
    return plain_cli
