"""The files an admin runs the gateway with: the systemd unit and the compose file."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing_prerequisite

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "docker" / "mailwarden.service"
COMPOSE = ROOT / "docker" / "compose.yaml"


def _unit_here(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart pointing at this installation's command (verify checks it exists)."""
    command = Path(sys.executable).parent / "mailwarden"
    if not command.exists():
        command = Path(shutil.which("mailwarden") or "mailwarden")
    text = UNIT.read_text().replace("/opt/mailwarden/bin/mailwarden", str(command))
    assert str(command) in text, "ExecStart no longer names /opt/mailwarden/bin/mailwarden: update this test"
    unit = tmp_path / "mailwarden.service"
    unit.write_text(text)
    return unit


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        missing_prerequisite("systemd-analyze is not installed (Debian package systemd): cannot check the unit")
    return tool


def test_unit_passes_systemd_analyze_verify_without_warnings(tmp_path):
    done = subprocess.run([_analyze(), "verify", str(_unit_here(tmp_path))], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def test_a_broken_unit_is_reported(tmp_path):
    """The check above can fail: a misspelt directive is a warning verify prints."""
    unit = _unit_here(tmp_path)
    unit.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    done = subprocess.run([_analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert "NoNewPrivilege" in done.stdout + done.stderr


def test_unit_is_hardened(tmp_path):
    text = UNIT.read_text()
    for line in ("User=mailwarden", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "ProtectHome=yes", "ReadWritePaths=/var/lib/mailwarden", "StateDirectory=mailwarden",
                 "KillMode=mixed"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    done = subprocess.run([_analyze(), "security", "--offline=yes", str(_unit_here(tmp_path))], capture_output=True,
                          text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert level, done.stdout + done.stderr
    assert float(level.group(1)) <= 3.0, done.stdout  # systemd's scale: 10 is no protection at all


def test_compose_file_holds_no_password():
    text = COMPOSE.read_text()
    assert not re.search(r"PASSWORD:\s*\S", text), "a password in compose.yaml: use a secret file or ${VARIABLE}"
    assert "POSTGRES_PASSWORD_FILE" in text and "secrets:" in text
    assert re.search(r"^  mailwarden:$", text, re.M), "the README's `docker compose exec mailwarden` names this service"


@pytest.mark.parametrize("path", ["docker/mailwarden.service", "docker/compose.yaml"])
def test_readme_names_the_file(path):
    assert path in (ROOT / "README.md").read_text()
