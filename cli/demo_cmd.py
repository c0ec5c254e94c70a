"""mailwarden demo: a throwaway company mailbox, the gateway and demo users, on this machine."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from mailwarden.gateway.config import load_config
from mailwarden.gateway.server import SECTIONS, Gateway, run
from mailwarden.store import open_store
from mailwarden.store.directory import add_customer, add_user, get_user

from .common import fail, out

if TYPE_CHECKING:
    from mailwarden.testing.localupstream import LocalUpstream

# One team, so the supervisor can review (release, reject) the salespeople's held mail.
DEMO_USERS = (("zhang", "Zhang San", "sales"), ("li", "Li Si", "sales"), ("wang", "Wang Wu", "supervisor"))
DEMO_TEAM = "export"
DEMO_CUSTOMERS = (("Acme Lighting GmbH", "buyer.test", "zhang"), ("Globex Trading", "customer.test", "li"))
# Mail already waiting in the company mailbox: the sync files it for Acme's and Globex's owners,
# and an inquiry from nobody the gateway knows for the pool.
DEMO_INBOUND = (("Max Weber <max@buyer.test>", "Re: LED panel quotation", "Thank you, please send the final price."),
                ("Anna Lee <anna@customer.test>", "Order 2026-118", "We confirm the order of 500 pcs."),
                ("Tom <tom.newbuyer@gmail.com>", "Inquiry: street lights", "Please send your catalogue."))

CONFIG = """\
# Written by `mailwarden demo`: a local upstream stands in for the company mailbox.
[company]
name = "Bright Lighting"
domains = ["company.test"]
official_phones = ["+86 574 8888 0000"]
official_handles = ["wechat:BrightLightingCN"]

[upstream]
imap = "localhost:{imaps}"
imap_tls = "implicit"
smtp = "localhost:{submission}"
smtp_tls = "starttls"
username = "sales@company.test"
password_file = "upstream.password"
ca_file = "{ca}"

[listen]
smtp = "127.0.0.1:{smtp}"
smtps = "127.0.0.1:{smtps}"
imap = "127.0.0.1:{imap}"
imaps = "127.0.0.1:{imaps_gw}"
hostname = "localhost"

