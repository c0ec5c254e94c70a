"""The client side of :class:`~mailwarden.testing.localupstream.LocalUpstream`: what tests, the
demo and the benchmark use to log in to its mailboxes, read them back and inject inbound mail."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

from mailwarden.testing import processes as osx
from mailwarden.testing.processes import UpstreamError


class FetchedMessage(NamedTuple):
    """One message as read back over IMAP: the raw RFC 5322 bytes and its flags/keywords."""

    raw: bytes
    flags: list[str]


class UpstreamClients:
    """Clients of the running servers; mixed into LocalUpstream, which provides the attributes below."""

    host: str
    imap_port: int
    imaps_port: int
    smtp_port: int
    ca_file: Path
    password_for: Callable[[str], str]
    log_tail: Callable[[Literal["dovecot", "postfix", "commands"]], str]

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only :attr:`ca_file` (valid for localhost and the host IP)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def imap(self, address: str, *, starttls: bool = False) -> imaplib.IMAP4:
        """A logged-in imaplib client over IMAPS (or STARTTLS); use it in ``with`` or ``logout()``."""
        ctx = self.client_ssl_context()
        client: imaplib.IMAP4
        if starttls:
            client = imaplib.IMAP4(self.host, self.imap_port, timeout=30)
        else:
            client = imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=ctx, timeout=30)
        try:
            if starttls:
                client.starttls(ctx)
            client.login(address, self.password_for(address))
        except BaseException:
            client.shutdown()
            raise
        return client

    def fetch_all(self, address: str, folder: str = "INBOX") -> list[FetchedMessage]:
        """Every message in *folder* of *address*, oldest first, without marking it read."""
        return list(self.fetch_by_uid(address, folder).values())

    def fetch_by_uid(self, address: str, folder: str = "INBOX", after_uid: int = 0) -> dict[int, FetchedMessage]:
        """The messages of *folder* with a UID above *after_uid*, by UID, without marking them read."""
        with self.imap(address) as client:
            typ, data = client.select(osx.quote_mailbox(folder), readonly=True)
            if typ != "OK":
                raise UpstreamError(f"cannot select {folder!r} of {address}: {data!r}")
            typ, data = client.uid("FETCH", f"{after_uid + 1}:*", "(FLAGS BODY.PEEK[])")
            if typ != "OK":
                raise UpstreamError(f"FETCH failed in {folder!r} of {address}: {data!r}")
        return {uid: FetchedMessage(raw, flags) for uid, raw, flags in osx.parse_fetch_uids(data) if uid > after_uid}

    def wait_for(
        self,
        address: str,
        count: int,
        folder: str = "INBOX",
        timeout: float = 30.0,
        *,
        containing: bytes | None = None,
    ) -> list[FetchedMessage]:
        """Poll until *folder* holds at least *count* messages; TimeoutError otherwise.

        With *containing*, only messages whose raw bytes contain it are counted and returned,
        which lets tests that share one upstream look for their own messages only.
        """
        deadline = time.monotonic() + timeout
        while True:
            messages = self.fetch_all(address, folder)
            if containing is not None:
                messages = [m for m in messages if containing in m.raw]
            if len(messages) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if len(messages) < count:
            raise TimeoutError(
                f"{address} {folder}: {len(messages)} of {count} messages after {timeout:g}s\n"
                f"--- postfix log tail ---\n{self.log_tail('postfix')}"
            )
        return messages

    def inject(self, message: bytes, recipients: list[str], sender: str = "someone@buyer.test") -> None:
        """Deliver *message* as inbound mail from the outside world, through ``smtp_port``."""
        self.inject_many([message], recipients, sender)

    def inject_many(self, messages: list[bytes], recipients: list[str], sender: str = "someone@buyer.test") -> None:
        """Deliver each of *messages* like :meth:`inject`, over one SMTP connection."""
        with smtplib.SMTP(self.host, self.smtp_port, timeout=30) as client:
            for message in messages:
                client.sendmail(sender, recipients, message)
