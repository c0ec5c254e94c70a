"""mailwarden rules import-words | reload: install a word list, or tell the running gateways to
load their rules again.

A word list imported here lives in ``<data_dir>/rules/<name>.txt`` (written whole, then renamed
into place).  Each import and each ``reload`` moves the store's rules epoch in the same
transaction as its audit event, naming the admin: every gateway sharing the store loads its
rules again within a second or two (see :mod:`mailwarden.gateway.rulesreload`).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path

import typer
from mailwarden.gateway.config import Config, ConfigError
from mailwarden.gateway.engines import rules_settings
from mailwarden.rules import CompanyProfile, RulesConfigError, RulesSettings, load_policy
from mailwarden.rules.words import WordList, collect_word_list_errors, parse_word_list
from mailwarden.store import open_store
from mailwarden.store.rulesstate import bump

from .common import actor, config, err, fail, out, store
from .rules_cmd import app

WORD_DIR = "rules"  # under the data directory
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SEVERITY_HEADER = re.compile(r"^\s*#\s*severity\s*:", re.IGNORECASE)


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
    Running gateways load the new list within a second or two; the import is an audit event.
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

    handle = None
    if not dry_run:  # opened before anything is written: a store that cannot record the change stops it
        try:
            handle = open_store(cfg.store)
        except Exception as exc:  # noqa: BLE001 - a database that cannot be opened or migrated
            fail(f"cannot open the store at {cfg.store.url.split('@')[-1]}: {exc}")
    try:
        _install(cfg, file, list_name, content, dry_run, handle)
    finally:
        if handle is not None:
            handle.close()


def _install(cfg: Config, file: Path, list_name: str, content: str, dry_run: bool, handle) -> None:  # type: ignore[no-untyped-def]
    assert cfg.store is not None
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
        before = _installed(target) if existed else None
        os.replace(tmp, target)
        _fsync_dir(target_dir)
    finally:
        tmp.unlink(missing_ok=True)
        staging.rmdir()
    added, removed, changed = _counts(before, wl)
    change = f"word list {list_name}: +{added} -{removed} ~{changed} terms (rule {wl.rule})"
    with handle.session() as s:
        epoch = bump(session=s, actor=actor(), change=change)
        handle.audit.append(actor=actor(), action="rules.import_words", target=list_name, session=s,
                            file=file.name, rule=wl.rule, terms=len(wl.terms), added=added, removed=removed,
                            changed=changed, replaced=existed, epoch=epoch)
        s.commit()
    replaced = " (replaced the previous list)" if existed else ""
    out.print(f"imported {len(wl.terms)} terms from {file} into {target} as rule {wl.rule}{replaced}; "
              "running gateways load it within seconds")


def _counts(old: WordList | None, new: WordList) -> tuple[int, int, int]:
    """Terms added, removed and changed in severity by installing *new* over *old*."""
    lines = word_changes(old, new)
    return tuple(sum(1 for ln in lines if ln.startswith(p + " ") and not ln.startswith("~ rule "))  # type: ignore[return-value]
                 for p in "+-~")


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


@app.command("reload")
def reload(ctx: typer.Context,
           reason: str = typer.Option("", "--reason", help="What changed, for the audit log (e.g. the pack you edited)")) -> None:
    """Tell every gateway sharing the store to load its rule packs and word lists again now.

    Gateways also notice edited pack and word-list files by themselves within a second or two;
    this names the admin in the audit log, and reaches gateways that only share the store.
    The files are checked first: nothing is sent when they do not load.
    """
    with store(ctx, {"company"}) as (cfg, st):
        from mailwarden.gateway.engines import company_profile  # noqa: PLC0415

        try:
            policy = load_policy(company_profile(cfg), rules_settings(cfg))
        except (RulesConfigError, ConfigError) as exc:
            fail(f"{exc}; the gateways keep the rules they run")
        with st.session() as s:
            epoch = bump(session=s, actor=actor(), change=reason or "rules reload")
            st.audit.append(actor=actor(), action="rules.reload", target=policy.version, session=s,
                            reason=reason, epoch=epoch)
            s.commit()
    out.print(f"asked the gateways to load the rules again (version {policy.version}, epoch {epoch})")
