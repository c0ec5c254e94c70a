"""The word dictionary: word-list files and the Aho-Corasick automaton built from them.

Terms are normalised like message text (NFKC, lower case, traditional → simplified) and all
whitespace is removed from both sides, so "新 公 司" and "my  new\\ncompany" still match;
Chinese terms match as plain substrings, terms that start or end with a Latin letter or digit
only match at a word boundary of the surrounding text. The automaton is built once per policy.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import RulesConfigError
from .findings import SEVERITIES
from .normalize import NormText, normalize

__all__ = ["Term", "WordList", "Dictionary", "parse_word_list", "strip_ws", "rule_id_for"]

_WS_CHARS = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u3000\u2028\u2029"
_LATIN = re.compile(r"[a-z0-9]")
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")
_HEADER = re.compile(r"^#\s*(rule|severity|action|description)\s*:\s*(.+?)\s*$", re.IGNORECASE)
MAX_TERM_LEN = 200
_SEVERITY_SLIP = re.compile(r"([，、;；|])\s*([A-Za-z]+)$")  # "新公司，high": an input method's comma


_WS_ASCII = "".join(c for c in _WS_CHARS if c.isascii()).encode("ascii")


def strip_ws(text: str) -> str:
    """*text* without any whitespace (C-speed ``str.replace`` per present character; ASCII
    text in one ``bytes.translate``, about twice as fast on prose full of spaces)."""
    if text.isascii():
        return text.encode("ascii").translate(None, _WS_ASCII).decode("ascii")
    for c in _WS_CHARS:
        if c in text:
            text = text.replace(c, "")
    return text


def rule_id_for(name: str) -> str:
    """``WORDLIST_<NAME>`` in UPPER_SNAKE for a word-list file name."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", Path(name).stem).strip("_").upper() or "CUSTOM"
    return f"WORDLIST_{stem}"


@dataclass(frozen=True)
class Term:
    """One dictionary entry: the term as written, the rule it belongs to, optional severity."""

    text: str
    key: str  # normalised, whitespace removed
    rule: str
    severity: str | None
    source: str  # "file:line" or "pack:RULE_ID"


@dataclass(frozen=True)
class WordList:
    """A parsed word-list file."""

    path: Path
    rule: str
    severity: str
    action: str | None
    description: str
    terms: tuple[Term, ...]


def term_key(text: str) -> str:
    """The automaton key of a term."""
    return strip_ws(normalize(text.strip()).text)


def _check_term(term: str, path: Path | str, lineno: int | str) -> str:
    key = term_key(term)
    if not key:
        raise RulesConfigError(path, f"line {lineno}", f"empty term {term!r}")
    if len(key) > MAX_TERM_LEN:
        raise RulesConfigError(path, f"line {lineno}", f"term longer than {MAX_TERM_LEN} characters")
    if key.isascii() and len(key) < 3:
        raise RulesConfigError(
            path, f"line {lineno}", f"term {term!r} is too short (Latin terms need 3+ characters)"
        )
    return key


def parse_word_list(path: Path, *, severity: str | None = None, rule: str | None = None) -> WordList:
    """Read a word list: one term per line, optional ``,severity`` (``term,high``; nothing else
    separates a severity: a TAB or a full-width comma is an error naming the line).

    ``#`` starts a comment line; header comments ``# rule: ID``, ``# severity: S``,
    ``# action: A`` and ``# description: …`` set the list's rule id, default severity and action.
    Raises :class:`RulesConfigError` naming the file and line of the first bad line.
    """
    errors = collect_word_list_errors(path)
    if errors:
        lineno, problem = errors[0]
        more = f" (and {len(errors) - 1} more bad lines)" if len(errors) > 1 else ""
        raise RulesConfigError(path, f"line {lineno}", problem + more)
    return _parse(path, severity=severity, rule=rule)


