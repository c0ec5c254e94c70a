"""mailwarden rules …: check message files as the gateway would, list the active rules,
import word lists.

``check`` needs only ``[company]`` and ``[rules]``; when the config also has a ``[store]``
that exists, ``--to`` recipients are resolved to customers (their domains, contacts and phones
never trigger) and ``--from`` to the salesperson's role and team, and ``list`` shows which
version each running gateway has loaded. Word lists imported with ``import-words``
(:mod:`.rules_import`) live in ``<data_dir>/rules/*.txt`` and are loaded with every policy.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from mailwarden.gateway.config import Config, ConfigError, config_from_dict
from mailwarden.gateway.engines import company_profile, rules_settings
from mailwarden.rules import (
    CheckContext,
    CompanyProfile,
    Decision,
    Policy,
    RecipientInfo,
    RulesConfigError,
    RulesSettings,
    evaluate,
    load_policy,
)
from mailwarden.rules.policy import DEFAULT_PACK
from rich import box
from rich.markup import escape
from rich.table import Table

from .common import config, err, fail, out, print_json_lines

app = typer.Typer(help="Check messages against the compliance rules, list rules and the version each gateway "
                  "runs, import word lists, have the running gateways load the rules again.",
                  no_args_is_help=True)



# ----------------------------------------------------------------- shared helpers

def _data_dir(cfg: Config) -> Path:
    """``[store] data_dir`` when the config has a valid ``[store]``, else the default."""
    if cfg.store is not None:
        return cfg.store.data_dir
    if "store" in cfg.raw:
        try:
            st = config_from_dict(cfg.raw, cfg.path, {"store"}).store
            if st is not None:
                return st.data_dir
        except ConfigError:
            pass
    return cfg.data_dir


def _settings(cfg: Config) -> RulesSettings:
    try:
        settings = rules_settings(cfg)
    except ConfigError as exc:
        fail(str(exc))
    return settings


def _policy(cfg: Config, settings: RulesSettings | None = None,
            company: CompanyProfile | None = None) -> Policy:
    try:
        if company is None:
            company = company_profile(cfg)
        return load_policy(company, settings or _settings(cfg))
    except ConfigError as exc:
        fail(str(exc))
    except RulesConfigError as exc:
        fail(str(exc))


def _origin(source: str, settings: RulesSettings) -> list[str]:
    """Where a rule came from, one entry per file that defined or changed it."""
    out_: list[str] = []
    packs = {str(p) for p in settings.packs}
    for part in source.split(" + "):
        if not part:
            continue
        if part == str(DEFAULT_PACK):
            out_.append("shipped pack")
        elif part in packs or part.endswith(".toml"):
            out_.append(f"site pack {part}")
        else:
            out_.append(f"word list {part}")
    return out_ or ["shipped pack"]


def _short_origin(origin: str) -> str:
    """``word list /srv/data/rules/x.txt`` → ``word list x.txt`` (the table is for people)."""
    if origin == "shipped pack":
        return "shipped"
    kind, _, path = origin.rpartition(" ")
    return f"{kind} {Path(path).name}"


# ----------------------------------------------------------------- check

def _existing_store(cfg: Config) -> tuple[Any, str | None]:
    """The store of the config's ``[store]``, when it exists (a report never creates one), or
    None and a note for the user."""
    if "store" not in cfg.raw:
        return None, None
    try:
        st_cfg = config_from_dict(cfg.raw, cfg.path, {"store"}).store
    except ConfigError as exc:
        return None, f"store not used: {exc}"
    assert st_cfg is not None
    if st_cfg.url.startswith("sqlite:///"):
        db = Path(st_cfg.url[len("sqlite:///"):])
        if not db.is_file():  # a report must not create a database as a side effect
            return None, None
    try:
        from mailwarden.store import open_store  # noqa: PLC0415

        return open_store(st_cfg, migrate=False), None
    except Exception as exc:  # noqa: BLE001 - the report works without the store
        return None, f"store not used: {exc}"


def _store_context(cfg: Config, policy: Policy, operator: str | None, to: list[str]) -> tuple[CheckContext, str | None]:
    """Recipients (resolved to customers when a store exists) and the sender's role and team.

    Returns the context and a note for the user when the store could not be used.
    """
    plain = CheckContext(operator=operator.lower() if operator else None,
                         recipients=tuple(RecipientInfo(a.strip().lower(), None, None, None) for a in to))
    if not (to or operator):
        return plain, None
    handle, note = _existing_store(cfg)
    if handle is None:
        return plain, note
    from mailwarden.gateway.recipients import lookup_recipients  # noqa: PLC0415 - only when there is a store
    from mailwarden.store.directory import get_user  # noqa: PLC0415

    unknown = False
    try:
        with handle.session() as s:
            role, team = "sales", None
            if operator:
                user: Any = get_user(session=s, login=operator)
                if user is not None:
                    role, team = user.role, user.team
                unknown = user is None
            recipients = lookup_recipients(session=s, addresses=[a.address for a in plain.recipients],
                                           freemail=policy.freemail_domains)
    except Exception as exc:  # noqa: BLE001 - e.g. a database that was never migrated
        return plain, f"store not used: {exc}"
    finally:
        handle.close()
    if unknown:  # per-role rules and ownership would be judged for somebody who does not exist
        fail(f"--from {operator}: no such user (see mailwarden user list)")
    return replace(plain, role=role, team=team, recipients=recipients), None


def _print_decision(name: str, decision: Decision, policy: Policy) -> None:
    mode = " (audit mode: not enforced)" if policy.mode == "audit" and decision.action != "allow" else ""
    out.print(f"{name}: {decision.action}{mode}")
    if decision.findings:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("rule", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("match", overflow="fold")
        table.add_column("severity", no_wrap=True)
        table.add_column("action", no_wrap=True)
        table.add_column("where", overflow="fold")
        for f in decision.findings:
            table.add_row(f.rule, f.kind, f.match, f.severity, f.action, f.where)
        out.print(table)
    out.print(decision.reason(policy.settings.language))


@app.command("check")
def check(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Message files (.eml) to check", show_default=False),
    json_: bool = typer.Option(False, "--json", help="JSON Lines for scripts, one object per file"),
    sender: str = typer.Option(None, "--from", help="Login of the salesperson sending (for per-role rules)"),
    to: list[str] = typer.Option([], "--to", help="Envelope recipient (repeat for several)"),
) -> None:
    """Show what the gateway would decide for each message file, and why.

    Exits 0 even when a message would be blocked (this is a report); 2 when a file cannot be read.
    """
    cfg = config(ctx, {"company"})
    policy = _policy(cfg)
    check_ctx, note = _store_context(cfg, policy, sender, to)
    if note:
        err.print(note, markup=False)
    failed = False
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            err.print(f"[bold red]error:[/] {escape(str(path))}: cannot read: {escape(str(exc.strerror or exc))}",
                      markup=True)
            failed = True
            continue
        decision = evaluate(policy, data, check_ctx)
        if json_:
            print_json_lines([{"file": str(path), **decision.to_json()}])
            sys.stdout.flush()
        else:
            _print_decision(str(path), decision, policy)
    if failed:
        raise typer.Exit(2)


# ----------------------------------------------------------------- list

@app.command("list")
def list_(
    ctx: typer.Context,
    json_: bool = typer.Option(False, "--json", help="JSON Lines for scripts"),
    all_: bool = typer.Option(False, "--all", help="Include disabled rules"),
) -> None:
    """List the active rules: id, category, action, severity and where each came from; then the
    version of the files now, the last change, and the version each running gateway has loaded
    (with why its last load failed, if it did)."""
    cfg = config(ctx, {"company"})
    settings = _settings(cfg)
    try:
        policy = load_policy(company_profile(cfg), settings)
    except (ConfigError, RulesConfigError) as exc:
        for line in _running(cfg, ""):  # what the gateways go on running meanwhile
            err.print(line, markup=False)
        fail(f"{exc}; the files do not load (a running gateway keeps the rules it runs)")
    terms: dict[str, int] = {}
    for t in policy.dictionary.terms:
        terms[t.rule] = terms.get(t.rule, 0) + 1
    rows = []
    for rule in sorted(policy.rules.values(), key=lambda r: (r.category, r.id)):
        if not rule.enabled and not all_:
            continue
        rows.append({"id": rule.id, "category": rule.category, "kind": rule.kind, "action": rule.action,
                     "severity": rule.severity, "enabled": rule.enabled, "terms": terms.get(rule.id, 0),
                     "source": _origin(rule.source, settings), "version": policy.version})
    if json_:
        print_json_lines(rows)
        return
    # One table per category keeps the rows readable in an 80-column terminal.
    for category in dict.fromkeys(r["category"] for r in rows):
        table = Table(title=category, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("id", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("action", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("terms", justify="right", no_wrap=True)
        table.add_column("from", min_width=9, overflow="fold")
        for r in rows:
            if r["category"] != category:
                continue
            rid = r["id"] if r["enabled"] else f"{r['id']} (disabled)"
            table.add_row(rid, r["kind"], r["action"], r["severity"], str(r["terms"]) if r["terms"] else "",
                          "; ".join(_short_origin(o) for o in r["source"]))
        out.print(table)
    if policy.overrides:
        out.print(f"{len(policy.overrides)} override(s) adjust these per role, team, customer or operator")
    out.print(f"mode: {policy.mode}")
    out.print(f"version of these files: {policy.version}")
    for line in _running(cfg, policy.version):
        out.print(line)


def _running(cfg: Config, files_version: str) -> list[str]:
    """What the gateways sharing the store run: the last change, each gateway's version, and why
    a load failed."""
    from mailwarden.store.rulesstate import epoch_info, loaded_rules  # noqa: PLC0415

    handle, note = _existing_store(cfg)
    if handle is None:
        return [note] if note else []
    try:
        with handle.session() as s:
            info = epoch_info(session=s)
            rows = loaded_rules(session=s)
    except Exception as exc:  # noqa: BLE001 - a store older than this version: nothing to say
        return [f"gateways: not known ({type(exc).__name__})"]
    finally:
        handle.close()
    lines = []
    if info.changed_at is not None:
        lines.append(f"last change: {info.change} by {info.changed_by} at {info.changed_at:%Y-%m-%d %H:%M:%S} UTC "
                     f"(epoch {info.epoch})")
    for r in rows:
        state = "" if not files_version else (" (as above)" if r.version == files_version
                                              else " (not as above: not loaded yet, or another config)")
        lines.append(f"gateway {r.gateway}: running version {r.version}{state}, loaded "
                     f"{r.loaded_at:%Y-%m-%d %H:%M:%S} UTC, seen {r.seen_at:%Y-%m-%d %H:%M:%S} UTC")
        if r.error:
            lines.append(f"  the last load failed ({r.error_at:%Y-%m-%d %H:%M:%S} UTC): {r.error}; "
                         "the gateway keeps the rules it runs")
    return lines


from . import rules_import  # noqa: E402,F401 - registers import-words and reload on this app
