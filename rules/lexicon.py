"""The context layer's lexicons: intents (wording without a stock phrase) and cues.

Read from the shipped ``packs/lexicon.toml`` and then from every site pack, whose
``[[intent]]`` tables add intents, whose ``[cues]`` lists add terms and whose
``[confidence] low`` says what a low-confidence finding does at most (per category or ``*``); validated at load,
errors naming the file, the line and the key. Compiled once per policy into two automata
(:class:`~.words.Dictionary`): one over all intent terms, one over all cue terms.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .errors import RulesConfigError
from .normalize import normalize
from .findings import ACTIONS
from .packfile import check_table
from .policy import CATEGORIES
from .words import Dictionary, Term, term_key

__all__ = ["DEFAULT_LEXICON", "CUE_KINDS", "Intent", "Lexicon", "load_lexicon"]

DEFAULT_LEXICON = Path(__file__).with_name("packs") / "lexicon.toml"
CUE_KINDS = ("negation", "negation_after", "not_negation", "third_party", "other_owner", "object_after",
             "personal")
_INTENT_KEYS = {"rule", "name", "window", "groups"}
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class Intent:
    """Terms of every group within ``window`` characters make a hit of ``rule``."""

    rule: str
    name: str
    window: int
    groups: int
    source: str


_SPACES = re.compile(r"\s+")
_LATIN = re.compile(r"[a-z0-9]")


def spaced_key(term: str) -> str:
    """A term as matched by :class:`IntentTerms`: normalised, whitespace runs as one space."""
    return _SPACES.sub(" ", normalize(term.strip()).text).strip()


class IntentTerms:
    """One automaton over the intents' terms, searched in text whose whitespace runs are one
    space. Business text is full of the terms' words ("payment", "个人"), so hits stay
    positions in that text and only an intent that has every group is looked at further."""

    __slots__ = ("_auto", "_info", "_groups", "size")

    def __init__(self, terms: list[tuple[str, int, int]], groups: tuple[int, ...]) -> None:
        import ahocorasick_rs  # noqa: PLC0415

        keys: dict[str, list[tuple[int, int]]] = {}
        for key, intent, group in terms:
            keys.setdefault(key, []).append((intent, group))
        self.size = len(terms)
        self._groups = groups  # per intent: how many groups it has
        words = list(keys)
        self._auto = ahocorasick_rs.AhoCorasick(words) if words else None
        # per key: its (intent, group) pairs and whether it needs a word boundary left/right
        self._info = tuple((tuple(keys[w]), bool(_LATIN.match(w[0])), bool(_LATIN.match(w[-1]))) for w in words)

    def __len__(self) -> int:
        return self.size

    def find(self, text: str) -> dict[int, list[tuple[int, int, int]]]:
        """intent index → ``(start, end, group)`` in *text* (already space-collapsed), for
        the intents with a term of every group."""
        if self._auto is None:
            return {}
        found = self._auto.find_matches_as_indexes(text, overlapping=True)
        if not found:
            return {}
        info = self._info
        # Which intents have every group at all, from the distinct keys found (business text
        # holds hundreds of "payment"s and no "to my card"): only their hits are looked at.
        groups: dict[int, set[int]] = {}
        for idx in {m[0] for m in found}:
            for intent, group in info[idx][0]:
                groups.setdefault(intent, set()).add(group)
        wanted = {i for i, g in groups.items() if len(g) == self._groups[i]}
        if not wanted:
            return {}
        out: dict[int, list[tuple[int, int, int]]] = {}
        n = len(text)
        for idx, s, e in found:
            pairs, left, right = info[idx]
            if not any(p[0] in wanted for p in pairs):
                continue
            if left and s > 0 and _LATIN.match(text[s - 1]):
                continue
            if right and e < n and _LATIN.match(text[e]):
                continue
            for intent, group in pairs:
                if intent in wanted:
                    out.setdefault(intent, []).append((s, e, group))
        return out


@dataclass(frozen=True)
class Lexicon:
    """The compiled intents and cues of one policy."""

    intents: tuple[Intent, ...]
    intent_terms: IntentTerms
    cue_terms: Dictionary  # Term.rule: a cue kind
    low_caps: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # category → at most

    def low_cap(self, category: str) -> str:
        """What a low-confidence finding of *category* does at most (``[confidence] low``)."""
        return self.low_caps.get(category, self.low_caps.get("*", "tag"))


def _line_of(text: str, header: str, index: int) -> int | None:
    """The line number of the *index*-th ``[[header]]`` (or ``[header]``) in *text*."""
    pattern = re.compile(rf"^[ \t]*\[\[?[ \t]*{re.escape(header)}[ \t]*\]\]?", re.M)
    for i, m in enumerate(pattern.finditer(text)):
        if i == index:
            return text.count("\n", 0, m.start()) + 1
    return None


def _where(text: str, header: str, index: int, key: str) -> str:
    line = _line_of(text, header, index)
    return f"line {line}: {key}" if line else key


def _terms(raw: Any, path: Path, where: str) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        raise RulesConfigError(path, where, "must be a non-empty list of strings")
    for j, t in enumerate(raw):
        key = term_key(t)
        if not key or (key.isascii() and len(key) < 2):
            raise RulesConfigError(path, f"{where}[{j}]", f"term {t!r} is empty or too short")
    return raw


def load_lexicon(packs: tuple[Path, ...], rules: set[str]) -> Lexicon:
    """The shipped lexicon plus the ``[[intent]]`` and ``[cues]`` of *packs*; *rules*: the
    rule ids an intent may name."""
    intents: list[Intent] = []
    iterms: list[tuple[str, int, int]] = []
    cterms: list[Term] = []
    caps: dict[str, str] = {}
    for path in (DEFAULT_LEXICON, *packs):
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise RulesConfigError(path, "", f"cannot read: {e}") from None
        raw_intents = data.get("intent", [])
        if not isinstance(raw_intents, list):
            raise RulesConfigError(path, "intent", "must be an array of tables ([[intent]])")
        for i, raw in enumerate(raw_intents):
            where = _where(text, "intent", i, f"intent[{i}]")
            check_table(raw, path, where, _INTENT_KEYS)
            rule = raw.get("rule")
            if not isinstance(rule, str) or not _RULE_ID.match(rule) or rule not in rules:
                raise RulesConfigError(path, f"{where}.rule", f"{rule!r} is not a rule of the loaded packs")
            window = raw.get("window", 120)
            if not isinstance(window, int) or isinstance(window, bool) or not 0 <= window <= 2000:
                raise RulesConfigError(path, f"{where}.window", "must be an integer from 0 to 2000")
            groups = raw.get("groups")
            if not isinstance(groups, list) or not groups or len(groups) > 4:
                raise RulesConfigError(path, f"{where}.groups", "must be a list of one to four term lists")
            idx = len(intents)
            for g, terms in enumerate(groups):
                for t in _terms(terms, path, f"{where}.groups[{g}]"):
                    iterms.append((spaced_key(t), idx, g))
            intents.append(Intent(rule, str(raw.get("name", rule.lower())), window, len(groups), f"{path}:{where}"))
        conf = data.get("confidence", {})
        where = _where(text, "confidence", 0, "confidence")
        check_table(conf, path, where, {"low"})
        if "low" in conf:
            low = conf["low"]
            items = {"*": low} if isinstance(low, str) else low
            if not isinstance(items, dict):
                raise RulesConfigError(path, f"{where}.low", "must be an action or a table of category = action")
            for cat, act in items.items():
                if cat != "*" and cat not in CATEGORIES:
                    raise RulesConfigError(path, f"{where}.low.{cat}", f"unknown category (expected {', '.join(CATEGORIES)})")
                if act not in ACTIONS:
                    raise RulesConfigError(path, f"{where}.low.{cat}", f"{act!r} is not one of {', '.join(ACTIONS)}")
                caps[cat] = act
        cues = data.get("cues", {})
        if not isinstance(cues, dict):
            raise RulesConfigError(path, "cues", "must be a table ([cues])")
        for kind, terms in cues.items():
            where = _where(text, "cues", 0, f"cues.{kind}")
            if kind not in CUE_KINDS:
                raise RulesConfigError(path, where, f"unknown cue kind (expected {', '.join(CUE_KINDS)})")
            for t in _terms(terms, path, where):
                cterms.append(Term(t, term_key(t), kind, None, f"{path}:{where}"))
    return Lexicon(tuple(intents), IntentTerms(iterms, tuple(i.groups for i in intents)), Dictionary(cterms),
                   MappingProxyType(caps))
