"""Signature placement in a decoded text/plain body (plain or ``format=flowed``).

The company signature is the block that starts with the line ``-- `` at the end of the
operator's new text, directly above the quoted history (found by :mod:`mailwarden.rules.mail.quotes`,
the one quote detector shared with the rules engine). Bodies are handled with ``\\n`` line
endings; the MIME layer restores the wire form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailwarden.rules.mail.quotes import find_quote_start_text, quoted_spans_text

from .model import TEXT_DELIMITER

# Some clients trim the trailing space of "-- "; a bare "--" line is accepted when reading.
_DELIMITER = re.compile(r"^-- ?[ \t]*$", re.MULTILINE)
MAX_SIGNATURE_LINES = 25
FLOWED_WIDTH = 76


@dataclass(frozen=True)
class TextOutcome:
    text: str
    replaced: bool
    stripped_client: bool


def is_company_block(block: str, identifiers: Sequence[str], phone_digits: Sequence[str]) -> bool:
    """Does a signature block name the company (company name, domain or official phone)?

    This recognises the company signature of any template version, since every template
    carries at least the company's name or official contacts.
    """
    folded = block.casefold()
    if any(i in folded for i in identifiers):
        return True
    digits = re.sub(r"\D", "", block)
    return any(d in digits for d in phone_digits)


def _last_block(new: str) -> int | None:
    """Start of the last ``-- `` delimited block in the new text, if it looks like a signature."""
    last = None
    for m in _DELIMITER.finditer(new):
        last = m
    if last is None:
        return None
    lines = [line for line in new[last.end() :].split("\n") if line.strip()]
    return last.start() if len(lines) <= MAX_SIGNATURE_LINES else None


def _remove_rendered(new: str, sig_text: str) -> tuple[str, bool]:
    """Remove an exact copy of the current signature that lost its delimiter line."""
    if not sig_text:
        return new, False
    pos = new.rfind(sig_text)
    if pos == -1 or (pos > 0 and new[pos - 1] != "\n"):
        return new, False
    after = new[pos + len(sig_text) :]
    if after.strip():
        return new, False  # text follows: it is quoted or written on purpose, leave it
    head = new[:pos]
    m = re.search(r"(?:^|\n)-- ?[ \t]*\n?$", head)
    if m:
        head = head[: m.start() + (1 if head[m.start() : m.start() + 1] == "\n" else 0)]
    return head, True


def _stuff(line: str) -> str:
    """RFC 3676 space-stuffing for lines that would otherwise read as quoted or flowed."""
    return " " + line if line.startswith((" ", ">", "From ")) else line


def _flow(line: str, delsp: bool) -> list[str]:
    """Wrap one long line with soft breaks (a trailing space) so it reflows back into one."""
    out: list[str] = []
    while len(line) > FLOWED_WIDTH + 2:
        cut = line.rfind(" ", 1, FLOWED_WIDTH)
        if cut > 0:
            if delsp:  # the space before the line break is deleted on reflow: keep one more
                out.append(line[: cut + 1] + " ")
            else:
                out.append(line[: cut + 1])
            line = line[cut + 1 :]
        elif delsp:
            out.append(line[:FLOWED_WIDTH] + " ")
            line = line[FLOWED_WIDTH:]
        else:
            break  # no space to break at without changing the text
    out.append(line)
    return out


def signature_block(sig_text: str, *, flowed: bool = False, delsp: bool = False) -> str:
    """The delimiter line plus the signature, ready to place (no trailing newline)."""
    lines = sig_text.split("\n")
    if lines and lines[0].rstrip() == TEXT_DELIMITER.rstrip():
        lines = lines[1:]
    if flowed:
        out: list[str] = []
        for line in lines:
            out.extend(_stuff(piece) for piece in _flow(line.rstrip(), delsp))
        lines = out
    return "\n".join([TEXT_DELIMITER, *lines])


def sign_text(
    body: str,
    sig_text: str,
    *,
    identifiers: Sequence[str],
    phone_digits: Sequence[str] = (),
    flowed: bool = False,
    delsp: bool = False,
    strip_client: bool = False,
) -> TextOutcome:
    """Place the signature under the new text and above the quoted history of ``body``.

    When the body starts with the quote and the operator wrote below it (bottom-posting or
    interleaved ``>`` quoting), the signature goes at the end, under the operator's last text.

    An earlier company signature at that spot is replaced; one inside the quoted history is
    left alone. A client signature (a ``-- `` block not naming the company) is removed only
    with ``strip_client``; otherwise the company signature goes below it.
    """
    q = find_quote_start_text(body)
    if q is not None and not body[:q].strip():
        spans = quoted_spans_text(body)
        if spans and body[spans[-1][1] :].strip():
            q = None  # bottom-posted or interleaved reply: the operator's text ends the body
    new, quoted = (body, "") if q is None else (body[:q], body[q:])
    new, replaced = _remove_rendered(new, sig_text)
    stripped = False
    for _ in range(4):
        start = _last_block(new)
        if start is None:
            break
        if is_company_block(new[start:], identifiers, phone_digits):
            replaced = True
        elif strip_client:
            stripped = True
        else:
            break
        new = new[:start]
    head = new.rstrip()
    block = signature_block(sig_text, flowed=flowed, delsp=delsp)
    parts = [head, "\n\n" if head else "", block, "\n"]
    if quoted:
        parts.append("\n" + quoted)
    elif not body.endswith("\n"):
        parts[-1] = ""
    return TextOutcome("".join(parts), replaced, stripped)


def extract_text_signature(body: str) -> str | None:
    """The company signature block (without its delimiter) of a signed body, for tests and tools."""
    q = find_quote_start_text(body)
    new = body if q is None else body[:q]
    start = _last_block(new)
    if start is None:
        return None
    block = new[start:].split("\n", 1)
    return block[1].strip("\n") if len(block) > 1 else ""
