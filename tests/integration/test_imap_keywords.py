"""Keywords a client sets are announced in the mailbox's FLAGS, as imaptest's checker expects.

RFC 3501 §6.3.1 / §7.2.6 (RFC 9051 §7.3.5): SELECT's FLAGS response lists the flags defined in
the mailbox, and a client records each FLAGS update; a keyword a message carries is defined, so
it belongs in FLAGS, and a STORE that brings a new one in is followed by an untagged FLAGS with
it (Dovecot does both).  imaptest's stress run reports the gateway's answers as "Keyword used
without being in FLAGS".
"""

from __future__ import annotations

import asyncio
import imaplib
import re

import pytest

from .conftest import PASSWORDS, running_gateway

pytestmark = pytest.mark.integration

LISTEN = {"imap": "127.0.0.1:0", "imaps": "127.0.0.1:0"}


def flags_response(c: imaplib.IMAP4) -> bytes:
    """The last untagged FLAGS the server sent (imaplib keeps them by name)."""
    got = c.untagged_responses.pop("FLAGS", [b""])
    return got[-1]


async def test_a_keyword_in_use_is_announced_in_flags(upstream, tmp_path):
    async with running_gateway(upstream, tmp_path, listen=LISTEN) as gw:
        def run() -> tuple[bytes, bytes]:
            with imaplib.IMAP4_SSL("localhost", gw.gw.bound["imaps"].port, ssl_context=gw.tls(), timeout=30) as c:
                c.login("zhang", PASSWORDS["zhang"])
                assert c.append("Drafts", "(\\Draft)", None, b"Subject: k\r\n\r\nx\r\n")[0] == "OK"
                c.select("Drafts")
                c.untagged_responses.pop("FLAGS", None)
                assert c.uid("STORE", "1:*", "+FLAGS", "($Label1)")[0] == "OK"
                after_store = flags_response(c)
                c.select("Drafts")
                return after_store, flags_response(c)

        after_store, reselected = await asyncio.to_thread(run)
        assert re.search(rb"\$Label1", reselected), reselected  # SELECT: FLAGS lists the mailbox's keywords
        assert re.search(rb"\$Label1", after_store), after_store  # STORE: an untagged FLAGS with the new one
