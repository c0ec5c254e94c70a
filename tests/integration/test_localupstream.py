"""The test upstream is a real mail host: TLS verified, AUTH enforced, keywords kept, restartable."""

from __future__ import annotations

import base64
import imaplib
import smtplib
import socket
import ssl
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from mailwarden.testing import localupstream
from mailwarden.testing.localupstream import LocalUpstream, MailAccount, UpstreamUnavailable

SALES = "sales@company.test"


def _message(sender: str, to: str) -> tuple[bytes, bytes]:
    token = uuid.uuid4().hex
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, f"harness {token}"
    msg.set_content(f"token {token}\n")
    return bytes(msg), token.encode()


def _submission(upstream: LocalUpstream) -> smtplib.SMTP:
    client = smtplib.SMTP(upstream.host, upstream.submission_port, timeout=30)
    client.starttls(context=upstream.client_ssl_context())
    client.login(SALES, upstream.password_for(SALES))
    return client


@pytest.mark.integration
def test_imaps_login_verifies_the_ca(upstream: LocalUpstream) -> None:
    ctx = ssl.create_default_context(cafile=str(upstream.ca_file))
    with imaplib.IMAP4_SSL("localhost", upstream.imaps_port, ssl_context=ctx, timeout=30) as client:
        assert client.login(SALES, "company-secret")[0] == "OK"
        _, folders = client.list()
        names = b"\n".join(f for f in folders if isinstance(f, bytes))
        assert b"\\Sent" in names and b"\\Drafts" in names and b"\\Trash" in names
    # The same server, with only the system CAs trusted: the certificate must not verify.
    with socket.create_connection((upstream.host, upstream.imaps_port), timeout=30) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


@pytest.mark.integration
def test_imap_starttls_login(upstream: LocalUpstream) -> None:
    with imaplib.IMAP4("localhost", upstream.imap_port, timeout=30) as client:
        assert "STARTTLS" in client.capabilities
        client.starttls(ssl.create_default_context(cafile=str(upstream.ca_file)))
        assert client.login(SALES, "company-secret")[0] == "OK"
    with imaplib.IMAP4(upstream.host, upstream.imap_port, timeout=30) as client:
        with pytest.raises(imaplib.IMAP4.error):
            client.login(SALES, "wrong-password")


@pytest.mark.integration
def test_submission_refuses_auth_before_starttls(upstream: LocalUpstream) -> None:
    with smtplib.SMTP(upstream.host, upstream.submission_port, timeout=30) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        secret = base64.b64encode(f"\0{SALES}\0company-secret".encode()).decode()
        code, reply = client.docmd("AUTH", f"PLAIN {secret}")
        assert 500 <= code < 600, reply
        code, reply = client.mail(SALES)
        assert code == 530, reply  # Must issue a STARTTLS command first


@pytest.mark.integration
def test_submission_requires_auth_after_starttls(upstream: LocalUpstream) -> None:
    with smtplib.SMTP(upstream.host, upstream.submission_port, timeout=30) as client:
        client.starttls(context=upstream.client_ssl_context())
        client.ehlo()
        assert client.has_extn("auth")
        code, reply = client.mail(SALES)
        assert code == 553 and b"not logged in" in reply


@pytest.mark.integration
def test_authenticated_submission_reaches_the_buyer_catchall(upstream: LocalUpstream) -> None:
    raw, token = _message(SALES, "someone@buyer.test")
    with _submission(upstream) as client:
        assert client.sendmail(SALES, ["someone@buyer.test"], raw) == {}
    [received] = upstream.wait_for("catchall@buyer.test", 1, containing=token)
    assert b"Delivered-To: catchall@buyer.test" in received.raw
    assert b"To: someone@buyer.test" in received.raw
    assert "\\Seen" not in received.flags  # fetched with BODY.PEEK: still unread


