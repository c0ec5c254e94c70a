"""The searchable text of a mail, as the store keeps it for IMAP SEARCH (``mail_text.body``).

One string: the header's text (every field, RFC 2047 words decoded), :data:`TEXT_SEPARATOR`,
then the body's (decoded text parts); both NFKC-normalised, case-folded, white space made one
space.  SEARCH TEXT looks at all of it, BODY only after the separator (a text kept before the
separator existed is all body)."""

from __future__ import annotations

import re
import unicodedata

TEXT_LIMIT = 200_000  # characters of searchable text kept per mail
TEXT_SEPARATOR = "\x1e"  # white space to searchable(), so never inside either half


def searchable(text: str) -> str:
    """Text as SEARCH compares it: NFKC (full-width forms become ASCII), case-folded, runs of
    white space made one space."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()


def search_text(head: str, body: str) -> str:
    """The stored form of a mail's header text ``head`` and body text ``body``."""
    head = searchable(head)[:TEXT_LIMIT // 4]
    return head + TEXT_SEPARATOR + searchable(body)[:TEXT_LIMIT - len(head) - 1]


def body_part(text: str) -> str:
    """What SEARCH BODY looks at in a stored text."""
    return text[text.find(TEXT_SEPARATOR) + 1:]


__all__ = ["TEXT_LIMIT", "TEXT_SEPARATOR", "body_part", "search_text", "searchable"]
