"""Real mail programs against the gateway's IMAP: mbsync, neomutt and curl as installed, and a
Thunderbird-like session replayed byte by byte; then the checks real clients rely on (see the
clients' facts the server is built to): UIDVALIDITY, sizes, partial fetches, BODYSTRUCTURE,
special-use, long command lines.

The gateway syncs a company mailbox of this module's own; zhang owns Acme (buyer.test), li owns
Max (max@gmail.com), boss is an admin who sees every customer's folder."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import PASSWORDS
from .test_imap import deliver, imaps, world  # noqa: F401 (fixtures: the syncing gateway and its mailbox)
from .test_sync import own_upstream, wait_for_mail  # noqa: F401

pytestmark = pytest.mark.integration

ACME = "Customers/Acme Lighting GmbH"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        from tests.conftest import missing_prerequisite
        missing_prerequisite(f"{tool} is not installed")
    return path


def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, capture_output=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


class Wire:
    """A raw IMAP connection over TLS that reads answers exactly as sent (literals included),
    so a test can check their syntax rather than what a client library made of them."""

    def __init__(self, gw, *, login: str | None = "zhang", password: str | None = None) -> None:  # type: ignore[no-untyped-def]
        raw = socket.create_connection(("localhost", gw.gw.bound["imaps"].port), timeout=20)
        self.sock: ssl.SSLSocket = gw.tls().wrap_socket(raw, server_hostname="localhost")
        self.buf = b""
        self.n = 0
        self.greeting = self.line()
        if login:
            tagged, _ = self.cmd(f"LOGIN {login} {password or PASSWORDS[login]}")
            assert tagged.split()[1] == b"OK", tagged

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"the server closed the connection; unread: {self.buf!r}")
        self.buf += data

    def line(self) -> bytes:
        """One response line, with any literals it carries inlined (CRLF kept inside them)."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            head, self.buf = self.buf.split(b"\r\n", 1)
            out += head
            m = re.search(rb"\{(\d+)\}\Z", head)
            if not m:
                return out
            size = int(m.group(1))
            while len(self.buf) < size:
                self._fill()
            out += b"\r\n" + self.buf[:size]
            self.buf = self.buf[size:]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, text: str | bytes) -> tuple[bytes, list[bytes]]:
        """Send one command; the tagged answer and the untagged lines before it."""
        self.n += 1
        tag = f"c{self.n}".encode()
        self.send(tag + b" " + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        untagged: list[bytes] = []
        while True:
            got = self.line()
            if got.startswith(tag + b" "):
                return got, untagged
            untagged.append(got)


def literal_of(line: bytes, item: bytes) -> bytes:
    """The bytes of the literal that follows ``item`` in a FETCH line."""
    m = re.search(re.escape(item) + rb" \{(\d+)\}\r\n", line)
    assert m, (item, line[:300])
    return line[m.end():m.end() + int(m.group(1))]


async def acme_mail(world, own_upstream, subject: str, body: str = "Hello\r\n") -> None:  # type: ignore[no-untyped-def]
    await deliver(own_upstream, "eva@buyer.test", subject, body)
    await wait_for_mail(world.store, subject)


# --- mbsync -----------------------------------------------------------------------------------

def mbsyncrc(world, home: Path) -> Path:  # type: ignore[no-untyped-def]
    rc = home / "mbsyncrc"
    (home / "mail").mkdir()
    rc.write_text(f"""IMAPAccount gateway
Host localhost
Port {world.gw.bound["imaps"].port}
User zhang
Pass {PASSWORDS["zhang"]}
SSLType IMAPS
CertificateFile {world.cfg.listen.tls_cert}

IMAPStore gateway
Account gateway

MaildirStore laptop
Path {home}/mail/
Inbox {home}/mail/INBOX
SubFolders Verbatim

Channel zhang
Far :gateway:
Near :laptop:
Patterns *
Create Near
Sync All
SyncState *
""")
    return rc


def maildir_subjects(box: Path) -> dict[str, Path]:
    """Subject -> file of every message in a Maildir folder."""
    out: dict[str, Path] = {}
    for sub in ("cur", "new"):
        for f in sorted((box / sub).glob("*")) if (box / sub).is_dir() else ():
            m = re.search(rb"^Subject: (.*?)\r?$", f.read_bytes(), re.M)
            assert m, f
            assert m.group(1).decode() not in out, f"{m.group(1)!r} downloaded twice"
            out[m.group(1).decode()] = f
    return out


def mbsync(rc: Path) -> None:
    done = run(need("mbsync"), "-c", str(rc), "-a")
    assert done.returncode == 0, done.stderr.decode()


async def test_mbsync_copies_the_whole_view_then_only_new_mail_then_a_flag_back(world, own_upstream, tmp_path):
    tag = uuid.uuid4().hex[:6]
    await acme_mail(world, own_upstream, f"first {tag}")
    await deliver(own_upstream, "Max <max@gmail.com>", f"li only {tag}")
    await wait_for_mail(world.store, f"li only {tag}")
    home = tmp_path / "laptop"
    home.mkdir()
    rc = mbsyncrc(world, home)

    await asyncio.to_thread(mbsync, rc)
    mail = home / "mail"
    assert {p.name for p in mail.iterdir()} >= {"INBOX", "Drafts", "Sent", "Trash", "Customers"}
    assert not (mail / "Customers" / "Max Buyer").exists()
    assert f"first {tag}" in maildir_subjects(mail / "INBOX")
    assert f"first {tag}" in maildir_subjects(mail / ACME)
    assert not any(f"li only {tag}" in s for box in mail.rglob("cur") for s in maildir_subjects(box.parent))

    # Incremental: the second run fetches the new message only (a duplicate fails maildir_subjects)
    await acme_mail(world, own_upstream, f"second {tag}")
    await asyncio.to_thread(mbsync, rc)
    inbox = maildir_subjects(mail / "INBOX")
    assert {f"first {tag}", f"second {tag}"} <= set(inbox)

    # zhang flags "first" on the laptop (Maildir flag F); the next run pushes it to the gateway
    f = inbox[f"first {tag}"]
    base, _, flags = f.name.partition(":2,")
    f.rename(f.with_name(f"{base}:2,{''.join(sorted(set(flags) | {'F'}))}"))
    await asyncio.to_thread(mbsync, rc)

    def flags_seen() -> tuple[bytes, bytes]:
        with imaps(world) as z, imaps(world, "boss", "boss-password") as boss:
            out = []
            for c, box in ((z, "INBOX"), (boss, ACME)):
                c.select(f'"{box}"', readonly=True)
                uid = c.uid("SEARCH", "SUBJECT", f'"first {tag}"')[1][0].split()[-1]
                out.append(c.uid("FETCH", uid, "(FLAGS)")[1][0])
            return out[0], out[1]

    zhang, boss = await asyncio.to_thread(flags_seen)
    assert b"\\Flagged" in zhang
    assert b"\\Flagged" not in boss  # flags are each user's own


# --- neomutt ----------------------------------------------------------------------------------

async def test_neomutt_opens_the_inbox_and_lists_it(world, own_upstream, tmp_path):
    need("neomutt")
    script = need("script")  # neomutt needs a terminal: util-linux's script gives it one
    tag = uuid.uuid4().hex[:6]
    await acme_mail(world, own_upstream, f"mutt {tag}")
    rc = tmp_path / "muttrc"
    rc.write_text(f"""set imap_user = zhang
set imap_pass = {PASSWORDS["zhang"]}
set folder = imaps://localhost:{world.gw.bound["imaps"].port}/
set spoolfile = +INBOX
set certificate_file = {world.cfg.listen.tls_cert}
set ssl_force_tls = yes
set header_cache = ""
set message_cachedir = ""
set record = ""
set sort = reverse-date
""")
    log = tmp_path / "neomutt.log"
    env = {"HOME": str(tmp_path), "TERM": "xterm", "COLUMNS": "160", "LINES": "40", "PATH": os.environ["PATH"]}
    done = await asyncio.to_thread(run, script, "-qec", f"neomutt -n -F {rc} -d 2 -l {log} -e 'push <exit>'",
                                   "/dev/null", env=env)
    screen = done.stdout.decode("utf-8", "replace")
    assert done.returncode == 0, screen[-2000:]
    assert f"mutt {tag}" in screen, screen[-2000:]
    assert "+INBOX [Msgs:" in screen


# --- curl -------------------------------------------------------------------------------------

def curl(world, path: str, *extra: str) -> str:  # type: ignore[no-untyped-def]
    done = run(need("curl"), "-sS", "--cacert", str(world.cfg.listen.tls_cert), "-u", f"zhang:{PASSWORDS['zhang']}",
               "--url", f"imaps://localhost:{world.gw.bound['imaps'].port}/{path}", *extra)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def test_curl_lists_fetches_by_uid_and_searches(world, own_upstream):
    tag = uuid.uuid4().hex[:6]
    await acme_mail(world, own_upstream, f"curl {tag}", f"Body of {tag}\r\n")

    listing = await asyncio.to_thread(curl, world, "")
    names = re.findall(r'^\* LIST \((.*?)\) "/" "?(.*?)"?\r?$', listing, re.M)
    assert ("\\HasNoChildren \\Sent", "Sent") in names
    assert any(n == ACME for _, n in names) and not any("Max" in n for _, n in names)

    found = await asyncio.to_thread(curl, world, f"INBOX?SUBJECT%20%22curl%20{tag}%22")
    uids = re.fullmatch(r"\* SEARCH ([\d ]+)\r?\n", found)
    assert uids, found
    uid = uids.group(1).split()[-1]
    message = await asyncio.to_thread(curl, world, f"INBOX;UID={uid}")
    assert f"Subject: curl {tag}" in message and f"Body of {tag}" in message
    nothing = await asyncio.to_thread(curl, world, "INBOX", "-X", "UID SEARCH SUBJECT nosuchthing")
    assert nothing.strip() == "* SEARCH"


# --- a Thunderbird-like session -------------------------------------------------------------

LIST_LINE = re.compile(rb'\* LIST \(((?:\\[A-Za-z]+ ?)*)\) "/" ("[^"]*"|[^ "]+)\Z')
STATUS_LINE = re.compile(rb'\* STATUS ("[^"]*"|[^ "]+) \(UIDNEXT (\d+) MESSAGES (\d+) UNSEEN (\d+) RECENT (\d+)\)\Z')
FLAGS_LINE = re.compile(rb"\* (\d+) FETCH \((?:UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+))\)\Z")


async def test_a_thunderbird_session_gets_well_formed_answers_and_new_mail_while_idle(world, own_upstream):
    tag = uuid.uuid4().hex[:6]
    await acme_mail(world, own_upstream, f"before {tag}")
    tb = await asyncio.to_thread(Wire, world)
    try:
        def opening() -> tuple[int, int]:
            tagged, caps = tb.cmd("CAPABILITY")
            words = caps[0].split()
            assert words[:2] == [b"*", b"CAPABILITY"] and b"IMAP4rev1" in words, caps
            assert {b"IDLE", b"SPECIAL-USE", b"CONDSTORE", b"UIDPLUS", b"MOVE"} <= set(words)
            assert b"XLIST" not in words and b"UIDONLY" not in words

            tagged, ident = tb.cmd('ID ("name" "Thunderbird" "version" "128.5.0")')
            assert tagged.split()[1] == b"OK" and re.fullmatch(rb'\* ID (NIL|\(("[^"]*" ("[^"]*"|NIL) ?)*\))', ident[0]), ident

            tagged, listed = tb.cmd('LIST "" "*" RETURN (SPECIAL-USE)')
            assert tagged.split()[1] == b"OK"
            boxes = {}
            for line in listed:
                m = LIST_LINE.fullmatch(line)
                assert m, line
                boxes[m.group(2).strip(b'"').decode()] = m.group(1).decode()
            assert "\\Sent" in boxes["Sent"] and "\\Trash" in boxes["Trash"] and "\\Drafts" in boxes["Drafts"]

            for name, attrs in boxes.items():
                if "\\Noselect" in attrs:
                    continue
                tagged, status = tb.cmd(f'STATUS "{name}" (UIDNEXT MESSAGES UNSEEN RECENT)')
                assert tagged.split()[1] == b"OK" and len(status) == 1 and STATUS_LINE.fullmatch(status[0]), status
                assert STATUS_LINE.fullmatch(status[0]).group(1).strip(b'"').decode() == name

            tagged, selected = tb.cmd("SELECT INBOX (CONDSTORE)")
            assert tagged.split()[1] == b"OK" and b"[READ-WRITE]" in tagged
            text = b"\n".join(selected)
            exists = int(re.search(rb"^\* (\d+) EXISTS$", text, re.M).group(1))
            uidnext = int(re.search(rb"^\* OK \[UIDNEXT (\d+)\]", text, re.M).group(1))
            assert re.search(rb"^\* OK \[UIDVALIDITY [1-9]\d*\]", text, re.M)
            assert re.search(rb"^\* OK \[HIGHESTMODSEQ [1-9]\d*\]", text, re.M)  # RFC 7162 3.1.2.1

            tagged, flags = tb.cmd("UID FETCH 1:* (FLAGS)")
            assert tagged.split()[1] == b"OK" and len(flags) == exists, flags
            seqs = []
            for line in flags:
                m = FLAGS_LINE.fullmatch(line)
                assert m, line
                seqs.append(int(m.group(1)))
            assert seqs == list(range(1, exists + 1))
            return exists, uidnext

        exists, uidnext = await asyncio.to_thread(opening)

        def idle() -> list[bytes]:
            tb.send(b"idle1 IDLE\r\n")
            assert tb.line().startswith(b"+ ")
            seen = []
            tb.sock.settimeout(15)
            while not re.fullmatch(rb"\* \d+ EXISTS", seen[-1] if seen else b""):
                seen.append(tb.line())
            tb.sock.settimeout(20)
            tb.send(b"DONE\r\n")
            while not seen[-1].startswith(b"idle1 "):
                seen.append(tb.line())
            return seen

        waiter = asyncio.create_task(asyncio.to_thread(idle))
        await asyncio.sleep(0.5)
        await deliver(own_upstream, "eva@buyer.test", f"while idle {tag}")
        seen = await asyncio.wait_for(waiter, 30)
        assert seen[-1].split()[1] == b"OK", seen
        assert int(re.fullmatch(rb"\* (\d+) EXISTS", [s for s in seen if s.endswith(b"EXISTS")][0]).group(1)) > exists

        def fetch_new() -> list[bytes]:
            tagged, got = tb.cmd(f"UID FETCH {uidnext}:* (UID RFC822.SIZE BODY.PEEK[])")
            assert tagged.split()[1] == b"OK", tagged
            return got

        got = await asyncio.to_thread(fetch_new)
        fetched = [g for g in got if b" FETCH (" in g]
        assert fetched, got
        line = fetched[-1]
        assert re.match(rb"\* \d+ FETCH \(UID (\d+) RFC822.SIZE (\d+) BODY\[\] \{\d+\}\r\n", line), line[:120]
        body = literal_of(line, b"BODY[]")
        assert int(re.search(rb"RFC822.SIZE (\d+)", line).group(1)) == len(body)
        assert f"Subject: while idle {tag}".encode() in body
        assert line.endswith(b")")
    finally:
        await asyncio.to_thread(tb.close)


# --- what clients rely on -------------------------------------------------------------------

async def test_uidvalidity_is_positive_below_2_31_and_stable_across_connections(world, own_upstream):
    await acme_mail(world, own_upstream, f"uidvalidity {uuid.uuid4().hex[:6]}")

    def uidvalidities() -> dict[str, int]:
        with Wire(world) as c:
            out = {}
            for box in ("INBOX", "Drafts", "Sent", "Trash", ACME):
                _, status = c.cmd(f'STATUS "{box}" (UIDVALIDITY)')
                out[box] = int(re.search(rb"UIDVALIDITY (\d+)", status[0]).group(1))
                tagged, selected = c.cmd(f'EXAMINE "{box}"')
                assert f"[UIDVALIDITY {out[box]}]".encode() in b"".join(selected), (box, selected)
            return out

    first = await asyncio.to_thread(uidvalidities)
    assert all(0 < v < 2**31 for v in first.values()), first
    await acme_mail(world, own_upstream, f"uidvalidity {uuid.uuid4().hex[:6]}")
    assert await asyncio.to_thread(uidvalidities) == first


MULTIPART = ("--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attached price list.\r\n"
             "--b1\r\nContent-Type: application/pdf; name=\"prices.pdf\"\r\n"
             "Content-Disposition: attachment; filename=\"prices.pdf\"\r\nContent-Language: en\r\n"
             "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJeLjz9MK\r\n--b1--\r\n")


async def test_sizes_partial_fetches_and_bodystructure_are_what_clients_expect(world, own_upstream):
    tag = uuid.uuid4().hex[:6]
    subject = f"price list {tag}"
    await asyncio.to_thread(own_upstream.inject, (
        f"From: eva@buyer.test\r\nTo: sales@company.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{tag}@buyer.test>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n{MULTIPART}').encode(),
        ["sales@company.test"], "eva@buyer.test")
    await wait_for_mail(world.store, subject)

    def check() -> None:
        with Wire(world) as c:
            c.cmd("EXAMINE INBOX")
            _, every = c.cmd("FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])")
            for line in every:
                size = int(re.search(rb"RFC822.SIZE (\d+)", line).group(1))
                assert size == len(literal_of(line, b"BODY[]")), line[:100]
            _, found = c.cmd(f'UID SEARCH SUBJECT "{subject}"')
            uid = found[0].split()[-1].decode()
            _, got = c.cmd(f"UID FETCH {uid} (RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE)")
            line = got[0]
            whole = literal_of(line, b"BODY[]")
            size = len(whole)
            # Thunderbird's last chunk: exactly the remainder; past the end: an empty string
            _, tail = c.cmd(f"UID FETCH {uid} (BODY.PEEK[]<{size - 10}.65536>)")
            assert literal_of(tail[0], f"BODY[]<{size - 10}>".encode()) == whole[-10:]
            _, past = c.cmd(f"UID FETCH {uid} (BODY.PEEK[]<{size + 100}.65536>)")
            assert re.search(rb'BODY\[\]<\d+> (""|\{0\}\r\n)', past[0]), past
            # RFC 3501 7.4.2: multipart extension data (subtype params), the part's disposition and language
            structure = line[line.index(b"BODYSTRUCTURE ("):]
            assert b'"mixed" ("boundary" "b1")' in structure, structure
            assert re.search(rb'\("attachment" \("filename" "prices.pdf"\)\) (\("en"\)|"en")', structure), structure
            assert b'("name" "prices.pdf")' in structure
            _, part = c.cmd(f"UID FETCH {uid} (BODY.PEEK[2])")
            assert literal_of(part[0], b"BODY[2]") == b"JVBERi0xLjQKJeLjz9MK"
    await asyncio.to_thread(check)


async def test_special_use_shows_in_plain_list_and_lsub(world):
    def lists() -> tuple[list[bytes], list[bytes]]:
        with Wire(world) as c:
            return c.cmd('LIST "" "*"')[1], c.cmd('LSUB "" "*"')[1]

    listed, subscribed = await asyncio.to_thread(lists)
    for lines, kind in ((listed, b"LIST"), (subscribed, b"LSUB")):
        text = b"\n".join(lines)
        for box, use in ((b"Sent", b"\\Sent"), (b"Drafts", b"\\Drafts"), (b"Trash", b"\\Trash")):
            assert re.search(rb"^\* " + kind + rb" \([^)]*" + re.escape(use) + rb'[^)]*\) "/" "?' + box + rb'"?$', text, re.M), (kind, box, text)


async def test_a_64_kb_command_line_is_accepted(world, own_upstream):
    await acme_mail(world, own_upstream, f"long line {uuid.uuid4().hex[:6]}")

    def long_fetch() -> tuple[int, bytes, list[bytes]]:
        with Wire(world) as c:
            c.cmd("SELECT INBOX")
            uids = ",".join(str(n) for n in range(1, 30000, 2))[:64000].rsplit(",", 1)[0]  # 1,3,5,… unbounded UID sets
            command = f"UID FETCH {uids},1:* (UID FLAGS)"
            tagged, got = c.cmd(command)
            return len(command), tagged, got

    length, tagged, got = await asyncio.to_thread(long_fetch)
    assert length > 63000
    assert tagged.split()[1] == b"OK", tagged
    assert got and all(b" FETCH (UID " in g for g in got)
