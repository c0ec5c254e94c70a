"""Mail-client settings files: Thunderbird's autoconfig XML and Apple's .mobileconfig, from [listen]."""

from __future__ import annotations

import asyncio
import plistlib
import urllib.error
import urllib.request
from xml.etree import ElementTree as ET

import pytest
from mailwarden.gateway import clientconfig
from mailwarden.gateway.config import ConfigError, config_from_dict
from mailwarden.gateway.httpserver import HttpServer

COMPANY = {"name": "Bright Lighting", "domains": ["brightlighting.com", "bright.cn"]}
LISTEN = {"smtp": "0.0.0.0:587", "smtps": "0.0.0.0:465", "imap": "0.0.0.0:143", "imaps": "0.0.0.0:993",
          "hostname": "mail-gw.brightlighting.com"}


def cfg(**listen: object):  # type: ignore[no-untyped-def]
    c = config_from_dict({"company": COMPANY, "listen": {**LISTEN, **listen}}, None, {"company", "listen"})
    return c.listen, c.company


def servers(xml: bytes) -> list[tuple[str, str, int, str, str, str]]:
    root = ET.fromstring(xml)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None
    return [(s.tag, s.get("type"), int(s.findtext("port")), s.findtext("socketType"), s.findtext("hostname"),
             s.findtext("username")) for s in provider if s.tag in ("incomingServer", "outgoingServer")]


def test_thunderbird_names_the_listen_ports_and_tls():
    xml = clientconfig.thunderbird(*cfg(), username="zhang")
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    host = "mail-gw.brightlighting.com"
    assert servers(xml) == [("incomingServer", "imap", 993, "SSL", host, "zhang"),
                            ("incomingServer", "imap", 143, "STARTTLS", host, "zhang"),
                            ("outgoingServer", "smtp", 465, "SSL", host, "zhang"),
                            ("outgoingServer", "smtp", 587, "STARTTLS", host, "zhang")]
    root = ET.fromstring(xml)
    assert [d.text for d in root.iter("domain")] == ["brightlighting.com", "bright.cn"]
    assert {a.text for a in root.iter("authentication")} == {"password-cleartext"}


def test_only_what_listens_is_offered():
    listen, company = cfg(smtps="", imap="")
    assert [(s[1], s[2], s[3]) for s in servers(clientconfig.thunderbird(listen, company))] == \
        [("imap", 993, "SSL"), ("smtp", 587, "STARTTLS")]
    with pytest.raises(clientconfig.ClientConfigError, match=r"\[listen\] imap or imaps"):
        clientconfig.thunderbird(*cfg(imap="", imaps=""))


def test_client_ports_behind_a_port_mapping():
    """A container listening on 2587/2993, published as 587/993: the files name what clients reach."""
    listen, company = cfg(smtp="0.0.0.0:2587", imaps="0.0.0.0:2993", smtps="", imap="",
                          client_ports={"smtp": 587, "imaps": 993})
    assert [(s[1], s[2]) for s in servers(clientconfig.thunderbird(listen, company))] == [("imap", 993), ("smtp", 587)]
    with pytest.raises(ConfigError, match=r"\[listen\] client_ports: pop3 = 110: keys are smtp, smtps, imap, imaps"):
        cfg(client_ports={"pop3": 110})
    with pytest.raises(ConfigError, match=r"\[listen\] client_ports: smtp = 0"):
        cfg(client_ports={"smtp": 0})


def test_apple_profile_loads_with_plistlib():
    listen, company = cfg()
    data = clientconfig.apple(listen, company, login="zhang", name="Zhang San", address="sales@brightlighting.com")
    profile = plistlib.loads(data)
    assert profile["PayloadType"] == "Configuration" and profile["PayloadOrganization"] == "Bright Lighting"
    (account,) = profile["PayloadContent"]
    assert account["PayloadType"] == "com.apple.mail.managed" and account["EmailAccountType"] == "EmailTypeIMAP"
    assert (account["IncomingMailServerHostName"], account["IncomingMailServerPortNumber"],
            account["IncomingMailServerUseSSL"], account["IncomingMailServerUsername"]) == \
        ("mail-gw.brightlighting.com", 993, True, "zhang")
    assert (account["OutgoingMailServerPortNumber"], account["OutgoingMailServerUseSSL"],
            account["OutgoingMailServerUsername"]) == (465, True, "zhang")
    assert account["EmailAccountName"] == "Zhang San" and account["EmailAddress"] == "sales@brightlighting.com"
    assert not {"IncomingPassword", "OutgoingPassword"} & set(account)  # the client asks for it
    again = plistlib.loads(clientconfig.apple(listen, company, login="zhang", name="Zhang San", address="x@y"))
    assert again["PayloadUUID"] == profile["PayloadUUID"]  # a newer profile replaces the installed one
    other = plistlib.loads(clientconfig.apple(listen, company, login="li", name="Li Si", address="x@y"))
    assert other["PayloadUUID"] != profile["PayloadUUID"]
    only_starttls = plistlib.loads(clientconfig.apple(*cfg(smtps="", imaps=""), login="li", name="Li", address="x@y"))
    assert only_starttls["PayloadContent"][0]["OutgoingMailServerPortNumber"] == 587


def test_autoconfig_needs_http_and_imap():
    assert cfg(http="127.0.0.1:9187", autoconfig=True)[0].autoconfig
    assert not cfg()[0].autoconfig
    for listen in ({"autoconfig": True}, {"http": "127.0.0.1:9187", "autoconfig": True, "imap": "", "imaps": ""}):
        with pytest.raises(ConfigError, match=r"\[listen\] autoconfig: needs \[listen\] http"):
            cfg(**listen)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


async def test_autoconfig_over_http():
    listen, company = cfg(http="127.0.0.1:0", autoconfig=True)

    async def answer(query):  # type: ignore[no-untyped-def]
        return clientconfig.autoconfig_answer(listen, company, query)

    http = HttpServer({}, dict.fromkeys(clientconfig.PATHS, answer))
    port = (await http.listen("127.0.0.1", 0)).sockets[0].getsockname()[1]
    try:
        base = f"http://127.0.0.1:{port}"
        for path in clientconfig.PATHS:
            code, ctype, body = await asyncio.to_thread(_get, f"{base}{path}?emailaddress=zhang%40bright.cn")
            assert code == 200 and ctype.startswith("application/xml")
            assert ET.fromstring(body).find("emailProvider").get("id") == "bright.cn"
            assert {s[5] for s in servers(body)} == {"%EMAILLOCALPART%"}
        code, _, body = await asyncio.to_thread(_get, f"{base}/mail/config-v1.1.xml")
        assert code == 200 and ("incomingServer", "imap", 993, "SSL", "mail-gw.brightlighting.com",
                                "%EMAILLOCALPART%") in servers(body)
        code, _, body = await asyncio.to_thread(_get, f"{base}/mail/config-v1.1.xml?emailaddress=a@rival.com")
        assert code == 404 and b"rival.com" in body
        code, _, _ = await asyncio.to_thread(_get, f"{base}/mail/config-v1.1.xml?" + "&".join(f"a{i}=1" for i in range(30)))
        assert code == 400
    finally:
        await http.stop()
