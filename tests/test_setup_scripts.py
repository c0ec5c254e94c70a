"""The two commands of the README's quick start (docker/demo, tests/run) and what they share
(docker/setup.sh): what is there already is looked up, never installed again."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "docker" / "setup.sh"


def fake_system(tmp_path: Path, installed: set[str]) -> tuple[dict[str, str], Path]:
    """dpkg-query, apt-get, debconf-set-selections and sudo that record their calls."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    calls = tmp_path / "calls"
    scripts = {
        "dpkg-query": f'[ -n "$(grep -x "${{@: -1}}" {tmp_path}/installed)" ] && printf installed || exit 1',
        "apt-get": f'echo "apt-get $*" >>{calls}',
        "debconf-set-selections": f'echo "debconf $(cat)" >>{calls}',
        "sudo": 'exec "$@"',
    }
    for name, body in scripts.items():
        (bin_ / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_ / name).chmod(0o755)
    (tmp_path / "installed").write_text("".join(f"{p}\n" for p in sorted(installed)))
    return {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"}, calls


def need(env: dict[str, str], *packages: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f'. "{SETUP}" && need_packages "$@"', "need", *packages], env=env,
                          capture_output=True, text=True, timeout=60)


def test_installed_packages_are_not_installed_again(tmp_path):
    env, calls = fake_system(tmp_path, {"postfix", "swaks", "curl"})
    done = need(env, "postfix", "swaks", "curl")
    assert done.returncode == 0, done.stderr
    assert not calls.exists() and done.stdout == ""


def test_missing_packages_are_installed_with_postfix_answered(tmp_path):
    env, calls = fake_system(tmp_path, {"curl"})
    done = need(env, "postfix", "curl", "swaks")
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert lines[0] == "debconf postfix postfix/main_mailer_type select No configuration"
    assert lines[1] == "apt-get update -qq"
    assert re.fullmatch(r"apt-get install -y -qq .* postfix swaks", lines[2]) and "curl" not in lines[2]
    assert "system packages: postfix swaks" in done.stdout
    calls.unlink()
    assert need(env, "curl", "swaks").returncode == 0
    assert "debconf" not in calls.read_text()  # no postfix missing: no question answered


def test_unknown_setup_is_refused():
    done = subprocess.run(["bash", "-c", f'. "{SETUP}" && setup everything'], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "say demo or tests" in done.stderr


def test_readme_quick_start_is_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", quick, re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["docker/demo", "tests/run"]
    for script in ("docker/demo", "tests/run", "docker/setup.sh"):
        assert os.access(ROOT / script, os.X_OK), f"{script} is not executable"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^tests/run \|\| status=\$\?$", ci, re.M)
    assert "export CI=true" in ci and 'id -u)" -ne 0' in ci and "need_packages postgresql" in ci
    assert "MAILWARDEN_TEST_PG_URL=" in ci and "MAILWARDEN_IMAPTEST=" in ci
    assert "pytest" not in re.sub(r"#.*", "", ci).replace("pytest collected", "")  # only through tests/run
