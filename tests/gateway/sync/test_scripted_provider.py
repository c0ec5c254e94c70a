"""What no Dovecot can be made to show, against a scripted server on port 0 that answers like
QQ Mail: XLIST instead of SPECIAL-USE, IMAP sets only ascending (it answers BAD otherwise)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mailwarden.gateway.config import HostPort, Secret, Upstream
from mailwarden.gateway.sync.upstream import MailboxConnection
from mailwarden.gateway.tls import client_context
from mailwarden.gateway.upstream.budget import ConnectionBudget

CAPABILITY = "* CAPABILITY IMAP4 IMAP4rev1 XLIST MOVE IDLE XAPPLEPUSHSERVICE NAMESPACE CHILDREN ID UIDPLUS\r\n"
ANSWERS = {
    "CAPABILITY": CAPABILITY,
    "ID": '* ID ("name" "com.tencent.mail")\r\n',
    "XLIST": ('* XLIST (\\HasNoChildren \\Inbox) "/" "Inbox"\r\n'
              '* XLIST (\\HasNoChildren) "/" "Sent Messages"\r\n'
              '* XLIST (\\HasNoChildren) "/" "Deleted Messages"\r\n'
              '* XLIST (\\HasNoChildren \\Spam) "/" "Junk"\r\n'
              '* XLIST (\\NoSelect \\HasChildren) "/" "&UXZO1mWHTvZZOQ-"\r\n'
              '* XLIST (\\HasNoChildren) "/" "&UXZO1mWHTvZZOQ-/QQ&kK5O9ouilgU-"\r\n'),
    "EXAMINE": "* 3 EXISTS\r\n* OK [UIDVALIDITY 1625000000] ok\r\n* OK [UIDNEXT 10] ok\r\n",
    "UID": ('* 1 FETCH (UID 3 RFC822.SIZE 10 INTERNALDATE "01-Jan-2026 08:00:00 +0800" '
            'BODY[HEADER.FIELDS (MESSAGE-ID)] {21}\r\nMessage-ID: <a@b>\r\n\r\n)\r\n'),
    "LOGOUT": "* BYE bye\r\n",
}


@contextlib.asynccontextmanager
async def qq_like() -> AsyncIterator[tuple[MailboxConnection, list[str]]]:
    """A connection to the scripted server, and the commands it was sent (tags cut off)."""
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4 IMAP4rev1 ID AUTH=PLAIN AUTH=LOGIN NAMESPACE] QQMail ready\r\n")
        while line := await reader.readline():
            tag, _, command = line.decode().rstrip("\r\n").partition(" ")
            seen.append(command)
            answer = ANSWERS.get(command.split(" ")[0].upper(), "")
            writer.write(f"{answer}{tag} OK done\r\n".encode())
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        upstream = Upstream(imap=HostPort("127.0.0.1", server.sockets[0].getsockname()[1]), imap_tls="none",
                            smtp=HostPort("127.0.0.1", 1), smtp_tls="none", username="sales@company.test",
                            password=Secret("auth-code"), ca_file=None, tls_verify=True, sent_folder="Sent Messages",
                            inbox_folder="INBOX")
        conn = MailboxConnection(upstream, client_context(None, True), budget=ConnectionBudget({"imap": 1}),
                                 holder="test")
        await conn.connect()
        try:
            yield conn, seen
        finally:
            await conn.close()


async def test_xlist_where_there_is_no_special_use_and_id_after_login():
    async with qq_like() as (conn, seen):
        folders = await conn.folders()
    assert [(f.name, f.role) for f in folders] == [
        ("INBOX", "inbox"), ("Sent Messages", "sent"), ("Deleted Messages", "trash"), ("Junk", "junk"),
        ("其他文件夹/QQ邮件订阅", "other")]
    assert [c.split(" ")[0] for c in seen] == ["LOGIN", "CAPABILITY", "ID", "XLIST", "LOGOUT"]
    assert seen[2].startswith('ID ("name" "mailwarden" "version" ')


async def test_every_set_sent_is_ascending_and_compressed():
    async with qq_like() as (conn, seen):
        state = await conn.select("INBOX")
        ids = await conn.header_ids([9, 3, 5, 4, 3])
    assert state.uidvalidity == 1625000000 and state.highestmodseq is None
    assert "UID FETCH 3:5,9 (UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])" in seen
    assert ids[3][0] == "<a@b>" and ids[3][2] is not None and ids[3][2].utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
