"""What the customer will read is what was scanned: a part in any charset Python knows is
decoded before the rules run (UTF-7 and HZ-GB-2312 are 7-bit, so read as ASCII they hide what
they say), a label Python does not know is scanned in every reading a mail program may give
it, and a part that cannot be decoded in its declared charset is held, never passed."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy

import pytest

from tests.integration.conftest import running_gateway, send_one, token
from tests.reliability.conftest import held

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _message(subject: str, body: bytes, charset: str, *, subject_header: str | None = None) -> bytes:
    return (f"From: Zhang <zhang@company.test>\r\nTo: max@buyer.test\r\nSubject: {subject_header or subject}\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n").encode() + body + b"\r\n"


CONTACT = "请加我微信：zhang_private88"
CASES = {
    "utf-7": (CONTACT.encode("utf-7"), "utf-7"),
    "utf-7-ascii": ("Add me on WeChat: zhang_private88".encode("utf-7"), "UTF-7"),
    "hz": (CONTACT.encode("hz"), "HZ-GB-2312"),
    "iso-2022-jp": ("WeChat：zhang_private88 までご連絡ください".encode("iso-2022-jp"), "iso-2022-jp"),
    "unknown-label": (CONTACT.encode("utf-7"), "x-mac-mystery"),
}


@pytest.fixture
async def gw(upstream, tmp_path):  # type: ignore[no-untyped-def]
    async with running_gateway(upstream, tmp_path) as gw:
        yield gw


async def test_a_contact_in_any_known_charset_is_found(gw):
    for name, (body, charset) in CASES.items():
        code, reply = await asyncio.to_thread(send_one, gw, _message(f"{name} {token()}", body, charset))
        assert code == 550 and b"PRIVATE_WECHAT" in reply and b"zhang_private88" in reply, (name, reply)


async def test_a_contact_in_an_encoded_word_subject_is_found(gw):
    subject = "=?utf-7?b?" + base64.b64encode(CONTACT.encode("utf-7")).decode() + "?="
    code, reply = await asyncio.to_thread(send_one, gw, _message("x", b"Quote attached.", "us-ascii",
                                                                 subject_header=subject))
    assert code == 550 and b"PRIVATE_WECHAT" in reply, reply


async def test_a_part_invalid_in_its_charset_is_held(gw):
    t = token()
    code, reply = await asyncio.to_thread(send_one, gw, _message(f"broken {t}", b"Price list +!!! here", "utf-7"))
    assert code == 250 and b"Held for review" in reply, reply
    assert held(gw)[f"broken {t}"].startswith("ATTACHMENT_UNDECODABLE")


async def test_what_was_scanned_is_what_the_customer_reads(gw):
    t = token()
    text = f"报价单 {t}：LED 面板 12 USD"
    code, reply = await asyncio.to_thread(send_one, gw, _message(f"clean {t}", text.encode("utf-7"), "utf-7"))
    assert code == 250 and b"Queued" in reply, reply
    got = await asyncio.to_thread(gw.upstream.wait_for, "catchall@buyer.test", 1, containing=f"clean {t}".encode())
    msg = email.message_from_bytes(got[0].raw, policy=email.policy.default)
    body = msg.get_body(("plain",))
    assert body is not None and text in body.get_content()
