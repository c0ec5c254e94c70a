"""Build the inputs of the pure engines (rules, signatures) from the config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mailwarden.gateway.config import ConfigError, _default_data_dir
from mailwarden.gateway.confread import TableReader

if TYPE_CHECKING:
    from mailwarden.gateway.submission.scanpool import ScanSettings
    from mailwarden.rules.context import CompanyProfile, RulesSettings
    from mailwarden.signatures import SignatureCompany, SignatureSettings

    from mailwarden.gateway.config import Config


def company_profile(cfg: "Config") -> "CompanyProfile":
    from mailwarden.rules.context import CompanyProfile

    if cfg.company is None:
        raise ConfigError(f"{cfg.path}: [company] was not loaded")
    c = cfg.company
    return CompanyProfile(name=c.name, domains=c.domains, official_phones=c.official_phones,
                          official_handles=c.official_handles)


RULES_KEYS = {"packs", "word_lists", "mode", "language", "budget_ms", "budget_ms_per_mb", "competitor_domains", "list_threshold",
              "freemail_domains", "quarantine_timeout", "quarantine_timeout_action", "scan_workers", "scan_memory_mb"}


def quarantine_expiry(cfg: "Config") -> tuple[float | None, str]:
    """``[rules] quarantine_timeout`` (none: held until a person decides) and what happens then."""
    r = TableReader(str(cfg.path), "rules", cfg.rules_raw)
    timeout = r.duration("quarantine_timeout", "0") or None
    return timeout, r.choice("quarantine_timeout_action", ("reject", "release"), "reject")


def rules_settings(cfg: "Config") -> "RulesSettings":
    from mailwarden.rules.context import RulesSettings

    r = TableReader(str(cfg.path), "rules", cfg.rules_raw)
    r.unknown_keys(RULES_KEYS)
    base = cfg.path.parent if cfg.path else Path.cwd()

    def paths(key: str) -> tuple[Path, ...]:
        out = []
        for item in r.str_list(key):
            p = Path(item).expanduser()
            p = p if p.is_absolute() else base / p
            if not p.is_file():
                raise r.fail(key, f"{p} does not exist")
            out.append(p)
        return tuple(out)

    budget = r.get("budget_ms", (int, float), 200.0)
    if budget <= 0:
        raise r.fail("budget_ms", "must be positive")
    threshold = r.get("list_threshold", int, 20)
    if threshold < 2:
        raise r.fail("list_threshold", "must be at least 2")
    return RulesSettings(
        packs=paths("packs"),
        word_lists=paths("word_lists"),
        mode=r.choice("mode", ("enforce", "audit"), "enforce"),
        language=r.choice("language", ("en", "zh"), "en"),
        budget_ms=float(budget),
        budget_ms_per_mb=float(r.get("budget_ms_per_mb", (int, float), 100.0)),
        # [outbound] freemail_domains too: one list for detection and for customer lookups
        freemail_domains_extra=tuple(d.lower() for d in (*r.str_list("freemail_domains"), *TableReader(
            str(cfg.path), "outbound", cfg.raw.get("outbound", {})).str_list("freemail_domains"))),
        competitor_domains=tuple(d.lower() for d in r.str_list("competitor_domains")),
        list_threshold=threshold,
        # word lists added with `mailwarden rules import-words`
        word_dirs=(_default_data_dir(cfg.path, cfg.raw.get("store", {})) / "rules",),
    )


def scan_settings(cfg: "Config") -> "ScanSettings":
    """``[rules] scan_workers`` (default: one per core beyond the first, at least 2) and
    ``scan_memory_mb`` (memory one scan may take beyond the loaded policy; 0: no limit)."""
    from mailwarden.gateway.submission.scanpool import DEFAULT_MEMORY_MB, ScanSettings, default_workers

    r = TableReader(str(cfg.path), "rules", cfg.rules_raw)
    workers = r.get("scan_workers", int, default_workers())
    if not 1 <= workers <= 64:
        raise r.fail("scan_workers", "must be between 1 and 64")
    memory = r.get("scan_memory_mb", int, DEFAULT_MEMORY_MB)
    if memory != 0 and memory < 64:
        raise r.fail("scan_memory_mb", "must be at least 64 (or 0: no limit)")
    return ScanSettings(workers=workers, memory_mb=memory)


SIGNATURE_KEYS = {"template_dir", "strip_client_signature", "add_text_alternative", "unalterable"}


def signature_inputs(cfg: "Config") -> tuple["SignatureSettings", "SignatureCompany"]:
    """``[signatures]`` and ``[company]`` as the signature engine's settings and company
    (paths relative to the config file)."""
    from mailwarden.signatures import SignatureCompany, SignatureSettings

    r = TableReader(str(cfg.path), "signatures", cfg.signatures_raw)
    r.unknown_keys(SIGNATURE_KEYS)
    base = cfg.path.parent if cfg.path else Path.cwd()
    settings = SignatureSettings(
        template_dir=r.path("template_dir", base),
        strip_client_signature=r.get("strip_client_signature", bool, False),
        add_text_alternative=r.get("add_text_alternative", bool, False),
        unalterable=r.choice("unalterable", ("pass", "flag", "block"), "pass"),
    )
    c = cfg.company
    if c is None:
        raise ConfigError(f"{cfg.path}: [company] was not loaded")
    company = SignatureCompany(name=c.name, domains=c.domains, official_phones=c.official_phones,
                               official_handles=c.official_handles, address=c.address, website=c.website,
                               logo=c.logo)
    return settings, company


def freemail_domains(cfg: "Config") -> tuple[str, ...]:
    """The free-mail domains in force: the rule packs' list plus ``[rules]`` and ``[outbound]``
    ``freemail_domains``.  The same list the policy detects with (``Policy.freemail_domains``)."""
    from mailwarden.rules.policy import freemail_domains as from_packs

    return tuple(sorted(from_packs(rules_settings(cfg))))