@pytest.mark.integration
def test_submission_rejects_another_mail_from(upstream: LocalUpstream) -> None:
    raw, _ = _message("boss@company.test", "someone@buyer.test")
    with _submission(upstream) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("boss@company.test", ["someone@buyer.test"], raw)
    assert refused.value.smtp_code == 553
    assert b"not owned by user" in refused.value.smtp_error


@pytest.mark.integration
def test_no_relay_outside_the_test_domains(upstream: LocalUpstream) -> None:
    with smtplib.SMTP(upstream.host, upstream.smtp_port, timeout=30) as client:
        client.ehlo()
        client.mail("someone@buyer.test")
        code, reply = client.rcpt("victim@elsewhere.invalid")
        assert code == 554 and b"Relay access denied" in reply
    with _submission(upstream) as client:
        client.mail(SALES)
        code, reply = client.rcpt("customer@elsewhere.invalid")
        assert code == 550 and b"delivers only to" in reply


@pytest.mark.integration
def test_append_to_sent_keeps_keywords(upstream: LocalUpstream) -> None:
    raw, token = _message(SALES, "someone@buyer.test")
    with upstream.imap(SALES) as client:
        typ, _ = client.select("Sent")
        assert typ == "OK"
        _, [permanent] = client.response("PERMANENTFLAGS")
        assert permanent is not None and b"\\*" in permanent
        typ, _ = client.append("Sent", r"(\Seen $mw_op_zhang $mw_rule_ok)", None, raw)
        assert typ == "OK"
    [stored] = upstream.wait_for(SALES, 1, folder="Sent", containing=token, timeout=5)
    assert {"\\Seen", "$mw_op_zhang", "$mw_rule_ok"} <= set(stored.flags)
    assert stored.raw.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


@pytest.mark.integration
def test_stop_smtp_then_start_smtp(upstream: LocalUpstream) -> None:
    raw, token = _message("someone@customer.test", "anyone@customer.test")
    upstream.stop_smtp()
    try:
        for port in (upstream.smtp_port, upstream.submission_port):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((upstream.host, port), timeout=5).close()
        # IMAP keeps working while SMTP is down.
        assert isinstance(upstream.fetch_all(SALES), list)
    finally:
        upstream.start_smtp()
    upstream.inject(raw, ["anyone@customer.test"], sender="someone@customer.test")
    upstream.wait_for("catchall@customer.test", 1, containing=token)


@pytest.mark.integration
def test_a_second_instance_runs_beside_the_first(upstream: LocalUpstream, tmp_path: Path) -> None:
    other = LocalUpstream(tmp_path / "second", [MailAccount("ops@other.test", "ops-secret")], domains=[])
    with other:
        assert other.domains == ["other.test"]
        mine = {upstream.imap_port, upstream.imaps_port, upstream.smtp_port, upstream.submission_port}
        theirs = {other.imap_port, other.imaps_port, other.smtp_port, other.submission_port}
        assert not mine & theirs
        raw, token = _message("x@buyer.test", "ops@other.test")
        other.inject(raw, ["ops@other.test", "nobody@other.test"])
        assert len(other.wait_for("ops@other.test", 1, containing=token)) == 1
        assert len(other.wait_for("catchall@other.test", 1, containing=token)) == 1
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            other.inject(raw, ["sales@company.test"])  # the first instance's domain: not here
    assert not (tmp_path / "second" / "run").exists()  # the private runtime under /tmp is gone
    with socket.create_connection((upstream.host, upstream.imaps_port), timeout=5):
        pass  # the session upstream still runs


def test_missing_servers_name_the_debian_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localupstream.osx, "find_binary", lambda name: None)
    server = LocalUpstream(tmp_path / "none", [MailAccount(SALES, "company-secret")])
    with pytest.raises(UpstreamUnavailable, match="dovecot-imapd dovecot-lmtpd postfix"):
        server.start()
    server.stop()  # idempotent, also when nothing ever started
