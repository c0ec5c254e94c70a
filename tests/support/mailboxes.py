"""Full company mailboxes for tests and benchmarks: many mixed messages, put straight into the
lab Dovecot's Maildir (thousands in a second, where APPEND would take minutes).

``mixed_messages(n)`` makes ``n`` messages like a sales mailbox's (plain quotes, Chinese and
German text in several charsets, HTML with inline images, PDF-sized attachments, replies with
quoted history), deterministic for a seed; ``fill_maildir`` writes them as new mail of one
account's folder, as Dovecot's LMTP would, and Dovecot gives them UIDs when a client next looks.
"""

from __future__ import annotations

import base64
import os
import pwd
import random
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .localupstream import LocalUpstream

_TEXTS = [
    ("utf-8", "Dear Mr. Müller,\r\nplease find our quotation for 2,000 pcs LED panel lights attached.\r\n"),
    ("gb18030", "您好，附件是我们最新的报价单，请查收。交货期大约三十天。\r\n"),
    ("big5", "您好，請查收附件中的報價單。\r\n"),
    ("iso-8859-1", "Sehr geehrte Damen und Herren, anbei unser Angebot.\r\n"),
    ("us-ascii", "Hello, we are interested in your products. Please send the catalogue and prices.\r\n"),
]


def mixed_messages(n: int, *, seed: int = 7, domain: str = "buyer.test", to: str = "sales@company.test") -> Iterator[bytes]:
    rnd = random.Random(seed)
    for i in range(n):
        charset, text = _TEXTS[i % len(_TEXTS)]
        sender = f"buyer{rnd.randrange(200)}@{domain if i % 3 else 'gmail.com'}"
        head = (f"From: Buyer {i} <{sender}>\r\nTo: {to}\r\nSubject: inquiry {i}\r\n"
                f"Date: Mon, 7 Dec 2026 {i % 24:02d}:{i % 60:02d}:00 +0800\r\nMessage-ID: <m{i}.{seed}@{domain}>\r\n"
                "MIME-Version: 1.0\r\n")
        body = (text * rnd.randrange(1, 30)).encode(charset, "replace")
        kind = i % 10
        if kind < 6:  # plain text
            yield (head + f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                   ).encode() + base64.encodebytes(body).replace(b"\n", b"\r\n")
            continue
        boundary = f"=_b{i}"
        attach = os.urandom(rnd.choice((2_000, 20_000, 150_000 if kind == 9 else 40_000)))
        yield (head + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
               f"--{boundary}\r\nContent-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               ).encode() + base64.encodebytes(body).replace(b"\n", b"\r\n") + (
               f"\r\n--{boundary}\r\nContent-Type: application/pdf; name=\"quote{i}.pdf\"\r\n"
               f"Content-Disposition: attachment; filename=\"quote{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               ).encode() + base64.encodebytes(attach).replace(b"\n", b"\r\n") + f"\r\n--{boundary}--\r\n".encode()


def maildir_of(upstream: LocalUpstream, address: str, folder: str = "INBOX") -> Path:
    local, domain = address.split("@", 1)
    root = upstream.workdir / "run" / "mail" / domain.lower() / local.lower() / "Maildir"
    return root if folder == "INBOX" else root / f".{folder.replace('/', '.')}"


def fill_maildir(upstream: LocalUpstream, address: str, messages: Iterable[bytes], folder: str = "INBOX") -> int:
    """Write ``messages`` as new mail of ``address``'s ``folder``; returns how many."""
    box = maildir_of(upstream, address, folder)
    mail = pwd.getpwnam("mail")
    made = []
    for sub in (box.parent, box, box / "new", box / "cur", box / "tmp"):
        if not sub.exists():
            sub.mkdir(mode=0o700, parents=True)
            made.append(sub)
    host, stamp, count = socket.gethostname(), int(time.time()), 0
    for count, raw in enumerate(messages, start=1):
        path = box / "new" / f"{stamp}.M{count}P{os.getpid()}.{host}"
        path.write_bytes(raw)
        os.chown(path, mail.pw_uid, mail.pw_gid)
    for d in [*made, box / "new"]:
        os.chown(d, mail.pw_uid, mail.pw_gid)
    return count
