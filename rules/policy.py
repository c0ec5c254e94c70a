"""Policy as data: rule packs (TOML) and word lists → one :class:`Policy` per configuration.

The shipped pack ``packs/default.toml`` is loaded first, then the site packs and word lists
named in ``[rules]``, each overlaying the previous ones (Rspamd-style): a ``[[rule]]`` with a
known id changes only the keys it sets; ``[[override]]`` entries adjust a rule's action,
severity or enablement for a role, team, customer or operator; the last matching override
wins. Everything expensive (the dictionary automaton, compiled patterns, the normalisation
table, phone metadata) is built here, once per policy; once built a :class:`Policy` does
not change (the gateway evaluates on several threads), but for its memos (:mod:`.memo`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .context import CheckContext, CompanyProfile, RulesSettings
from .findings import ACTIONS, SEVERITIES
from .memo import Memos
from .packfile import check_choice as _check_choice
from .packfile import check_table
from .packfile import err as _err
from .packfile import load_toml as _load_toml
from .packfile import str_set as _str_set
from .words import Dictionary, Term, WordList, parse_word_list, term_key

__all__ = ["Rule", "Override", "Policy", "build_policy", "word_list_paths", "DEFAULT_PACK", "CATEGORIES"]

DEFAULT_PACK = Path(__file__).with_name("packs") / "default.toml"
CATEGORIES = ("private_contact", "sensitive_word", "customer_list", "recipient", "attachment")
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")
_RULE_KEYS = {"id", "category", "kind", "severity", "action", "description", "words", "enabled"}
_OVERRIDE_KEYS = {"rule", "category", "role", "team", "customer", "operator", "action", "severity",
                  "enabled"}
_POLICY_KEYS = {"mode", "quoted_max_action", "phone_region", "freemail_domains",
                "competitor_domains", "list_threshold", "spreadsheet_min_rows"}
# "intent", "cues" and "confidence" are the context layer's, read by rules.lexicon
_TOP_KEYS = {"pack", "policy", "severity_actions", "rule", "override", "intent", "cues", "confidence"}


@dataclass(frozen=True)
class Rule:
    """One row of the decision table."""

    id: str
    category: str
    kind: str
    severity: str
    action: str
    description: str = ""
    source: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class Override:
    """Changes a rule for matching senders/recipients (all given conditions must hold)."""

    source: str
    rule: str | None = None  # rule id or "*"
    category: str | None = None
    roles: frozenset[str] | None = None
    teams: frozenset[str] | None = None
    customers: frozenset[str] | None = None  # customer names (lower case) or ids
    operators: frozenset[str] | None = None
    action: str | None = None
    severity: str | None = None
    enabled: bool | None = None

    def applies(self, rule: Rule, ctx: CheckContext) -> bool:
        """True when this override concerns *rule* for the sender/recipients in *ctx*."""
        if self.rule not in (None, "*") and self.rule != rule.id:
            return False
        if self.category is not None and self.category != rule.category:
            return False
        if self.roles is not None and ctx.role not in self.roles:
            return False
        if self.teams is not None and ctx.team not in self.teams:
            return False
        if self.operators is not None and (ctx.operator or "").lower() not in self.operators:
            return False
        if self.customers is not None:
            names = {(r.customer_name or "").lower() for r in ctx.recipients}
            names |= {str(r.customer_id) for r in ctx.recipients if r.customer_id is not None}
            if not names & self.customers:
                return False
        return True


@dataclass(frozen=True)
class Policy:
    """A loaded policy: the decision table plus everything the detectors need, built once.

    Immutable once built (frozen, read-only mappings), so the threads that evaluate
    messages share it safely; ``memos`` holds the only state that changes, memo caches of
    pure functions that are safe to share (see :mod:`.memo`)."""

    company: CompanyProfile
    settings: RulesSettings
    rules: Mapping[str, Rule]
    overrides: tuple[Override, ...]
    dictionary: Dictionary
    word_lists: tuple[WordList, ...]
    severity_actions: Mapping[str, str]
    mode: str = "enforce"
    quoted_max_action: str = "tag"
    phone_region: str = "CN"
    freemail_domains: frozenset[str] = frozenset()
    competitor_domains: frozenset[str] = frozenset()
    company_domains: frozenset[str] = frozenset()
    official_phones: frozenset[str] = frozenset()  # E.164 and digits-only forms
    official_handles: frozenset[tuple[str, str]] = frozenset()  # (kind, handle lower)
    list_threshold: int = 20
    spreadsheet_min_rows: int = 10
    sources: tuple[str, ...] = ()
    version: str = ""
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # see load_policy
    memos: Memos = field(default_factory=Memos, compare=False, repr=False)

    def resolve(self, rule_id: str, ctx: CheckContext, severity: str | None = None,
                action: str | None = None) -> tuple[str, str] | None:
        """``(action, severity)`` of *rule_id* for this context, or None if it is disabled.

        *severity*/*action* are per-term values from a word list; overrides still win.
        """
        rule = self.rules.get(rule_id)
        if rule is None:
            return None
        enabled = rule.enabled
        sev = severity or rule.severity
        act = action or (self.severity_actions.get(severity, rule.action) if severity else rule.action)
        for o in self.overrides:
            if o.applies(rule, ctx):
                if o.enabled is not None:
                    enabled = o.enabled
                if o.severity is not None:
                    sev = o.severity
                    if o.action is None:
                        act = self.severity_actions.get(sev, act)
                if o.action is not None:
                    act = o.action
        return (act, sev) if enabled else None

    def is_company_domain(self, domain: str) -> bool:
        """The company's domains and their subdomains."""
        domain = domain.lower().rstrip(".")
        return any(domain == d or domain.endswith("." + d) for d in self.company_domains)


class _Loader:
    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self.terms: list[Term] = []
        self.overrides: list[Override] = []
        self.severity_actions = {s: "allow" for s in SEVERITIES}
        self.policy: dict[str, Any] = {"freemail_domains": set(), "competitor_domains": set()}
        self.sources: list[str] = []

    def pack(self, path: Path) -> None:
        data = _load_toml(path)
        self.sources.append(str(path))
        for k in data:
            if k not in _TOP_KEYS:
                raise _err(path, k, f"unknown table (expected {', '.join(sorted(_TOP_KEYS))})")
        pol = data.get("policy", {})
        for k, v in pol.items():
            key = f"policy.{k}"
            if k not in _POLICY_KEYS:
                raise _err(path, key, "unknown key")
            if k == "mode":
                self.policy["mode"] = _check_choice(v, ("enforce", "audit"), path, key)
            elif k == "quoted_max_action":
                self.policy[k] = _check_choice(v, ACTIONS, path, key)
            elif k in ("freemail_domains", "competitor_domains"):
                self.policy[k] |= _str_set(v, path, key)
            elif k in ("list_threshold", "spreadsheet_min_rows"):
                if not isinstance(v, int) or v < 1:
                    raise _err(path, key, "must be a positive integer")
                self.policy[k] = v
            else:
                if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z]{2}", v):
                    raise _err(path, key, "must be a two-letter region code such as CN")
                self.policy[k] = v.upper()
        for sev, act in data.get("severity_actions", {}).items():
            key = f"severity_actions.{sev}"
            _check_choice(sev, SEVERITIES, path, key)
            self.severity_actions[sev] = _check_choice(act, ACTIONS, path, key)
        for i, raw in enumerate(data.get("rule", [])):
            self._rule(raw, path, i)
        for i, raw in enumerate(data.get("override", [])):
            self._override(raw, path, i)

    def _rule(self, raw: Any, path: Path, i: int) -> None:
        where = f"rule[{i}]"
        if not isinstance(raw, dict):
            raise _err(path, where, "must be a table")
        rid = raw.get("id")
        if not isinstance(rid, str) or not _RULE_ID.match(rid):
            raise _err(path, f"{where}.id", f"rule id {rid!r} must be UPPER_SNAKE")
        where = f"rule {rid}"
        for k in raw:
            if k not in _RULE_KEYS:
                raise _err(path, f"{where}.{k}", "unknown key")
        old = self.rules.get(rid)
        if old is None:
            missing = [k for k in ("category", "severity", "action") if k not in raw]
            if missing:
                raise _err(path, where, f"new rule needs {', '.join(missing)}")
        vals: dict[str, Any] = {}
        if "category" in raw:
            vals["category"] = _check_choice(raw["category"], CATEGORIES, path, f"{where}.category")
        if "severity" in raw:
            vals["severity"] = _check_choice(raw["severity"], SEVERITIES, path, f"{where}.severity")
        if "action" in raw:
            vals["action"] = _check_choice(raw["action"], ACTIONS, path, f"{where}.action")
        for k in ("kind", "description"):
            if k in raw:
                if not isinstance(raw[k], str):
                    raise _err(path, f"{where}.{k}", "must be a string")
                vals[k] = raw[k]
        if "enabled" in raw:
            if not isinstance(raw["enabled"], bool):
                raise _err(path, f"{where}.enabled", "must be true or false")
            vals["enabled"] = raw["enabled"]
        if old is None:
            cat = vals["category"]
            rule = Rule(rid, cat, vals.get("kind", "word" if cat == "sensitive_word" else cat),
                        vals["severity"], vals["action"], vals.get("description", ""), str(path),
                        vals.get("enabled", True))
        else:
            rule = replace(old, source=f"{old.source} + {path}", **vals)
        self.rules[rid] = rule
        words = raw.get("words")
        if words is not None:
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise _err(path, f"{where}.words", "must be a list of strings")
            if rule.category != "sensitive_word":
                raise _err(path, f"{where}.words", "only sensitive_word rules have words")
            for j, w in enumerate(words):
                key = term_key(w)
                if not key or (key.isascii() and len(key) < 3):
                    raise _err(path, f"{where}.words[{j}]", f"term {w!r} is empty or too short")
                self.terms.append(Term(w, key, rid, None, f"{path}:{rid}"))

    def _override(self, raw: Any, path: Path, i: int) -> None:
        where = f"override[{i}]"
        check_table(raw, path, where, _OVERRIDE_KEYS)
        rule = raw.get("rule")
        if rule is not None and rule != "*" and rule not in self.rules:
            raise _err(path, f"{where}.rule", f"unknown rule {rule!r}")
        cat = raw.get("category")
        if cat is not None:
            _check_choice(cat, CATEGORIES, path, f"{where}.category")
        if rule is None and cat is None:
            raise _err(path, where, "needs rule (an id or \"*\") or category")
        if not any(k in raw for k in ("action", "severity", "enabled")):
            raise _err(path, where, "needs action, severity or enabled")
        enabled = raw.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise _err(path, f"{where}.enabled", "must be true or false")
        self.overrides.append(Override(
            source=str(path), rule=rule, category=cat,
            roles=_str_set(raw["role"], path, f"{where}.role") if "role" in raw else None,
            teams=_str_set(raw["team"], path, f"{where}.team", False) if "team" in raw else None,
            customers=_str_set(raw["customer"], path, f"{where}.customer") if "customer" in raw else None,
            operators=_str_set(raw["operator"], path, f"{where}.operator") if "operator" in raw else None,
            action=_check_choice(raw["action"], ACTIONS, path, f"{where}.action") if "action" in raw else None,
            severity=_check_choice(raw["severity"], SEVERITIES, path, f"{where}.severity") if "severity" in raw else None,
            enabled=enabled,
        ))

    def word_list(self, path: Path) -> WordList:
        wl = parse_word_list(path)
        self.sources.append(str(path))
        action = wl.action
        if action is not None:
            _check_choice(action, ACTIONS, path, "# action")
        old = self.rules.get(wl.rule)
        if old is None:
            self.rules[wl.rule] = Rule(
                wl.rule, "sensitive_word", "word", wl.severity,
                (action or self.severity_actions.get(wl.severity, "warn")).lower(),
                wl.description or f"words from {path.name}", str(path),
            )
        elif old.category != "sensitive_word":
            raise _err(path, "# rule", f"rule {wl.rule} is not a sensitive_word rule")
        self.terms.extend(wl.terms)
        return wl


def word_list_paths(settings: RulesSettings) -> list[Path]:
    """The word lists of *settings*: ``word_lists``, then every ``*.txt`` of ``word_dirs``.

    A file named both ways is loaded once.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    candidates = [Path(p) for p in settings.word_lists]
    for d in settings.word_dirs:
        d = Path(d)
        if d.is_dir():
            candidates.extend(sorted(p for p in d.glob("*.txt") if p.is_file()))
    for p in candidates:
        try:
            key = p.resolve()
        except OSError:
            key = p
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _freemail(pol: dict[str, Any], settings: RulesSettings) -> frozenset[str]:
    return frozenset(pol["freemail_domains"] | {d.lower() for d in settings.freemail_domains_extra})


def freemail_domains(settings: RulesSettings) -> frozenset[str]:
    """The free-mail domains (the shipped pack's, the site packs', the config's extras): the one
    list behind both detection and the lookup of a recipient's customer, where a free-mail
    domain never names a customer.  Reads the packs only, without building a policy."""
    loader = _Loader()
    loader.pack(DEFAULT_PACK)
    for p in settings.packs:
        loader.pack(Path(p))
    return _freemail(loader.policy, settings)


def build_policy(company: CompanyProfile, settings: RulesSettings) -> Policy:
    """Load the shipped pack, then site packs and word lists; see :func:`load_policy`."""
    if settings.mode not in ("enforce", "audit"):
        raise _err("[rules]", "mode", f"{settings.mode!r} is not enforce or audit")
    loader = _Loader()
    loader.pack(DEFAULT_PACK)
    for p in settings.packs:
        loader.pack(Path(p))
    lists = tuple(loader.word_list(Path(p)) for p in word_list_paths(settings))
    pol = loader.policy
    mode = "audit" if "audit" in (settings.mode, pol.get("mode")) else "enforce"
    digest = hashlib.sha256()
    for src in loader.sources:
        try:
            digest.update(Path(src).read_bytes())
        except OSError:
            digest.update(src.encode())
    digest.update(repr(settings).encode() + repr(company).encode())
    threshold = settings.list_threshold
    if "list_threshold" in pol and settings.list_threshold == RulesSettings.list_threshold:
        threshold = pol["list_threshold"]
    return Policy(
        company=company,
        settings=settings,
        rules=MappingProxyType(loader.rules),
        overrides=tuple(loader.overrides),
        dictionary=Dictionary(loader.terms),
        word_lists=lists,
        severity_actions=MappingProxyType(loader.severity_actions),
        mode=mode,
        quoted_max_action=pol.get("quoted_max_action", "tag"),
        phone_region=pol.get("phone_region", "CN"),
        freemail_domains=_freemail(pol, settings),
        competitor_domains=frozenset(pol["competitor_domains"]
                                     | {d.lower() for d in settings.competitor_domains}),
        company_domains=frozenset(d.lower().lstrip("@").rstrip(".") for d in company.domains),
        list_threshold=threshold,
        spreadsheet_min_rows=pol.get("spreadsheet_min_rows", 10),
        sources=tuple(loader.sources),
        version=digest.hexdigest()[:16],
    )