def collect_word_list_errors(path: Path) -> list[tuple[int, str]]:
    """Every bad line of a word list as ``(line number, problem)``; empty when it is valid."""
    errors: list[tuple[int, str]] = []
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        return [(0, f"cannot read: {e.strerror or e}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            return [(0, "not UTF-8 or GB18030 text")]
    for lineno, line in enumerate(text.splitlines(), 1):
        try:
            _parse_line(line, path, lineno)
        except RulesConfigError as e:
            errors.append((lineno, e.problem))
    return errors


def _parse_line(line: str, path: Path | str, lineno: int) -> tuple[str, str | None] | None:
    stripped = line.strip()
    if not stripped:
        return None
    if stripped.startswith("#"):
        h = _HEADER.match(stripped)
        if h:
            key, value = h.group(1).lower(), h.group(2)
            if key == "severity" and value.lower() not in SEVERITIES:
                raise RulesConfigError(path, f"line {lineno}", f"unknown severity {value!r}")
            if key == "rule" and not _RULE_ID.match(value):
                raise RulesConfigError(path, f"line {lineno}", f"rule id {value!r} is not UPPER_SNAKE")
        return None
    # One format: "term" or "term,severity".  Anything else that looks like a severity is
    # refused, never read as part of the term (a TAB, a full-width comma, a misspelt severity).
    if "\t" in stripped:
        raise RulesConfigError(path, f"line {lineno}", "a TAB: write term,severity with a comma "
                               "(e.g. 新公司,high), or the term alone")
    sev: str | None = None
    term = stripped
    if "," in stripped:
        head, _, tail = stripped.rpartition(",")
        sev = tail.strip().lower()
        if sev not in SEVERITIES:
            raise RulesConfigError(
                path, f"line {lineno}", f"{tail.strip()!r} after the last comma is not a severity "
                f"({', '.join(SEVERITIES)}): a line is term or term,severity, and a term with a comma "
                "in it needs ,severity after it")
        term = head
    else:
        slip = _SEVERITY_SLIP.search(stripped)
        if slip and slip.group(2).lower() in SEVERITIES:
            raise RulesConfigError(path, f"line {lineno}", f"{slip.group(1)!r} before {slip.group(2)!r}: "
                                   f"the severity follows an ASCII comma (term,{slip.group(2).lower()})")
    _check_term(term, path, lineno)
    return term.strip(), sev


def _parse(path: Path, *, severity: str | None, rule: str | None) -> WordList:
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    header: dict[str, str] = {}
    entries: list[tuple[int, str, str | None]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("#"):
            h = _HEADER.match(s)
            if h:
                header[h.group(1).lower()] = h.group(2)
            continue
        parsed = _parse_line(line, path, lineno)
        if parsed:
            entries.append((lineno, parsed[0], parsed[1]))
    rule_id = rule or header.get("rule") or rule_id_for(Path(path).name)
    default_sev = (severity or header.get("severity") or "medium").lower()
    action = header.get("action")
    terms = tuple(
        Term(t, term_key(t), rule_id, sev, f"{path}:{lineno}") for lineno, t, sev in entries
    )
    return WordList(Path(path), rule_id, default_sev, action, header.get("description", ""), terms)


_WS_RE = re.compile("[" + re.escape(_WS_CHARS) + "]")


class _StripMap:
    """Maps positions of ``strip_ws(src)`` back to ``src`` (built lazily, per 2 KiB block)."""

    BLOCK = 2048

    def __init__(self, src: str) -> None:
        self.src = src
        self._starts: list[int] | None = None  # stripped position of each block start
        self._ws: dict[int, list[int]] = {}  # block → whitespace positions in it

    def _build(self) -> list[int]:
        starts = []
        acc = 0
        present = [c for c in _WS_CHARS if c in self.src]
        for b in range(0, len(self.src), self.BLOCK):
            starts.append(acc)
            chunk = self.src[b : b + self.BLOCK]
            acc += len(chunk) - sum(chunk.count(c) for c in present)
        return starts

    def to_src(self, p: int) -> int:
        """Index in ``src`` of the character at position *p* of the stripped text."""
        if self._starts is None:
            self._starts = self._build()
        starts = self._starts
        if not starts:
            return p
        k = bisect_right(starts, p) - 1
        # Blocks that are all whitespace share a start; take the first block holding p.
        while k > 0 and starts[k - 1] == starts[k]:
            k -= 1
        while k + 1 < len(starts) and starts[k + 1] <= p:
            k += 1
        b = k * self.BLOCK
        ws = self._ws.get(k)
        if ws is None:
            ws = self._ws[k] = [m.start() for m in _WS_RE.finditer(self.src, b, b + self.BLOCK)]
        q = p - starts[k]
        idx = b + q
        while True:
            new = b + q + bisect_right(ws, idx)
            if new == idx:
                return min(idx, len(self.src))
            idx = new


class Dictionary:
    """All dictionary terms in one automaton; :meth:`search` finds them in a normalised view.

    ``backend`` is ``"ahocorasick_rs"``, ``"pyahocorasick"`` or ``"auto"`` (the first one that
    is installed). pyahocorasick scans a node's children linearly, which makes it ~25x slower
    on dictionaries with thousands of distinct first characters (any large Chinese list); see
    ``tests/bench/bench_rules.py``.
    """

    def __init__(self, terms: Iterable[Term], backend: str = "auto") -> None:
        self.terms: tuple[Term, ...] = tuple(terms)
        self.backend = backend
        by_key: dict[str, list[int]] = {}
        for i, t in enumerate(self.terms):
            by_key.setdefault(t.key, []).append(i)
        # Read only once built (the policy's dictionary is shared by the evaluating threads);
        # _joinable memoises a pure function of its key, safe to share as rules.memo explains.
        self._keys = tuple(by_key)
        self._ids = tuple(tuple(by_key[k]) for k in self._keys)
        self._boundary = tuple((bool(_LATIN.match(k[0])), bool(_LATIN.match(k[-1]))) for k in self._keys)
        self._auto: object | None = None
        self._joinable: dict[str, bool] = {}
        if backend == "auto":
            try:
                import ahocorasick_rs  # noqa: F401, PLC0415

                backend = self.backend = "ahocorasick_rs"
            except ImportError:  # pragma: no cover - declared dependency
                backend = self.backend = "pyahocorasick"
        if not self._keys:
            return
        if backend == "pyahocorasick":
            import ahocorasick  # noqa: PLC0415

            auto = ahocorasick.Automaton()
            for idx, key in enumerate(self._keys):
                auto.add_word(key, idx)
            auto.make_automaton()
            self._auto = auto
        elif backend == "ahocorasick_rs":
            import ahocorasick_rs  # noqa: PLC0415

            self._auto = ahocorasick_rs.AhoCorasick(list(self._keys))
        else:
            raise ValueError(f"unknown dictionary backend {backend!r}")

    def __len__(self) -> int:
        return len(self.terms)

    def _raw_hits(self, hay: str) -> list[tuple[int, int, int]]:
        if self.backend == "pyahocorasick":
            keys = self._keys
            return [(end - len(keys[idx]) + 1, end + 1, idx) for end, idx in self._auto.iter(hay)]  # type: ignore[attr-defined]
        return [
            (s, e, idx)
            for idx, s, e in self._auto.find_matches_as_indexes(hay, overlapping=True)  # type: ignore[attr-defined]
        ]

    def search(self, view: NormText, *, strip: bool = True) -> list[tuple[int, int, Term]]:
        """All term occurrences as ``(start, end, term)`` ranges of ``view.text``.

        With ``strip=False`` whitespace is matched literally (faster; for short keyword lists).
        """
        return self.search_text(view.text, strip=strip)

    def can_join(self, sep: str) -> bool:
        """True when no term contains *sep*, so texts joined by it can be searched at once."""
        ok = self._joinable.get(sep)
        if ok is None:
            ok = self._joinable[sep] = not any(sep in k for k in self._keys)
        return ok

    def search_text(self, text: str, *, strip: bool = True) -> list[tuple[int, int, Term]]:
        """:meth:`search` on a plain string (the text of a normalised view)."""
        if self._auto is None:
            return []
        hay = strip_ws(text) if strip else text
        hits = self._raw_hits(hay)
        if not hits:
            return []
        smap = _StripMap(text) if len(hay) != len(text) else None
        out: list[tuple[int, int, Term]] = []
        for s, e, idx in hits:
            if smap is not None:
                vs, ve = smap.to_src(s), smap.to_src(e - 1) + 1
            else:
                vs, ve = s, e
            left, right = self._boundary[idx]
            if left and vs > 0 and _LATIN.match(text[vs - 1]):
                continue
            if right and ve < len(text) and _LATIN.match(text[ve]):
                continue
            for tid in self._ids[idx]:
                out.append((vs, ve, self.terms[tid]))
        return out
