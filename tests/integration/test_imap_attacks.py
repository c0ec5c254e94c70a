"""A salesperson trying to read a colleague's mail through the gateway's IMAP, and a stranger
trying before logging in.  zhang owns Acme; li owns Max Buyer, whose mail ("secret of li …")
zhang must never see, count or change, whatever names, ranges, literals or SASL tricks zhang
uses.  Each test is named after what it prevents."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import uuid

import pytest

from .conftest import PASSWORDS
from .test_imap import deliver, world  # noqa: F401 (fixtures: the syncing gateway and its mailbox)
from .test_imap_clients import Wire
from .test_sync import own_upstream, wait_for_mail  # noqa: F401

pytestmark = pytest.mark.integration

LI_BOX = "Customers/Max Buyer"
NAMES = (
    LI_BOX, "customers/max buyer", "CUSTOMERS/MAX BUYER", f"{LI_BOX}/", f"/{LI_BOX}", f"{LI_BOX}/.", "Customers//Max Buyer",
    "Customers/Acme Lighting GmbH/../Max Buyer", "INBOX/../Customers/Max Buyer", "Customers/Max%20Buyer",
    "Customers/Max Buyer\u0000", "Customers/Max*", "Customers/Max%",
    "&AEM-ustomers/Max Buyer",          # mUTF-7 spelling a printable ASCII letter (not canonical)
    "Customers/Max&ACA-Buyer",          # the space, encoded
    "Customers&AC8-Max Buyer",          # the hierarchy delimiter, encoded
    "Customers/Max Buyer&-",            # a literal "&" appended
    "Pool", "pool", "Retention", "~li/INBOX", "#shared/Customers/Max Buyer", "Other Users/li/INBOX",
)


@pytest.fixture
async def secret(world, own_upstream) -> str:  # noqa: F811
    """Subject of a message only li may see."""
    subject = f"secret of li {uuid.uuid4().hex[:6]}"
    await deliver(own_upstream, "Max <max@gmail.com>", subject, f"Price for li only {subject}\r\n")
    await wait_for_mail(world.store, subject)

    def li_sees_it() -> bytes:
        with Wire(world, login="li") as li:
            li.cmd(f'EXAMINE "{LI_BOX}"')
            return li.cmd(f'SEARCH SUBJECT "{subject}"')[1][0]

    assert re.fullmatch(rb"\* SEARCH \d+", await asyncio.to_thread(li_sees_it))  # else the attacks prove nothing
    return subject


def ok(tagged: bytes) -> bool:
    return tagged.split()[1] == b"OK"


def li_count(world) -> int:  # type: ignore[no-untyped-def]  # noqa: F811
    with Wire(world, login="li") as li:
        _, status = li.cmd(f'STATUS "{LI_BOX}" (MESSAGES)')
        return int(re.search(rb"MESSAGES (\d+)", status[0]).group(1))


def quoted(name: str) -> bytes:
    return b'"' + name.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(name: str) -> bytes:
    raw = name.encode()
    return b"{%d+}\r\n" % len(raw) + raw


async def test_no_spelling_of_another_users_folder_opens_or_counts_it(world, secret):  # noqa: F811
    def attempts() -> dict[str, bytes]:
        out = {}
        with Wire(world) as z:
            for name in NAMES:
                for form in (quoted(name), literal(name)):
                    for verb in (b"SELECT ", b"EXAMINE ", b"STATUS "):
                        tail = b" (MESSAGES UIDNEXT UNSEEN)" if verb == b"STATUS " else b""
                        tagged, untagged = z.cmd(verb + form + tail)
                        out[f"{verb.decode()}{form!r}"] = tagged + b"".join(untagged)
        return out

    for what, answer in (await asyncio.to_thread(attempts)).items():
        assert answer.split()[1] in (b"NO", b"BAD"), (what, answer)
        assert b"EXISTS" not in answer and b"MESSAGES" not in answer.split(b"\r\n")[0], (what, answer)


LIST_COMMANDS = (
    'LIST "" "*"', 'LIST "" "%"', 'LIST "" "%/%"', 'LIST "" "*Max*"', 'LIST "" "Customers/*"', 'LIST "Customers/" "*"',
    'LIST "Customers" "/*"', 'LIST "" "*" RETURN (SPECIAL-USE CHILDREN SUBSCRIBED)', 'LIST (REMOTE) "" "*"',
    'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"', 'LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))', 'LIST "~li/" "*"',
    'LIST "" "~li*"', 'LIST "#shared/" "*"', 'LIST "" ("Customers/Max Buyer" "Pool" "Retention")', 'LSUB "" "*"',
    'LIST "" "Customers/Max Buyer"', 'LIST "" "customers/max buyer"', 'LIST "" "Pool"', 'LIST "" "Retention"',
    'LIST "" "Customers/Max&ACA-Buyer"',
)


async def test_list_patterns_never_reveal_another_users_folder(world, secret):  # noqa: F811
    def listings() -> dict[str, bytes]:
        with Wire(world) as z:
            z.cmd('SUBSCRIBE "Customers/Max Buyer"')  # a subscription to it must not make it appear either
            return {c: b"\n".join(z.cmd(c)[1]) for c in LIST_COMMANDS}

    for command, answer in (await asyncio.to_thread(listings)).items():
        assert b"Max" not in answer and b"Pool" not in answer and b"Retention" not in answer, (command, answer)


async def test_uid_ranges_and_searches_stay_inside_the_users_view(world, secret):  # noqa: F811
    def sweep() -> bytes:
        seen = []
        with Wire(world) as z:
            for box in ("INBOX", "Customers/Acme Lighting GmbH", "Sent", "Drafts", "Trash"):
                z.cmd(f'SELECT "{box}"')
                for command in ("UID FETCH 1:4294967295 (UID BODY.PEEK[])", "UID FETCH *:1 (BODY.PEEK[HEADER])",
                                "UID FETCH 4294967295 (BODY.PEEK[])", "UID FETCH 1:* (ENVELOPE BODYSTRUCTURE)",
                                "FETCH 1:* (BODY.PEEK[TEXT])", "UID FETCH 0:* (UID)", "FETCH 1:4294967295 (UID)",
                                f'UID SEARCH OR SUBJECT "{secret}" FROM "max@gmail.com"', 'SEARCH TEXT "li only"',
                                f'UID SEARCH RETURN (ALL COUNT) HEADER Subject "{secret}"', "UID SEARCH UID 1:4294967295",
                                "SEARCH ALL", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)"):
                    tagged, got = z.cmd(command)
                    seen.append(b"\n".join(got) + b"\n" + tagged)
        return b"\n".join(seen)

    everything = await asyncio.to_thread(sweep)
    assert secret.encode() not in everything and b"max@gmail.com" not in everything
    assert b"li only" not in everything


async def test_copy_move_and_append_cannot_put_mail_into_another_users_folder(world, secret):  # noqa: F811
    before = await asyncio.to_thread(li_count, world)

    def writes() -> dict[str, bytes]:
        out = {}
        with Wire(world) as z:
            z.cmd("SELECT INBOX")
            for name in (LI_BOX, "customers/max buyer", "Pool", "Retention", "Customers/Max&ACA-Buyer"):
                for verb in ("COPY 1:*", "UID COPY 1:*", "MOVE 1:*", "UID MOVE 1:*"):
                    out[f"{verb} {name}"] = z.cmd(f'{verb} "{name}"')[0]
                mail = b"From: zhang@company.test\r\nSubject: planted\r\n\r\nx\r\n"
                out[f"APPEND {name}"] = z.cmd(quoted(name) .join((b"APPEND ", b" {%d+}\r\n" % len(mail) + mail)))[0]
            out["CREATE it"] = z.cmd(f'CREATE "{LI_BOX}"')[0]
            out["RENAME it"] = z.cmd(f'RENAME "{LI_BOX}" "Mine"')[0]
            out["DELETE it"] = z.cmd(f'DELETE "{LI_BOX}"')[0]
            # zhang's own folder named like li's, made beside INBOX, must not be li's
            out["CREATE look-alike"] = z.cmd('CREATE "Max Buyer"')[0]
        return out

    answers = await asyncio.to_thread(writes)
    for what, tagged in answers.items():
        if what != "CREATE look-alike":
            assert not ok(tagged), (what, tagged)
    assert await asyncio.to_thread(li_count, world) == before

    def li_mail() -> bytes:
        with Wire(world, login="li") as li:
            li.cmd(f'EXAMINE "{LI_BOX}"')
            return b"\n".join(li.cmd("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1])

    assert b"planted" not in await asyncio.to_thread(li_mail)
    # and zhang's look-alike is empty, not li's folder under another name
    if ok(answers["CREATE look-alike"]):
        def own() -> bytes:
            with Wire(world) as z:
                return z.cmd('STATUS "Max Buyer" (MESSAGES)')[1][0]
        assert b"MESSAGES 0" in await asyncio.to_thread(own)


async def test_commands_pipelined_before_a_failed_login_do_nothing(world, secret):  # noqa: F811
    def pipelined() -> bytes:
        with Wire(world, login=None) as c:
            c.send(b"a LOGIN zhang wrong-password\r\nb SELECT \"Customers/Max Buyer\"\r\nc UID FETCH 1:* (BODY[])\r\n"
                   b"d STATUS INBOX (MESSAGES)\r\ne LIST \"\" \"*\"\r\nf SEARCH ALL\r\ng NOOP\r\n")
            lines = []
            while not lines or not lines[-1].startswith(b"g "):
                lines.append(c.line())
            return b"\n".join(lines)

    answer = await asyncio.to_thread(pipelined)
    assert re.search(rb"^a NO", answer, re.M), answer
    for tag in b"bcdef":
        assert re.search(rb"^" + bytes([tag]) + rb" (BAD|NO)", answer, re.M), answer
    assert b"* LIST" not in answer and b"* STATUS" not in answer and b"EXISTS" not in answer and secret.encode() not in answer


async def test_commands_sent_in_the_clear_with_starttls_are_not_run_after_the_handshake(world):  # noqa: F811
    def inject() -> bytes:
        with socket.create_connection(("localhost", world.gw.bound["imap"].port), timeout=10) as raw:
            assert raw.recv(4096).startswith(b"* OK")
            raw.sendall(f"a STARTTLS\r\nb LOGIN zhang {PASSWORDS['zhang']}\r\nc SELECT INBOX\r\n".encode())
            got = b""
            try:
                while b"\r\n" not in got:
                    more = raw.recv(4096)
                    if not more:
                        break
                    got += more
            except OSError:
                pass
            try:  # the server may still go on to TLS; nothing after it may answer b or c
                tls = world.tls().wrap_socket(raw, server_hostname="localhost")
                tls.settimeout(2)
                got += b"|TLS|" + tls.recv(4096)
            except (OSError, TimeoutError):
                pass
            return got

    answer = await asyncio.to_thread(inject)
    assert not re.search(rb"^b |^c |EXISTS", answer, re.M), answer
    assert not re.search(rb"\|TLS\|[bc] ", answer), answer


async def test_huge_literals_are_refused_before_their_bytes_are_read(world):  # noqa: F811
    def attempts() -> dict[str, bytes]:
        out = {}
        with Wire(world) as z:
            # synchronizing: refused instead of "+ go ahead", and the connection goes on
            tagged, _ = z.cmd(b"APPEND Drafts {999999999}")
            out["sync"] = tagged
            out["after sync"] = z.cmd("NOOP")[0]
        with Wire(world) as z:
            # LITERAL+: the bytes are already coming; BAD and the connection closed (nothing is buffered)
            z.send(b"x APPEND Drafts {999999999+}\r\nSubject: x\r\n")
            lines = []
            try:
                while True:
                    lines.append(z.line())
            except (ConnectionError, OSError):
                pass
            out["non-sync"] = b"\n".join(lines)
        return out

    got = await asyncio.to_thread(attempts)
    assert got["sync"].split()[1] in (b"NO", b"BAD") and ok(got["after sync"]), got
    assert re.search(rb"^x (BAD|NO)", got["non-sync"], re.M), got
    assert b"* BYE" in got["non-sync"], got


async def test_a_stranger_cannot_make_the_gateway_buffer_a_big_literal_before_login(world):  # noqa: F811
    def before_login() -> bytes:
        with Wire(world, login=None) as c:
            c.send(b"a LOGIN {10000000}\r\n")
            return c.line()

    assert not (await asyncio.to_thread(before_login)).startswith(b"+")


def plain(authzid: str, login: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{login}\0{password}".encode()).decode()


async def test_authenticate_plain_with_another_users_authzid_never_gives_their_view(world, secret):  # noqa: F811
    def attempt() -> tuple[bytes, bytes]:
        with Wire(world, login=None) as c:
            tagged, _ = c.cmd(f"AUTHENTICATE PLAIN {plain('li', 'zhang', PASSWORDS['zhang'])}")
            if not ok(tagged):
                return tagged, b""
            c.cmd("SELECT INBOX")
            listed = b"\n".join(c.cmd('LIST "" "*"')[1])
            found = b"\n".join(c.cmd(f'SEARCH SUBJECT "{secret}"')[1])
            return tagged, listed + found

    tagged, seen = await asyncio.to_thread(attempt)
    assert b"Max" not in seen and not re.search(rb"\* SEARCH \d", seen), seen


async def test_authenticate_plain_with_another_users_authzid_is_refused(world):  # noqa: F811
    def attempt() -> bytes:
        with Wire(world, login=None) as c:
            return c.cmd(f"AUTHENTICATE PLAIN {plain('li', 'zhang', PASSWORDS['zhang'])}")[0]

    tagged = await asyncio.to_thread(attempt)
    assert tagged.split()[1] == b"NO", tagged


async def test_authenticate_plain_with_ones_own_authzid_still_works(world):  # noqa: F811
    def attempt() -> bytes:
        with Wire(world, login=None) as c:
            return c.cmd(f"AUTHENTICATE PLAIN {plain('zhang', 'zhang', PASSWORDS['zhang'])}")[0]

    assert ok(await asyncio.to_thread(attempt))
