"""The SASL mechanisms of SMTP AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN, sans-I/O.

:class:`SaslExchange` turns the client's base64 lines into a login and password, or into
the reply that refuses them; the server sends each ``334`` challenge it returns and
feeds it the client's next line.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode
from typing import Final

from mailwarden.gateway.submission.smtpevents import AuthAttempt

MECHANISMS: Final = ("LOGIN", "PLAIN")
LOGIN_CHALLENGES: Final = ("334 " + b64encode(b"User Name\0").decode(), "334 " + b64encode(b"Password\0").decode())
CANT_DECODE: Final = "501 5.5.2 Can't decode base64"


class SaslExchange:
    """One AUTH exchange.  :meth:`start` and :meth:`step` return a reply to send (a ``334``
    challenge: the exchange goes on; anything else ends it) or the :class:`AuthAttempt`."""

    def __init__(self, mechanism: str) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"unknown SASL mechanism {mechanism!r}")
        self.mechanism = mechanism
        self._login: bytes | None = None

    def start(self, initial: str | None) -> str | AuthAttempt:
        """``AUTH <mechanism> [initial-response]``."""
        if initial is None:
            return "334 " if self.mechanism == "PLAIN" else LOGIN_CHALLENGES[0]
        try:
            decoded = b64decode(initial.encode(), validate=True)
        except (ValueError, binascii.Error):  # not base64, or not even ASCII
            return CANT_DECODE
        return self._decoded(decoded)

    def step(self, line: bytes) -> str | AuthAttempt:
        """The client's answer to a challenge: base64, or ``*`` to give up (RFC 4954 4)."""
        blob = line.strip()
        if blob == b"*":
            return "501 5.7.0 Auth aborted"
        try:
            decoded = b64decode(blob, validate=True)
        except binascii.Error:
            return CANT_DECODE
        return self._decoded(decoded)

    def _decoded(self, decoded: bytes) -> str | AuthAttempt:
        if self.mechanism == "PLAIN":
            parts = decoded.split(b"\0")  # authzid NUL authcid NUL passwd (RFC 4616 2)
            if len(parts) != 3:
                return "501 5.5.2 Can't split auth value"
            return AuthAttempt("PLAIN", parts[1], parts[2])
        if self._login is None:
            self._login = decoded
            return LOGIN_CHALLENGES[1]
        return AuthAttempt("LOGIN", self._login, decoded)
