"""mailwarden user client-config LOGIN --format thunderbird|apple."""

from __future__ import annotations

import plistlib
from xml.etree import ElementTree as ET

import pytest

LISTEN = ('[listen]\nsmtp = "0.0.0.0:587"\nsmtps = "0.0.0.0:465"\nimaps = "0.0.0.0:993"\n'
          'hostname = "mail-gw.company.test"\n')


@pytest.fixture
def client_cli(plain_cli, tmp_path):  # type: ignore[no-untyped-def]
    cfg = tmp_path / "mailwarden.toml"
    cfg.write_text(cfg.read_text() + LISTEN + '[upstream]\nusername = "sales@company.test"\n')
    r = plain_cli("user", "add", "zhang", "--name", "Zhang San", "--password-stdin", input="correct-horse\n")
    assert r.exit_code == 0, r.output
    return plain_cli


def test_thunderbird_file_for_a_user(client_cli):
    r = client_cli("user", "client-config", "zhang", "--format", "thunderbird")
    assert r.exit_code == 0, r.output
    root = ET.fromstring(r.stdout_bytes)
    incoming = root.find("emailProvider/incomingServer")
    assert (incoming.findtext("hostname"), incoming.findtext("port"), incoming.findtext("socketType"),
            incoming.findtext("username")) == ("mail-gw.company.test", "993", "SSL", "zhang")
    assert [(s.findtext("port"), s.findtext("socketType")) for s in root.iter("outgoingServer")] == \
        [("465", "SSL"), ("587", "STARTTLS")]


def test_apple_profile_to_a_file(client_cli, tmp_path):
    out = tmp_path / "zhang.mobileconfig"
    r = client_cli("user", "client-config", "ZHANG", "-f", "apple", "--out", str(out))
    assert r.exit_code == 0, r.output
    account = plistlib.loads(out.read_bytes())["PayloadContent"][0]
    assert account["IncomingMailServerUsername"] == "zhang" and account["EmailAddress"] == "sales@company.test"
    assert account["EmailAccountName"] == "Zhang San" and account["OutgoingMailServerPortNumber"] == 465


def test_refusals(client_cli, tmp_path):
    r = client_cli("user", "client-config", "zhang", "--format", "outlook")
    assert r.exit_code == 2 and "use thunderbird or apple" in r.output
    r = client_cli("user", "client-config", "nobody", "--format", "apple")
    assert r.exit_code == 2 and "no user 'nobody'" in r.output
    assert client_cli("user", "disable", "zhang").exit_code == 0
    r = client_cli("user", "client-config", "zhang", "--format", "apple")
    assert r.exit_code == 2 and "is disabled" in r.output
    assert client_cli("user", "enable", "zhang").exit_code == 0
    cfg = tmp_path / "mailwarden.toml"
    cfg.write_text(cfg.read_text().replace('imaps = "0.0.0.0:993"\n', ""))
    r = client_cli("user", "client-config", "zhang", "--format", "thunderbird")
    assert r.exit_code == 2 and "[listen] imap or imaps" in r.output


def test_a_localhost_hostname_is_warned_of(plain_cli, tmp_path):
    cfg = tmp_path / "mailwarden.toml"
    cfg.write_text(cfg.read_text() + LISTEN.replace("mail-gw.company.test", "localhost"))
    assert plain_cli("user", "add", "zhang", "--name", "Zhang San", "--password-stdin",
                     input="correct-horse\n").exit_code == 0
    r = plain_cli("user", "client-config", "zhang", "--format", "thunderbird")
    assert r.exit_code == 0 and "[listen] hostname is 'localhost'" in r.stderr
    assert ET.fromstring(r.stdout_bytes).find("emailProvider/incomingServer").findtext("hostname") == "localhost"
