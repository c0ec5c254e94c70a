"""Mail-client settings files: Thunderbird's autoconfig (clientConfig v1.1) and Apple's
``.mobileconfig``, from ``[listen]`` (host name, which ports, which TLS) and ``[company]``.

Implicit TLS is preferred (993, 465) where ``[listen]`` offers it; STARTTLS (143, 587) is
listed too for the clients that try more than one.  The user name is the salesperson's gateway
login, never the company mailbox's: that password only the gateway knows.

``mailwarden user client-config`` writes one file per user; with ``[listen] autoconfig`` the
HTTP server answers Thunderbird's autoconfig requests (``/mail/config-v1.1.xml`` and
``/.well-known/autoconfig/mail/config-v1.1.xml``) for the company's domains, with
``%EMAILLOCALPART%`` as the user name: the part before the @ of the address the salesperson
types is their login.
"""

from __future__ import annotations

import plistlib
import uuid
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from mailwarden.gateway.config import Company, HostPort, Listen

LOCALPART = "%EMAILLOCALPART%"  # Thunderbird fills in what the salesperson typed before the @
PATHS = ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml")


class ClientConfigError(ValueError):
    """The config offers a mail client nothing it could use (no IMAP or no SMTP listener)."""


@dataclass(frozen=True)
class Server:
    kind: str      # imap | smtp
    port: int
    implicit: bool  # TLS from the first byte; else STARTTLS


def servers(listen: Listen) -> list[Server]:
    """The listeners a mail client may use, implicit TLS first within each kind, on the ports
    clients reach (``[listen] client_ports``, else the ones listened on)."""
    found, reached = [], dict(listen.client_ports)
    for kind, implicit_addr, starttls_addr in (("imap", listen.imaps, listen.imap), ("smtp", listen.smtps, listen.smtp)):
        for addr, implicit in ((implicit_addr, True), (starttls_addr, False)):
            if isinstance(addr, HostPort):
                name = kind + ("s" if implicit else "")
                found.append(Server(kind, reached.get(name, addr.port), implicit))
    for kind, keys in (("imap", "imap or imaps"), ("smtp", "smtp or smtps")):
        if not any(s.kind == kind for s in found):
            raise ClientConfigError(f"[listen] {keys}: neither is set, so a mail client could not "
                                    f"{'read' if kind == 'imap' else 'send'} mail through the gateway")
    return found


def thunderbird(listen: Listen, company: Company, *, username: str = LOCALPART, domain: str | None = None) -> bytes:
    """Thunderbird's autoconfig file (https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat)."""
    domain = domain or company.domains[0]
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    for d in company.domains:
        ET.SubElement(provider, "domain").text = d
    ET.SubElement(provider, "displayName").text = f"{company.name} (mailwarden)"
    ET.SubElement(provider, "displayShortName").text = company.name
    for s in servers(listen):
        server = ET.SubElement(provider, "incomingServer" if s.kind == "imap" else "outgoingServer", type=s.kind)
        ET.SubElement(server, "hostname").text = listen.hostname
        ET.SubElement(server, "port").text = str(s.port)
        ET.SubElement(server, "socketType").text = "SSL" if s.implicit else "STARTTLS"
        ET.SubElement(server, "username").text = username
        ET.SubElement(server, "authentication").text = "password-cleartext"  # over TLS only: AUTH needs it
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def apple(listen: Listen, company: Company, *, login: str, name: str, address: str) -> bytes:
    """An Apple configuration profile with one IMAP account (macOS Mail, iPhone, iPad).  Its
    identifiers are derived from the domain and login, so a newer profile replaces the old one."""
    imap = next(s for s in servers(listen) if s.kind == "imap")
    smtp = next(s for s in servers(listen) if s.kind == "smtp")
    domain = company.domains[0]
    base = ".".join(reversed(domain.split("."))) + ".mailwarden"
    account = {
        **_payload("com.apple.mail.managed", f"{base}.{login}.mail", f"{company.name} mail"),
        "EmailAccountDescription": f"{company.name} ({login})",
        "EmailAccountName": name,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": listen.hostname,
        "IncomingMailServerPortNumber": imap.port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": login,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": listen.hostname,
        "OutgoingMailServerPortNumber": smtp.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": login,
        "OutgoingPasswordSameAsIncomingPassword": True,
        "SMIMEEnabled": False,
    }
    profile = {
        **_payload("Configuration", f"{base}.{login}", f"{company.name} mail ({login})"),
        "PayloadDescription": f"The mail account of {name} through the {company.name} mail gateway",
        "PayloadOrganization": company.name,
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [account],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def _payload(kind: str, identifier: str, display: str) -> dict[str, object]:
    """The keys every payload has; its UUID follows from its identifier (the same on every run)."""
    return {"PayloadType": kind, "PayloadVersion": 1, "PayloadIdentifier": identifier,
            "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, identifier)).upper(), "PayloadDisplayName": display}


def autoconfig_answer(listen: Listen, company: Company, query: dict[str, str]) -> tuple[int, str, bytes]:
    """The HTTP answer to an autoconfig request (``emailaddress`` optional; another domain: 404)."""
    address = query.get("emailaddress", "").strip().lower()
    domain = address.rpartition("@")[2] if "@" in address else company.domains[0]
    if domain not in company.domains:
        return 404, "text/plain; charset=utf-8", f"no mail settings for {domain[:100]} here\n".encode()
    return 200, "application/xml; charset=utf-8", thunderbird(listen, company, domain=domain)
