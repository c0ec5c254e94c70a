"""Signature templates: load, validate, choose and render (no MIME here).

Template layout
===============
A fresh install signs with the shipped pair ``signatures/default.txt.j2`` /
``signatures/default.html.j2`` (the salesperson's name and title plus the official contacts from
``[company]``). A site overrides it with files in ``[signatures] template_dir``::

    <template_dir>/company.txt.j2       company.html.j2        site-wide default
    <template_dir>/team/<team>.txt.j2   team/<team>.html.j2    for members of team <team>
    <template_dir>/role/<role>.txt.j2   role/<role>.html.j2    for users with role <role>

Every level is a *pair*: a text and an HTML template, so both parts of a message carry the same
signature (a level with only one of the two is a load error). The pair is chosen by the user's
team, then their role, then the company default, then the shipped default. Other files under
``template_dir`` (e.g. ``partials/contacts.html.j2``) may be included by name; the shipped
templates are reachable as ``builtin/default.txt.j2`` and ``builtin/default.html.j2``.

Variables: ``user`` (:class:`SignatureUser`), ``company`` (:class:`SignatureCompany`),
``customer`` (the customer's name or ``None``) and ``logo_src`` (``"cid:…"`` when the company
has a logo, else ``None``). HTML templates (``*.html.j2``) are autoescaped; undefined variables
are errors (``StrictUndefined``); ``None`` renders as an empty string. Templates run sandboxed.
The filter ``contact_handle`` shows ``"wechat:AcmeCN"`` as ``"WeChat: AcmeCN"``.
Every template is test-rendered at load with a complete and with a minimal sample user, so
mistakes surface when the config loads, with the file and line.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
from html import escape
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from .model import (
    UNALTERABLE_POLICIES,
    RenderedSignature,
    SignatureCompany,
    SignatureSettings,
    SignatureTemplateError,
    SignatureUser,
)

log = logging.getLogger(__name__)

# The shipped templates sit in the package folder itself, where the "*.j2" package-data glob finds them.
SHIPPED_DIR = Path(__file__).parent
_LEVEL_DIRS = ("team", "role")
_CACHE_SIZE = 4096
_SAMPLE_FULL = SignatureUser(
    login="sample", name="张伟 Zhāng Wěi", title="Sales Manager", phone="+86 571 8888 0000 ext. 801",
    email="zhangwei@example.com", team="sample-team", role="sales",
)
_SAMPLE_MINIMAL = SignatureUser(login="sample", name="José Müller")


@dataclass(frozen=True)
class _Pair:
    level: str
    text: jinja2.Template
    html: jinja2.Template


@dataclass(frozen=True)
class Logo:
    """The company logo, read once at load, embedded as an inline CID image."""

    data: bytes
    mime_type: str
    cid: str
    filename: str


class SignatureSet:
    """Everything needed to sign messages for one config version; built by :func:`load_signatures`.

    Immutable after construction and safe to share between threads.
    """

    def __init__(
        self,
        settings: SignatureSettings,
        company: SignatureCompany,
        *,
        default: _Pair,
        site: _Pair | None,
        teams: dict[str, _Pair],
        roles: dict[str, _Pair],
        logo: Logo | None,
    ) -> None:
        self.settings = settings
        self.company = company
        self.logo = logo
        self._default = default
        self._site = site
        self._teams = teams
        self._roles = roles
        self._cache: dict[tuple[SignatureUser, str | None], RenderedSignature] = {}
        # Text that identifies an old company signature of any template version.
        idents = [company.name, *company.domains, *company.official_phones]
        self.identifiers: tuple[str, ...] = tuple(i.casefold() for i in idents if i and i.strip())
        self.phone_digits: tuple[str, ...] = tuple(
            d for d in (re.sub(r"\D", "", p) for p in company.official_phones) if len(d) >= 6
        )

    @property
    def levels(self) -> list[str]:
        """Names of the template levels available, most specific first."""
        names = [p.level for p in (*self._teams.values(), *self._roles.values())]
        if self._site:
            names.append(self._site.level)
        return [*names, self._default.level]

    def _pair_for(self, user: SignatureUser) -> _Pair:
        if user.team and user.team in self._teams:
            return self._teams[user.team]
        if user.role in self._roles:
            return self._roles[user.role]
        return self._site or self._default

    @property
    def logo_src(self) -> str | None:
        return f"cid:{self.logo.cid}" if self.logo else None


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue  # no leading blank lines, no runs of blank lines
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _template_line(tb: TracebackType | None, filename: str | None) -> int | None:
    """The template line of the deepest template frame (jinja rewrites tracebacks for this)."""
    line = None
    while tb is not None:
        co_file = tb.tb_frame.f_code.co_filename
        if co_file.endswith(".j2") or (filename is not None and co_file == filename):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _as_error(exc: BaseException, template: jinja2.Template | None, sample: str = "") -> SignatureTemplateError:
    if isinstance(exc, SignatureTemplateError):
        return exc
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return SignatureTemplateError(
            f"template syntax error: {exc.message}", path=exc.filename or exc.name, line=exc.lineno
        )
    filename = template.filename if template is not None else None
    line = _template_line(exc.__traceback__, filename)
    what = "undefined variable" if isinstance(exc, jinja2.UndefinedError) else type(exc).__name__
    message = f"{what}: {exc}"
    if sample:
        message += f" (rendering {sample})"
    return SignatureTemplateError(message, path=filename, line=line)


_HANDLE_KINDS = {"wechat": "WeChat", "whatsapp": "WhatsApp", "qq": "QQ", "skype": "Skype", "line": "LINE",
                 "telegram": "Telegram", "viber": "Viber", "wecom": "WeCom", "linkedin": "LinkedIn",
                 "facebook": "Facebook", "instagram": "Instagram", "x": "X", "twitter": "Twitter"}


def contact_handle(value: str) -> str:
    """Template filter: ``"wechat:AcmeCN"`` (the ``[company] official_handles`` form) → ``"WeChat: AcmeCN"``."""
    kind, sep, handle = str(value).partition(":")
    if not sep:
        return str(value)
    kind = kind.strip()
    return f"{_HANDLE_KINDS.get(kind.lower(), kind)}: {handle.strip()}"


def _make_env(template_dir: Path | None) -> SandboxedEnvironment:
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(jinja2.PrefixLoader({"builtin": jinja2.FileSystemLoader(str(SHIPPED_DIR))}))
    env = SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2", "htm.j2", "html", "htm"),
            default_for_string=True,
            default=False,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=lambda value: "" if value is None else value,
        auto_reload=False,
    )
    env.filters["contact_handle"] = contact_handle
    return env


def _load_template(env: SandboxedEnvironment, name: str) -> jinja2.Template:
    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise _as_error(exc, None) from None
    except jinja2.TemplateNotFound as exc:
        raise SignatureTemplateError(f"template not found: {exc.name}", path=name) from None


def _load_pair(env: SandboxedEnvironment, base: Path | None, stem: str, level: str) -> _Pair | None:
    """Load ``<stem>.txt.j2`` + ``<stem>.html.j2``; None when neither exists."""
    names = (f"{stem}.txt.j2", f"{stem}.html.j2")
    if base is not None:
        present = [(base / n).is_file() for n in names]
        if not any(present):
            return None
        if not all(present):
            have, missing = (names[0], names[1]) if present[0] else (names[1], names[0])
            raise SignatureTemplateError(
                f"signature templates come in pairs: {missing} is missing next to {have}",
                path=str(base / have),
            )
    return _Pair(level, _load_template(env, names[0]), _load_template(env, names[1]))


def _load_logo(company: SignatureCompany) -> Logo | None:
    if company.logo is None:
        return None
    path = Path(company.logo)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureTemplateError(f"cannot read the company logo: {exc.strerror}", path=str(path)) from None
    mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not mime_type.startswith("image/"):
        raise SignatureTemplateError(f"the company logo is not an image ({mime_type})", path=str(path))
    domain = company.domains[0] if company.domains else "mailwarden.invalid"
    cid = f"mailwarden-logo.{hashlib.sha256(data).hexdigest()[:16]}@{domain}"
    return Logo(data=data, mime_type=mime_type, cid=cid, filename=path.name)


def _context(company: SignatureCompany, user: SignatureUser, customer: str | None,
             logo_src: str | None) -> dict[str, Any]:
    return {"user": user, "company": company, "customer": customer, "logo_src": logo_src}


def _render_pair(pair: _Pair, ctx: dict[str, Any], sample: str = "") -> RenderedSignature:
    current: jinja2.Template | None = None
    try:
        current = pair.text
        text = _tidy_text(pair.text.render(ctx))
        current = pair.html
        html = pair.html.render(ctx).strip()
    except Exception as exc:  # noqa: BLE001 - any template failure becomes a named error
        raise _as_error(exc, current, sample) from None
    return RenderedSignature(text=text, html=html, template=pair.level)


def _validate(pair: _Pair, company: SignatureCompany, logo_src: str | None, team: str | None, role: str) -> None:
    full = SignatureUser(**{**_SAMPLE_FULL.__dict__, "team": team or _SAMPLE_FULL.team, "role": role})
    minimal = SignatureUser(login=_SAMPLE_MINIMAL.login, name=_SAMPLE_MINIMAL.name, team=team, role=role)
    for user, customer, label in (
        (full, "Sample Customer GmbH", "a sample user with every field set"),
        (minimal, None, "a sample user without title, phone, email"),
    ):
        rendered = _render_pair(pair, _context(company, user, customer, logo_src), label)
        if not rendered.text.strip():
            raise SignatureTemplateError(f"renders an empty signature for {label}", path=pair.text.filename)


def load_signatures(settings: SignatureSettings, company: SignatureCompany) -> SignatureSet:
    """Load the shipped default and the site's templates, and test-render every one.

    Raises :class:`SignatureTemplateError` naming the template file and line on any syntax or
    rendering error, or on a missing half of a text/HTML pair, or an unreadable logo.
    """
    if settings.unalterable not in UNALTERABLE_POLICIES:
        raise SignatureTemplateError(
            f"[signatures] unalterable must be one of {', '.join(UNALTERABLE_POLICIES)}, not {settings.unalterable!r}"
        )
    template_dir = Path(settings.template_dir) if settings.template_dir is not None else None
    if template_dir is not None and not template_dir.is_dir():
        raise SignatureTemplateError("[signatures] template_dir is not a directory", path=str(template_dir))
    env = _make_env(template_dir)
    logo = _load_logo(company)
    logo_src = f"cid:{logo.cid}" if logo else None

    default = _load_pair(env, None, "builtin/default", "default")
    assert default is not None
    site = _load_pair(env, template_dir, "company", "company") if template_dir else None
    groups: dict[str, dict[str, _Pair]] = {"team": {}, "role": {}}
    if template_dir is not None:
        for kind in _LEVEL_DIRS:
            folder = template_dir / kind
            if not folder.is_dir():
                continue
            stems = sorted({p.name[: -len(".txt.j2")] for p in folder.glob("*.txt.j2")}
                           | {p.name[: -len(".html.j2")] for p in folder.glob("*.html.j2")})
            for stem in stems:
                pair = _load_pair(env, template_dir, f"{kind}/{stem}", f"{kind}/{stem}")
                if pair is not None:
                    groups[kind][stem] = pair

    _validate(default, company, logo_src, None, "sales")
    if site is not None:
        _validate(site, company, logo_src, None, "sales")
    for team, pair in groups["team"].items():
        _validate(pair, company, logo_src, team, "sales")
    for role, pair in groups["role"].items():
        _validate(pair, company, logo_src, None, role)
    sigs = SignatureSet(settings, company, default=default, site=site, teams=groups["team"],
                        roles=groups["role"], logo=logo)
    log.info("signature templates loaded: %s", ", ".join(sigs.levels))
    return sigs


def render(sigs: SignatureSet, user: SignatureUser, customer: str | None) -> RenderedSignature:
    """Render the signature for ``user``: team template, else role, else company default.

    Raises :class:`SignatureTemplateError` (file and line) if the template fails for this user;
    :func:`apply_signature` catches that and falls back to the plain company signature.
    """
    key = (user, customer)
    cached = sigs._cache.get(key)
    if cached is not None:
        return cached
    pair = sigs._pair_for(user)
    rendered = _render_pair(pair, _context(sigs.company, user, customer, sigs.logo_src))
    if len(sigs._cache) >= _CACHE_SIZE:
        sigs._cache.clear()  # users and customers are few; a rare full reset is cheaper than LRU
    sigs._cache[key] = rendered
    return rendered


def render_fallback(sigs: SignatureSet, user: SignatureUser) -> RenderedSignature:
    """The plain company signature: the shipped default, or, should even that fail, a fixed text."""
    try:
        return _render_pair(sigs._default, _context(sigs.company, user, None, None))
    except SignatureTemplateError:
        log.exception("shipped default signature failed for operator %s", user.login)
    company = sigs.company
    lines = [user.name, company.name, *(f"Office: {p}" for p in company.official_phones[:1])]
    text = "\n".join(line for line in lines if line)
    html = "".join(f"<div>{escape(line)}</div>" for line in text.split("\n"))
    return RenderedSignature(text=text, html=html, template="fallback")


def render_safely(sigs: SignatureSet, user: SignatureUser, customer: str | None) -> tuple[RenderedSignature, str | None]:
    """Render for sending: never raises; returns the signature and the error text on fallback."""
    try:
        return render(sigs, user, customer), None
    except SignatureTemplateError as exc:
        log.warning("signature template failed for operator %s, using the plain company signature: %s",
                    user.login, exc)
        return render_fallback(sigs, user), str(exc)
    except Exception as exc:  # noqa: BLE001 - a message is never lost to a template bug
        log.warning("signature rendering failed for operator %s: %r", user.login, exc)
        return render_fallback(sigs, user), repr(exc)


__all__ = ["Logo", "SignatureSet", "load_signatures", "render", "render_fallback", "render_safely"]
