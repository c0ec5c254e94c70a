"""Messages the gateway writes to a salesperson: bounces, refusals, warnings, quarantine notes;
and :func:`spool_head`, the part of a spooled message a bounce quotes.

They are put in the shared mailbox's INBOX, tagged for the operator (keyword
``$mw_op_<login>`` and ``X-Mailwarden-Operator``) and sealed
(:func:`~mailwarden.gateway.headers.notice_field`, keyed with the store's key), so that the
inbound sync files them for that salesperson and nobody else.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path

from mailwarden.gateway.headers import decoded, make_header_value, notice_field, split_headers


def build_bounce(*, key: bytes, shared: str, operator: str, rcpts: list[str], reason: str, original: bytes,
                 ref: str = "") -> bytes:
    """A multipart/report (RFC 3464), text in English and Chinese, with the original's headers."""
    domain = shared.rsplit("@", 1)[-1]
    h = split_headers(original)
    subject = decoded(h.get("subject"))[:150]
    reason = reason.replace("\r", " ").replace("\n", " ")
    boundary = f"=_mw_{uuid.uuid4().hex}"
    message_id = make_msgid(domain=domain)
    listed = "\n".join(f"  {r}" for r in rcpts)
    text = (
        f"Your message could not be delivered to:\n{listed}\n\nReason from the mail server:\n  {reason}\n\n"
        f"您的邮件无法投递给：\n{listed}\n\n对方邮件服务器的原因：\n  {reason}\n"
    )
    status = f"Reporting-MTA: dns; {domain}\r\n" + "".join(
        f"\r\nFinal-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp; {reason[:900]}\r\n"
        for r in rcpts
    )
    head = "".join([
        f"From: Mail Delivery System <{shared}>\r\n",
        f"To: {shared}\r\n",
        "Subject: " + make_header_value(f"Undelivered Mail Returned to Sender / 退信: {subject}") + "\r\n",
        f"Date: {format_datetime(localtime())}\r\n",
        f"Message-ID: {message_id}\r\n",
        "Auto-Submitted: auto-replied\r\n",
        f"X-Mailwarden-Operator: {operator}\r\n",
        notice_field(key=key, kind="bounce", ref=ref, message_id=message_id, operator=operator),
        "MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n',
    ])
    b64 = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    parts = [
        head.encode("utf-8"),
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode(),
        b64,
        f"\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n".encode(),
        status.encode("utf-8", "replace"),
        f"\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n".encode(),
        original[: h.body_offset] if h.fields else b"",
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts)


def build_notice(*, key: bytes, shared: str, operator: str, subject: str, text: str, original: bytes | None = None,
                 kind: str = "info", ref: str = "") -> bytes:
    """A plain notice (UTF-8 text, base64), naming the original's subject when given.

    ``X-Mailwarden-Notice: <kind>; ref=<ref>; for=<operator>; seal=…`` lets mail filters (and
    tests) find it, and the sync file it for the operator only.
    """
    domain = shared.rsplit("@", 1)[-1]
    message_id = make_msgid(domain=domain)
    body = text
    if original is not None:
        h = split_headers(original)
        orig_subject = decoded(h.get("subject"))
        body += f"\n\n-- \nOriginal subject / 原邮件主题: {orig_subject}\n"
    head = "".join([
        f"From: mailwarden <{shared}>\r\n",
        f"To: {shared}\r\n",
        "Subject: " + make_header_value(subject[:200]) + "\r\n",
        f"Date: {format_datetime(localtime())}\r\n",
        f"Message-ID: {message_id}\r\n",
        "Auto-Submitted: auto-generated\r\n",
        f"X-Mailwarden-Operator: {operator}\r\n",
        notice_field(key=key, kind=kind, ref=ref, message_id=message_id, operator=operator),
        "MIME-Version: 1.0\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Transfer-Encoding: base64\r\n\r\n",
    ])
    return head.encode("utf-8") + base64.encodebytes(body.encode("utf-8")).replace(b"\n", b"\r\n")


def rejected_notice(*, key: bytes, shared: str, operator: str, subject: str, rcpts: list[str], reason: str,
                    ref: str) -> bytes:
    """What the operator is told when their held message will not be sent: rejected by a
    supervisor (``mailwarden quarantine reject``) or by nobody deciding in time."""
    to = ", ".join(rcpts)
    return build_notice(key=key, shared=shared, operator=operator, subject=f"Not sent / 未发送: {subject}",
                        text=(f"Your held message to {to} will not be sent.\nReason: {reason}\n\n"
                              f"您发给 {to} 的待审核邮件不会发出。\n原因：{reason}\n"),
                        kind="rejected", ref=ref)


def released_notice(*, key: bytes, shared: str, operator: str, subject: str, rcpts: list[str], by: str,
                    note: str, ref: str) -> bytes:
    """What the operator is told when their held message is released (by a supervisor with
    ``mailwarden quarantine release``, or by nobody deciding in time): it goes out now."""
    to = ", ".join(rcpts)
    why = f"\nNote: {note}" if note else ""
    why_zh = f"\n备注：{note}" if note else ""
    return build_notice(key=key, shared=shared, operator=operator, subject=f"Released / 已放行: {subject}",
                        text=(f"Your held message to {to} was released by {by} and is being sent now.{why}\n\n"
                              f"您发给 {to} 的待审核邮件已由 {by} 放行，正在发出。{why_zh}\n"),
                        kind="released", ref=ref)


def damaged_notice(*, key: bytes, shared: str, operator: str, subject: str, rcpts: list[str], reason: str,
                   ref: str) -> bytes:
    """What the operator is told when their message was not sent because its stored copy is not
    what they sent (emptied, replaced or deleted on the gateway after it was accepted)."""
    to = ", ".join(rcpts)
    return build_notice(key=key, shared=shared, operator=operator, subject=f"Not sent / 未发送: {subject}",
                        text=(f"Your message to {to} was not sent: the gateway's stored copy of it was damaged "
                              f"after it was accepted.\nReason: {reason}\nPlease send it again.\n\n"
                              f"您发给 {to} 的邮件未发出：网关在接收后保存的副本已损坏。\n原因：{reason}\n"
                              "请重新发送。\n"),
                        kind="damaged", ref=ref)


HEAD_CHUNK = 64 * 1024


async def spool_head(path: Path, tags: bytes = b"") -> bytes:
    """``tags`` and the start of the spool file: enough that :func:`split_headers` finds in it
    the header block it finds in the whole (what a bounce quotes), without reading a large
    message whole; the whole file when it has no end to its header block."""
    return await asyncio.to_thread(read_head, path, tags)


def read_head(path: Path, tags: bytes) -> bytes:
    buf, want = bytearray(tags), HEAD_CHUNK
    if not path.exists():  # deleted (a damaged spool): the report quotes no header block
        return bytes(buf)
    with path.open("rb") as f:
        while True:
            piece = f.read(want)
            buf += piece
            if not piece:
                return bytes(buf)
            complete = buf.rfind(b"\n") + 1  # parse whole lines only: they read the same in the whole
            end = split_headers(bytes(buf[:complete])).body_offset if complete else 0
            if end < complete or buf[buf.rfind(b"\n", 0, end - 1) + 1:end] in (b"\r\n", b"\n"):
                return bytes(buf)  # the header block ended (a line that is no field, or the blank line)
            want *= 2  # a long header block: read more each time, so the parsing stays linear
