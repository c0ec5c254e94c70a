"""mailwarden rules …: check message files as the gateway would, list the active rules,
import word lists.

``check`` needs only ``[company]`` and ``[rules]``; when the config also has a ``[store]``
that exists, ``--to`` recipients are resolved to customers (their domains, contacts and phones
never trigger) and ``--from`` to the salesperson's role and team. Word lists imported with
``import-words`` live in ``<data_dir>/rules/*.txt`` and are loaded with every policy.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
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
from mailwarden.rules.words import WordList, collect_word_list_errors, parse_word_list
from rich import box
from rich.markup import escape
from rich.table import Table

from .common import config, err, fail, out, print_json_lines

app = typer.Typer(help="Check messages against the compliance rules, list rules, import word lists.",
                  no_args_is_help=True)

WORD_DIR = "rules"  # under the data directory
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SEVERITY_HEADER = re.compile(r"^\s*#\s*severity\s*:", re.IGNORECASE)


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

def _store_context(cfg: Config, policy: Policy, operator: str | None, to: list[str]) -> tuple[CheckContext, str | None]:
    """Recipients (resolved to customers when a store exists) and the sender's role and team.

    Returns the context and a note for the user when the store could not be used.
    """
    plain = CheckContext(operator=operator.lower() if operator else None,
                         recipients=tuple(RecipientInfo(a.strip().lower(), None, None, None) for a in to))
    if "store" not in cfg.raw or not (to or operator):
        return plain, None
    try:
        st_cfg = config_from_dict(cfg.raw, cfg.path, {"store"}).store
    except ConfigError as exc:
        return plain, f"store not used: {exc}"
    assert st_cfg is not None
    if st_cfg.url.startswith("sqlite:///"):
        db = Path(st_cfg.url[len("sqlite:///"):])
        if not db.is_file():  # a report must not create a database as a side effect
            return plain, None
    try:
        from mailwarden.gateway.recipients import lookup_recipients  # noqa: PLC0415 - only when there is a store
        from mailwarden.store import open_store  # noqa: PLC0415
        from mailwarden.store.directory import get_user  # noqa: PLC0415

        handle = open_store(st_cfg, migrate=False)
    except Exception as exc:  # noqa: BLE001 - the check works without the store
        return plain, f"store not used: {exc}"
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
    """List the active rules: id, category, action, severity and where each came from."""
    cfg = config(ctx, {"company"})
    settings = _settings(cfg)
    policy = _policy(cfg, settings)
    terms: dict[str, int] = {}
    for t in policy.dictionary.terms:
        terms[t.rule] = terms.get(t.rule, 0) + 1
    rows = []
    for rule in sorted(policy.rules.values(), key=lambda r: (r.category, r.id)):
        if not rule.enabled and not all_:
            continue
        rows.append({"id": rule.id, "category": rule.category, "kind": rule.kind, "action": rule.action,
                     "severity": rule.severity, "enabled": rule.enabled, "terms": terms.get(rule.id, 0),
                     "source": _origin(rule.source, settings)})
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


# ----------------------------------------------------------------- import-words

def _read_list(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


@app.command("import-words")
def import_words(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Word list: one term per line, or term,severity (e.g. 新公司,high); "
                                "# starts a comment"),
    severity: str = typer.Option(None, "--severity", help="Default severity of the terms (info … critical)"),
    name: str = typer.Option(None, "--name", help="Name of the list (default: the file name)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change and write nothing"),
) -> None:
    """Validate a word list and install it for every gateway using this data directory.

    A line is a term, or a term, a comma and a severity (info, low, medium, high, critical); a
    TAB, a full-width comma or anything but a severity after the last comma is refused with
    the line number. Nothing is written when a line is bad. Importing a list with an existing
    name replaces it: --dry-run shows the terms that would be added, removed or changed.
    """
    from mailwarden.rules.findings import SEVERITIES  # noqa: PLC0415

    cfg = config(ctx, {"store"})
    assert cfg.store is not None
    if severity is not None and severity.lower() not in SEVERITIES:
        fail(f"--severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    list_name = name if name is not None else file.stem
    if not _NAME.match(list_name):
        fail(f"--name {list_name!r}: use letters, digits, '-', '_' or '.' (at most 64)")
    if not file.is_file():
        fail(f"{file}: no such file")
    errors = collect_word_list_errors(file)
    if errors:
        for lineno, problem in errors:
            where = f"line {lineno}: " if lineno else ""
            err.print(f"{file}: {where}{problem}", markup=False)
        fail(f"{file}: {len(errors)} bad line(s); nothing was imported")
    try:
        text = _read_list(file)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{file}: cannot read: {exc}")
    lines = text.splitlines()
    if severity is not None:
        lines = [f"# severity: {severity.lower()}"] + [ln for ln in lines if not _SEVERITY_HEADER.match(ln)]
    content = "\n".join(lines) + "\n"

    target_dir = cfg.store.data_dir / WORD_DIR
    target = target_dir / f"{list_name}.txt"
    existed = target.exists()
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        # Written in a private subdirectory under its final name, so the rule id comes out the
        # same and no policy load (which reads only *.txt directly in target_dir) sees it
        # half-written; then renamed into place.
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=target_dir))
    except OSError as exc:
        fail(f"{target_dir}: cannot write: {exc.strerror or exc}")
    tmp = staging / target.name
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        try:
            wl = parse_word_list(tmp)
            # The whole policy must still load with the new list (e.g. its rule id is free).
            load_policy(CompanyProfile("", (), (), ()), _check_settings(cfg, target, tmp))
        except (RulesConfigError, ConfigError) as exc:
            fail(f"{file}: {_strip_path(str(exc), tmp)}; nothing was imported")
        if not wl.terms:
            fail(f"{file}: no terms in the list; nothing was imported")
        if dry_run:
            for line in word_changes(_installed(target) if existed else None, wl):
                out.print(line)
            out.print(f"dry run: {file} would be installed as {target} (rule {wl.rule}, {len(wl.terms)} terms); "
                      "nothing was written")
            return
        os.replace(tmp, target)
        _fsync_dir(target_dir)
    finally:
        tmp.unlink(missing_ok=True)
        staging.rmdir()
    replaced = " (replaced the previous list)" if existed else ""
    out.print(f"imported {len(wl.terms)} terms from {file} into {target} as rule {wl.rule}{replaced}")


def _installed(target: Path) -> WordList | None:
    """The list installed under the name now (None when it no longer reads: all of it is new)."""
    try:
        return parse_word_list(target)
    except RulesConfigError as exc:
        err.print(f"the installed {target.name} does not read ({exc}): every term counts as new", markup=False)
        return None


def word_changes(old: WordList | None, new: WordList) -> list[str]:
    """What installing ``new`` over ``old`` changes, a line per term (severity as it applies)."""
    def terms(wl: WordList | None) -> dict[str, str]:
        return {} if wl is None else {t.text: t.severity or wl.severity for t in wl.terms}

    before, after = terms(old), terms(new)
    lines = [f"+ {t} ({sev})" for t, sev in after.items() if t not in before]
    lines += [f"- {t} ({sev})" for t, sev in before.items() if t not in after]
    lines += [f"~ {t}: {before[t]} → {sev}" for t, sev in after.items() if t in before and before[t] != sev]
    if old is not None and old.rule != new.rule:
        lines.append(f"~ rule {old.rule} → {new.rule}")
    return lines or ["no change to the terms"]


def _strip_path(message: str, tmp: Path) -> str:
    return message.replace(f"{tmp}: ", "").replace(str(tmp), "the list")


def _check_settings(cfg: Config, target: Path, tmp: Path) -> RulesSettings:
    """The configured rules, with *tmp* standing in for *target* (which may not exist yet)."""
    try:
        settings = rules_settings(cfg)
    except ConfigError as exc:
        fail(str(exc))
    dirs = settings.word_dirs or (target.parent,)
    others = [p for d in dirs if d.is_dir() for p in sorted(d.glob("*.txt"))
              if p.is_file() and p.resolve() != target.resolve()]
    return replace(settings, word_lists=(*settings.word_lists, *others, tmp), word_dirs=())


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
