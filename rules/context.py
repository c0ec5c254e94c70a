"""Inputs of a rules evaluation: the company, the rules settings and who sends to whom."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CompanyProfile", "RulesSettings", "RecipientInfo", "CheckContext"]


@dataclass(frozen=True)
class CompanyProfile:
    """The company from ``[company]``: its own domains, phones and IM handles never trigger."""

    name: str
    domains: tuple[str, ...]
    official_phones: tuple[str, ...]
    official_handles: tuple[str, ...]  # "wechat:BrightLightingCN"


@dataclass(frozen=True)
class RulesSettings:
    """``[rules]``: extra packs and word lists, mode, language of reasons, time budget.

    ``word_dirs``: directories whose ``*.txt`` files are all loaded as word lists (in name
    order, after ``word_lists``); ``rules import-words`` copies lists into
    ``<data_dir>/rules``. A directory that does not exist is skipped.
    """

    packs: tuple[Path, ...] = ()
    word_lists: tuple[Path, ...] = ()
    mode: str = "enforce"
    language: str = "en"
    budget_ms: float = 200.0
    budget_ms_per_mb: float = 100.0
    freemail_domains_extra: tuple[str, ...] = ()
    competitor_domains: tuple[str, ...] = ()
    list_threshold: int = 20
    word_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class RecipientInfo:
    """One envelope recipient, resolved by the gateway against the customer store."""

    address: str
    customer_id: int | None
    customer_name: str | None
    owner: str | None
    domains: tuple[str, ...] = ()
    contacts: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckContext:
    """Who sends (operator, role, team) and to whom (recipients)."""

    operator: str | None = None
    role: str = "sales"
    team: str | None = None
    recipients: tuple[RecipientInfo, ...] = ()
