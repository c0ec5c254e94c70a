"""What the SMTP submission protocol (:mod:`.smtpwire`) asks the gateway to act on.

Each event but :class:`StartTLS` and :class:`Hangup` is answered with
``SubmissionWire.respond(reply)``; a 2xx reply means it was accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mailwarden.gateway.submission.replies import bilingual


class NeedData:
    """The type of :data:`NEED_DATA`."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()
"""What :meth:`SubmissionWire.next_event` returns when it has nothing more to say."""


@dataclass(frozen=True, slots=True)
class AuthAttempt:
    """A login to check. ``password`` is a secret: never log it."""
    mechanism: str
    login: bytes
    password: bytes

    def __repr__(self) -> str:
        return f"AuthAttempt(mechanism={self.mechanism!r}, login={self.login!r}, password=...)"


@dataclass(frozen=True, slots=True)
class MailFrom:
    """``MAIL FROM:``; ``options`` are the ESMTP parameters as sent, upper-cased."""
    address: str
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RcptTo:
    """``RCPT TO:``; ``count`` is how many recipients the transaction has so far."""
    address: str
    options: tuple[str, ...]
    count: int


class Message:
    """The end of DATA: the recipients and the message (dot-stuffing undone).

    The message is handed over by :meth:`take`, not kept: the submitter frees the
    original once its signed copy exists, so a large message is held once."""

    __slots__ = ("rcpts", "_content")

    def __init__(self, rcpts: tuple[str, ...], content: bytes) -> None:
        self.rcpts = rcpts
        self._content: bytes | None = content

    def take(self) -> bytes:
        """The message; the event forgets it."""
        content, self._content = self._content or b"", None
        return content

    def __repr__(self) -> str:
        return f"Message(rcpts={self.rcpts!r})"


@dataclass(frozen=True, slots=True)
class Oversized:
    """The end of DATA with a message refused unread: larger than ``limit`` bytes, or (``line``)
    with a line longer than RFC 5321 allows.  Answered with a 552 (:attr:`default_reply` when
    the caller has nothing better: it names the user's language, the protocol does not)."""
    rcpts: tuple[str, ...]
    limit: int | None
    line: bool

    @property
    def default_reply(self) -> str:
        return bilingual("line_too_long") if self.line else bilingual("too_big", mb=(self.limit or 0) / (1024 * 1024))


@dataclass(frozen=True, slots=True)
class StartTLS:
    """``220 Ready to start TLS`` is pending: send it, then begin the TLS handshake."""


@dataclass(frozen=True, slots=True)
class Hangup:
    """The session is over (QUIT, or too many unknown commands): send what is pending, close."""


Event = AuthAttempt | MailFrom | RcptTo | Message | Oversized | StartTLS | Hangup
