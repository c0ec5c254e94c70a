"""RFC 822/2045 tokens of a header value, read the way IMAP servers read them for FETCH.

An IMAP client compares what it is told with what other servers tell it (and caches it), so
ENVELOPE and BODYSTRUCTURE are derived from the raw header bytes with the same tolerance for
broken input as Dovecot's ``rfc822-parser.c`` and ``rfc2231-parser.c``: comments and folding
skipped, a broken token ends the value instead of raising. Works on bytes (8-bit header text
passes through unchanged); every function answers -1 (broken), 0 (end of value reached) or 1
(more to read), like the originals, so the callers can follow the same decisions.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["NUL_REPLACEMENT", "Tokenizer", "parse_params"]

NUL_REPLACEMENT = "\ufffd".encode()

# 1: atext, 2: alpha, digit and 8-bit, 4: atext but a MIME tspecial ("/", "=", "?")
_ATEXT = bytearray(256)
for _c in b"!#$%&'*+-^_`{|}~":
    _ATEXT[_c] = 1
for _c in b"/=?":
    _ATEXT[_c] = 4
for _c in list(range(0x30, 0x3A)) + list(range(0x41, 0x5B)) + list(range(0x61, 0x7B)) + list(range(0x80, 0x100)):
    _ATEXT[_c] = 2
ATEXT = bytes(_ATEXT)


def _run_of(accept: Callable[[int], bool]) -> re.Pattern[bytes]:
    return re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in range(256) if accept(c)) + b"]*")


_ATEXT_RUN = _run_of(lambda c: ATEXT[c] != 0)
_TOKEN_RUN = _run_of(lambda c: (ATEXT[c] & 3) != 0 or c == 0x2E)  # a MIME token, and "."
_ATEXT_OR_DOT_RUN = _run_of(lambda c: ATEXT[c] != 0 or c == 0x2E)


class Tokenizer:
    """A cursor over one header value (``data[pos:end]``)."""

    __slots__ = ("data", "pos", "end", "last_comment", "nul_replacement")

    def __init__(self, data: bytes, *, keep_comment: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.last_comment: bytearray | None = bytearray() if keep_comment else None
        self.nul_replacement: bytes | None = None

    def peek(self) -> int:
        """The byte at the cursor; 0 at the end (the C code reads the terminating NUL)."""
        return self.data[self.pos] if self.pos < self.end else 0

    def _enclosed(self, out: bytearray | None, close: int, *, nests: bool = False, forbidden: int = -1,
                  keep_backslash: bool = False, keep_brackets: bool = False) -> bool:
        """From the opening byte at the cursor to its *close* (past it when found): the
        content into *out* without folding line breaks, quoted pairs undone unless
        *keep_backslash*, NULs replaced; False when the value ends first (or *forbidden* comes)."""
        data, end = self.data, self.end
        start = self.pos if keep_brackets else self.pos + 1
        self.pos += 1
        level = 1
        while self.pos < end:
            c = data[self.pos]
            if c == 0:
                if out is not None and self.nul_replacement is not None:
                    out += data[start:self.pos] + self.nul_replacement
                    start = self.pos + 1
            elif c == close:
                level -= 1
                if level == 0:
                    if out is not None:
                        out += data[start:self.pos + 1 if keep_brackets else self.pos]
                    self.pos += 1
                    return True
            elif nests and c == 0x28:  # (
                level += 1
            elif c == forbidden:
                return False
            elif c == 0x0A:
                if out is not None:
                    out += data[start:self.pos - 1 if self.pos > start and data[self.pos - 1] == 0x0D else self.pos]
                    start = self.pos + 1
            elif c == 0x5C:  # backslash
                self.pos += 1
                if self.pos >= end:
                    return False
                if data[self.pos] in (0x0D, 0x0A, 0):  # not a quoted pair: read the byte again
                    if keep_backslash and out is not None:
                        out += data[start:self.pos]
                        start = self.pos
                    self.pos -= 1
                elif not keep_backslash:
                    if out is not None:
                        out += data[start:self.pos - 1]
                    start = self.pos
            self.pos += 1
        return False

    def skip_comment(self) -> int:
        if self.last_comment is not None:
            del self.last_comment[:]
        if not self._enclosed(self.last_comment, 0x29, nests=True):
            return -1  # no ")"
        return 1 if self.pos < self.end else 0

    def skip_lwsp(self) -> int:
        data, end = self.data, self.end
        while self.pos < end:
            c = data[self.pos]
            if c in (0x20, 0x09, 0x0D, 0x0A):
                self.pos += 1
                continue
            if c != 0x28:
                break
            if self.skip_comment() < 0:
                return -1
        return 1 if self.pos < end else 0

    def _run(self, out: bytearray, run: re.Pattern[bytes]) -> int:
        """The bytes of the class *run* matches at the cursor into *out*; then the blanks and
        comments after them skipped (0 when the value ends in the run)."""
        start = self.pos
        self.pos = run.match(self.data, start, self.end).end()  # type: ignore[union-attr]
        out += self.data[start:self.pos]
        return self.skip_lwsp() if self.pos < self.end else 0

    def atom(self, out: bytearray) -> int:
        if self.pos >= self.end or not ATEXT[self.data[self.pos]]:
            return -1
        return self._run(out, _ATEXT_RUN)

    def dot_atom(self, out: bytearray) -> int:
        data, end = self.data, self.end
        if self.pos >= end or not ATEXT[data[self.pos]]:
            return -1
        start = self.pos
        self.pos += 1
        while self.pos < end:
            if ATEXT[data[self.pos]]:
                self.pos = _ATEXT_RUN.match(data, self.pos, end).end()  # type: ignore[union-attr]
                continue
            if start == self.pos:
                return -1
            out += data[start:self.pos]
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if data[self.pos] != 0x2E:
                return 1
            self.pos += 1
            out.append(0x2E)
            if self.skip_lwsp() <= 0:
                return -1
            start = self.pos
        out += data[start:self.pos]
        return 0

    def mime_token(self, out: bytearray) -> int:
        return self._run(out, _TOKEN_RUN)

    def quoted_string(self, out: bytearray) -> int:
        return self.skip_lwsp() if self._enclosed(out, 0x22) else -1

    def _atom_or_dot(self, out: bytearray) -> int:
        return self._run(out, _ATEXT_OR_DOT_RUN)

    def phrase(self, out: bytearray) -> int:
        if self.pos >= self.end:
            return 0
        if self.peek() == 0x2E:
            return -1
        while True:
            ret = self.quoted_string(out) if self.peek() == 0x22 else self._atom_or_dot(out)
            if ret <= 0:
                return ret
            c = self.peek()
            if not ATEXT[c] and c not in (0x22, 0x2E):
                break
            out.append(0x20)
        return self.skip_lwsp()

    def _domain_literal(self, out: bytearray) -> int:
        # the brackets and backslashes stay in the output
        closed = self._enclosed(out, 0x5D, forbidden=0x5B, keep_backslash=True, keep_brackets=True)
        return self.skip_lwsp() if closed else -1

    def domain(self, out: bytearray) -> int:
        """After "@": a dot-atom or a domain literal."""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1
        if self.peek() == 0x5B:
            return self._domain_literal(out)
        return self.dot_atom(out)

    def content_type(self, out: bytearray) -> int:
        """``type/subtype`` into *out* (emptied again when broken)."""
        mark = len(out)
        if self.skip_lwsp() <= 0:
            return -1
        if self.mime_token(out) <= 0 or len(out) == mark:
            return -1
        if self.peek() != 0x2F:
            del out[mark:]
            return -1
        self.pos += 1
        if self.skip_lwsp() <= 0:
            del out[mark:]
            return -1
        out.append(0x2F)
        sub = len(out)
        ret = self.mime_token(out)
        if ret < 0 or len(out) == sub or (self.pos != self.end and self.peek() != 0x3B):
            del out[mark:]
            return -1
        return ret

    def content_param(self) -> tuple[int, bytes | None, bytes]:
        """One ``; key=value``: (ret, key, value)."""
        if self.pos >= self.end:
            return 0, None, b""
        if self.peek() != 0x3B:
            return -1, None, b""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1, None, b""
        key = bytearray()
        if self.mime_token(key) <= 0:
            return -1, None, b""
        if self.peek() != 0x3D:
            return -1, None, b""
        self.pos += 1
        value = bytearray()
        ret = self.skip_lwsp()
        if ret <= 0:
            pass  # broken, or no value
        elif self.peek() == 0x22:
            ret = self.quoted_string(value)
        elif self.peek() == 0x3D:  # broken input: name==?utf-8?b?...?=
            data, end = self.data, self.end
            while self.pos < end and data[self.pos] not in (0x3B, 0x20, 0x09, 0x0D, 0x0A):
                value.append(data[self.pos])
                self.pos += 1
        else:
            ret = self.mime_token(value)
        return (-1 if ret < 0 else 1), bytes(key), bytes(value)


def _rfc2231_escape(value: bytes) -> bytes:
    return value.replace(b"%", b"%25")


def parse_params(tok: Tokenizer) -> list[tuple[bytes, bytes]]:
    """The ``; key=value`` parameters after a content type, RFC 2231 continuations
    (``key*0``, ``key*1*`` …) merged into one ``key`` / ``key*`` parameter placed after the
    plain ones; a broken parameter is skipped."""
    saved = tok.nul_replacement
    tok.nul_replacement = NUL_REPLACEMENT
    result: list[tuple[bytes, bytes]] = []
    split: list[tuple[bytes, int, bool, bytes]] = []  # key, index, extended, value
    while True:
        ret, key, value = tok.content_param()
        if ret == 0:
            break
        if ret < 0:
            if tok.pos >= tok.end:
                break
            tok.pos += 1
            continue
        assert key is not None
        star = key.find(b"*")
        plain = True
        if star != -1:
            idx = 0
            p = star
            if p + 1 < len(key):
                p += 1
                while p < len(key) and 0x30 <= key[p] <= 0x39:
                    idx = idx * 10 + key[p] - 0x30
                    p += 1
            extended = p < len(key) and key[p] == 0x2A
            if extended:
                p += 1
            if p >= len(key):
                split.append((key[:star], idx, extended, value))
                plain = False
        if plain:
            result.append((key, value))
    tok.nul_replacement = saved
    if not split:
        return result
    split.sort(key=lambda s: (s[0], s[1]))
    i = 0
    while i < len(split):
        name = split[i][0].lower()
        j, next_idx, ok, have_extended = i, 0, True, False
        while j < len(split) and split[j][0].lower() == name:
            if split[j][1] != next_idx:
                ok = False
            have_extended = have_extended or split[j][2]
            next_idx += 1
            j += 1
        group = split[i:j]
        if not ok:  # missing indexes: not RFC 2231 after all
            for key, idx, extended, value in group:
                result.append((key + b"*%d" % idx + (b"*" if extended else b""), value))
        else:
            out = bytearray(b"''" if not group[0][2] and have_extended else b"")
            for _key, _idx, extended, value in group:
                out += _rfc2231_escape(value) if not extended and have_extended else value
            result.append((group[0][0] + (b"*" if have_extended else b""), bytes(out)))
        i = j
    return result
