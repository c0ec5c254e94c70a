"""The SMTP client's side of the wire, sans-I/O: bytes in, replies out; commands as bytes.

:class:`ReplyReader` takes whatever the socket delivered (:meth:`~ReplyReader.receive_data`)
and hands out whole replies (:meth:`~ReplyReader.next_reply`, ``None`` until one is complete),
multiline ones (``250-…`` then ``250 …``) joined; a reply larger than its limit, or a line that
does not start with a three-digit code, is a :class:`ProtocolError`.  :func:`extensions` reads
the answer to EHLO; the ``*_command`` functions and :class:`Login` make the bytes the client
writes; :func:`stuffed` and :class:`DotStuffer` make a message into the bytes DATA sends.
The asyncio code in :mod:`.smtp` only moves these bytes.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass, field

MAX_REPLY = 32 * 1024
"""Bytes one reply may take, all its lines together (EHLO's is the longest, about 300)."""


class ProtocolError(Exception):
    """The server sent something that is not an SMTP reply, or too much of it."""


@dataclass(frozen=True)
class Reply:
    """One reply: its code and its text, lines joined by ``\\n``, enhanced codes kept
    (``"5.1.1 no such user"``)."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class ReplyReader:
    """Replies from the bytes a server sends, in order, fed in any pieces."""

    def __init__(self, *, max_size: int = MAX_REPLY) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf known to hold only continuation lines ("250-…")

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    @property
    def pending(self) -> bool:
        """Whether bytes beyond the replies handed out have arrived."""
        return bool(self._buf)

    def next_reply(self) -> Reply | None:
        """The next whole reply, or None when more bytes are needed."""
        buf, pos = self._buf, self._scanned
        while (end := buf.find(b"\n", pos)) >= 0:
            if end + 1 > self.max_size:
                raise ProtocolError(f"reply longer than {self.max_size} bytes")
            line = bytes(buf[pos:end + 1])
            if not (line[:3].isdigit() and line[3:4] in (b" ", b"-", b"\r", b"\n")):
                raise ProtocolError(f"malformed reply line: {line[:80]!r}")
            pos = end + 1
            if line[3:4] != b"-":
                lines = bytes(buf[:pos]).split(b"\n")[:-1]
                del buf[:pos]
                self._scanned = 0
                text = b"\n".join(ln[4:].strip(b" \t\r\n") for ln in lines)
                return Reply(int(line[:3]), text.decode("utf-8", "surrogateescape"))
        self._scanned = pos
        if len(buf) > self.max_size:
            raise ProtocolError(f"reply longer than {self.max_size} bytes")
        return None


class UnexpectedReply(Exception):
    """A reply that is no answer to the command it followed (354 to RCPT, say): the
    conversation is out of step and the transaction is given up."""

    def __init__(self, reply: Reply, command: str) -> None:
        super().__init__(f"{reply.code} unexpected reply to {command}: {reply.text}")
        self.reply = reply


def rcpt_refused(reply: Reply) -> bool:
    """Whether a RCPT reply refuses the recipient: 4xx or 5xx.  Any 2xx takes it (RFC 5321
    §4.2.1: act on the first digit; 252 "cannot verify, will try" included); anything else
    raises :class:`UnexpectedReply`."""
    if 200 <= reply.code < 300:
        return False
    if 400 <= reply.code < 600:
        return True
    raise UnexpectedReply(reply, "RCPT")


# -- EHLO -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Extensions:
    """What the answer to EHLO offers: keywords (lower case) with their parameters, and the
    AUTH mechanisms (upper case)."""

    keywords: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, ...] = ()

    @property
    def pipelining(self) -> bool:
        return "pipelining" in self.keywords

    @property
    def starttls(self) -> bool:
        return "starttls" in self.keywords

    @property
    def eight_bit_mime(self) -> bool:
        return "8bitmime" in self.keywords

    @property
    def smtputf8(self) -> bool:
        return "smtputf8" in self.keywords

    @property
    def size(self) -> int | None:
        """The largest message the server takes (``SIZE n``; 0 or none given: no limit told)."""
        params = self.keywords.get("size")
        return int(params) if params and params.isdigit() and int(params) > 0 else None


def extensions(reply: Reply) -> Extensions:
    """The extensions in the answer to EHLO (its first line is the server's name)."""
    keywords: dict[str, str] = {}
    auth: list[str] = []
    for line in reply.text.split("\n")[1:]:
        line = line.strip()
        if line.lower().startswith("auth="):  # the old style some servers still send: AUTH=LOGIN PLAIN
            keyword, params = "auth", line[5:]
        else:
            keyword, _, params = line.partition(" ")
            keyword = keyword.lower()
        if not keyword:
            continue
        keywords[keyword] = params.strip()
        if keyword == "auth":
            auth += [m.upper() for m in params.split() if m.upper() not in auth]
    return Extensions(keywords, tuple(auth))


# -- commands ---------------------------------------------------------------------------------

# Characters that would end the address on the command line or start another command; a quoted
# local part ("a b"@x) may hold some of them.
_INJECTION = re.compile(r'[\s<>"\x00-\x1f\x7f]')
_QUOTED_LOCAL = re.compile(r'^"(?:[^"\\\r\n]|\\.)*"')


def quote_address(address: str) -> str:
    """``<address>`` for MAIL and RCPT; ``""`` is the null sender ``<>``.

    Raises ValueError for an address that could smuggle parameters or commands onto the line."""
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    if _INJECTION.search(_QUOTED_LOCAL.sub("", address, count=1)):
        raise ValueError(f"address {address!r} holds characters not allowed in an SMTP mailbox")
    return f"<{address}>"


def needs_smtputf8(*addresses: str) -> bool:
    return not all(a.isascii() for a in addresses)


def _encode(text: str, utf8: bool) -> bytes:
    return text.encode("utf-8" if utf8 else "ascii")


def ehlo_command(hostname: str) -> bytes:
    return b"EHLO " + hostname.encode("ascii") + b"\r\n"


def mail_command(sender: str, *, smtputf8: bool = False) -> bytes:
    """``MAIL FROM:<sender>``; with ``smtputf8``, the parameter and the address in UTF-8."""
    return b"MAIL FROM:" + _encode(quote_address(sender), smtputf8) + (b" SMTPUTF8\r\n" if smtputf8 else b"\r\n")


def rcpt_command(recipient: str, *, smtputf8: bool = False) -> bytes:
    return b"RCPT TO:" + _encode(quote_address(recipient), smtputf8) + b"\r\n"


DATA = b"DATA\r\n"
RSET = b"RSET\r\n"
QUIT = b"QUIT\r\n"
STARTTLS = b"STARTTLS\r\n"


# -- AUTH -------------------------------------------------------------------------------------

MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
"""The AUTH mechanisms this client speaks, the one it tries first first."""


class AuthRefused(Exception):
    """The server refused the login (its reply is :attr:`reply`)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


class Login:
    """One AUTH exchange with ``mechanism``: write :meth:`start`, then for each reply write
    what :meth:`answer` returns until it returns None (235: logged in).  A reply that is
    neither 334 (go on) nor 235 raises :class:`AuthRefused`."""

    def __init__(self, mechanism: str, username: str, password: str) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported AUTH mechanism {mechanism!r}")
        self.mechanism = mechanism
        self._user, self._password = username.encode("utf-8"), password.encode("utf-8")
        self._step = 0

    def start(self) -> bytes:
        if self.mechanism == "PLAIN":
            return b"AUTH PLAIN " + base64.b64encode(b"\0" + self._user + b"\0" + self._password) + b"\r\n"
        if self.mechanism == "LOGIN":  # the user name with the command: one round trip less
            return b"AUTH LOGIN " + base64.b64encode(self._user) + b"\r\n"
        return b"AUTH CRAM-MD5\r\n"

    def answer(self, reply: Reply) -> bytes | None:
        if reply.code == 235:
            return None
        self._step += 1
        if reply.code != 334 or self.mechanism == "PLAIN" or self._step > 1:
            raise AuthRefused(reply)
        if self.mechanism == "LOGIN":
            return base64.b64encode(self._password) + b"\r\n"
        try:
            challenge = base64.b64decode(reply.text.strip(), validate=True)
        except ValueError:
            raise AuthRefused(reply) from None
        digest = hmac.new(self._password, challenge, "md5").hexdigest().encode("ascii")
        return base64.b64encode(self._user + b" " + digest) + b"\r\n"


def mechanisms(offered: tuple[str, ...]) -> list[str]:
    """The mechanisms to try, in our order of preference, among those the server offers."""
    return [m for m in MECHANISMS if m in offered]


# -- DATA -------------------------------------------------------------------------------------

_LINE_END = re.compile(rb"\r\n|\r|\n")  # any line end, CRLF taken whole


def normalised(data: bytes) -> bytes:
    """Every line end (lone CR, lone LF, CRLF) made CRLF, and a CRLF at the end."""
    data = _LINE_END.sub(b"\r\n", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def stuffed(data: bytes) -> tuple[bytes, bytes]:
    """The message as DATA sends it (CRLF lines, leading dots doubled) and the end marker."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        # A lone CR or LF: make every line end in CRLF first, so "<CR>.<CR><LF>" tricks
        # (SMTP smuggling) cannot end the data early at a lenient upstream.
        data = normalised(data)
    if data.startswith(b"."):
        data = b"." + data
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    return data, (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


class DotStuffer:
    """:func:`stuffed` a piece at a time: ``feed`` each piece of the message in turn, then
    ``end``; the bytes returned, joined, are ``stuffed(whole)``'s two parts joined.

    A CR that ends a piece is held back until the next piece shows whether an LF follows;
    a dot is doubled at the start of a piece when the piece before ended its line.
    """

    def __init__(self) -> None:
        self._cr = False        # a CR held back from the end of the last piece
        self._bol = True        # the next byte starts a line
        self._crlf_end = False  # what went out so far ends in CRLF

    def feed(self, piece: bytes) -> bytes:
        if self._cr:
            piece, self._cr = b"\r" + piece, False
        if piece.endswith(b"\r"):
            piece, self._cr = piece[:-1], True
        if not piece:
            return b""
        crlf = piece.count(b"\r\n")
        if piece.count(b"\n") != crlf or piece.count(b"\r") != crlf:
            piece = _LINE_END.sub(b"\r\n", piece)  # lone CR or LF: see stuffed()
        if self._bol and piece.startswith(b"."):
            piece = b"." + piece
        if b"\n." in piece:
            piece = piece.replace(b"\n.", b"\n..")
        self._bol = self._crlf_end = piece.endswith(b"\n")  # every LF has its CR by now
        return piece

    def end(self) -> bytes:
        if self._cr:  # a lone CR last: a line end, as normalising makes it
            self._cr = False
            return b"\r\n.\r\n"
        return b".\r\n" if self._crlf_end else b"\r\n.\r\n"