[store]
data_dir = "gateway"
"""


def demo(
    ctx: typer.Context,
    directory: Path = typer.Option(Path("demo-data"), "--dir", help="Where the demo keeps everything (a new or empty folder)"),
    smtp_port: int = typer.Option(2587, "--smtp-port", help="Gateway submission port (STARTTLS)"),
    smtps_port: int = typer.Option(2465, "--smtps-port", help="Gateway submission port (implicit TLS)"),
    imap_port: int = typer.Option(2143, "--imap-port", help="Gateway IMAP port (STARTTLS)"),
    imaps_port: int = typer.Option(2993, "--imaps-port", help="Gateway IMAP port (implicit TLS)"),
) -> None:
    """Start a local demo: a real Dovecot + Postfix as the company mailbox, the gateway, demo users.

    Prints the mail-client settings; Ctrl-C stops everything.
    """
    root = logging.getLogger()
    root.setLevel(min(root.level, logging.INFO))
    from mailwarden.testing.localupstream import LocalUpstream, MailAccount, UpstreamUnavailable

    for port, option in ((smtp_port, "--smtp-port"), (smtps_port, "--smtps-port"), (imap_port, "--imap-port"),
                         (imaps_port, "--imaps-port")):
        problem = _port_taken(port)
        if problem:
            fail(f"port {port} ({option}) cannot be used on 127.0.0.1: {problem}; stop what listens there "
                 f"or pass {option} with another port")
    directory = directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        fail(f"{directory} is not empty: remove it or pass --dir NEW_FOLDER")
    directory.mkdir(parents=True, exist_ok=True)
    company_password = secrets.token_urlsafe(12)
    upstream = LocalUpstream(directory / "upstream", [MailAccount("sales@company.test", company_password)],
                             domains=["company.test", "buyer.test", "customer.test"])
    try:
        upstream.start()
    except UpstreamUnavailable as exc:
        fail(str(exc))
    try:
        (directory / "upstream.password").write_text(company_password + "\n")
        (directory / "upstream.password").chmod(0o600)
        cfg_path = directory / "mailwarden.toml"
        cfg_path.write_text(CONFIG.format(imaps=upstream.imaps_port, submission=upstream.submission_port,
                                          ca=upstream.ca_file, smtp=smtp_port, smtps=smtps_port, imap=imap_port,
                                          imaps_gw=imaps_port))
        cfg = load_config(cfg_path, SECTIONS)
        assert cfg.store is not None
        st = open_store(cfg.store)
        passwords: dict[str, str] = {}
        with st.session() as s:
            for login, name, role in DEMO_USERS:
                if get_user(session=s, login=login) is None:
                    passwords[login] = secrets.token_urlsafe(9)
                    add_user(session=s, login=login, name=name, password=passwords[login], role=role, team=DEMO_TEAM)
            for cname, domain, owner in DEMO_CUSTOMERS:
                add_customer(session=s, name=cname, domains=[domain], owner=owner, created_by="demo")
        for sender, subject, text in DEMO_INBOUND:
            upstream.inject((f"From: {sender}\r\nTo: sales@company.test\r\nSubject: {subject}\r\n"
                             f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n").encode(),
                            ["sales@company.test"], sender.split("<")[1].rstrip(">"))
        _print_settings(cfg_path, upstream, passwords, (smtp_port, smtps_port, imap_port, imaps_port),
                        company_password)
        try:
            asyncio.run(run(Gateway(cfg, st, delivery_process=True)))
        except OSError as exc:  # taken between the check above and now
            fail(f"cannot start the demo gateway: {exc}")
    finally:
        upstream.stop()


def _port_taken(port: int) -> str:
    """Why the gateway could not listen on ``port`` ("" when it can), tried the way it listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return ""


def _print_settings(cfg_path: Path, upstream: "LocalUpstream", passwords: dict[str, str],
                    ports: tuple[int, int, int, int], company_password: str) -> None:
    smtp, smtps, imap, imaps = ports
    out.print(f"\nmailwarden demo — config: {cfg_path}\n")
    out.print("Incoming mail server (IMAP) for a mail client: each user sees their own customers' mail")
    out.print(f"  server localhost, port {imaps}, SSL/TLS (or port {imap}, STARTTLS), normal password")
    out.print("Outgoing mail server (SMTP) for a mail client:")
    out.print(f"  server localhost, port {smtp}, STARTTLS (or port {smtps}, SSL/TLS), normal password")
    out.print("  the certificate is self-signed: accept it once\n")
    out.print("Demo users (login / password):")
    roles = {login: role for login, _, role in DEMO_USERS}
    for login, pw in passwords.items():
        out.print(f"  {login:6} {pw}  ({roles[login]}, team {DEMO_TEAM})")
    out.print("\nCustomers: Acme Lighting GmbH (buyer.test, owner zhang), Globex Trading (customer.test, owner li)")
    out.print("What customers receive lands in the local upstream, readable over IMAP:")
    out.print(f"  imaps://localhost:{upstream.imaps_port}  user catchall@buyer.test  password catchall")
    out.print(f"The company mailbox (Sent copies, notices): same server, user sales@company.test  password "
              f"{company_password}  (CA: {upstream.ca_file})")
    out.print(f"Try:  swaks --server localhost:{smtp} --tls --auth-user zhang --auth-password <pw> "
              "--from sales@company.test --to buyer@buyer.test")
    out.print(f"Admin commands against the demo:  MAILWARDEN_CONFIG={cfg_path} mailwarden quarantine list")
    out.print(f"The company mailbox's mail, filed for each owner:  MAILWARDEN_CONFIG={cfg_path} mailwarden mail list")
    out.print(f"A customer writes in:  swaks --server localhost:{upstream.smtp_port} --from max@buyer.test "
              "--to sales@company.test --header 'Subject: question'")
    out.print("\nCtrl-C stops the gateway and the local upstream.\n")
