"""Configuration: one TOML file, validated per command.

``load_config(path, sections)`` reads the file named by ``--config`` (or the
``MAILWARDEN_CONFIG`` environment variable) and validates only the sections the
calling command needs, so ``rules check`` works with a config that has no
``[upstream]`` yet.  Every error names the file, the key and the problem.

The upstream password is read from an environment variable or a file and kept in
a :class:`Secret`, whose ``repr``/``str`` never show it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_CONFIG = "MAILWARDEN_CONFIG"
TLS_MODES = ("implicit", "starttls", "none")
ROLES = ("sales", "senior", "supervisor", "admin")
KNOWN_SECTIONS = (
    "company", "upstream", "listen", "store", "outbound", "auth", "rules", "signatures", "digest",
)


class ConfigError(Exception):
    """A configuration problem a person can fix; ``str()`` names file, key and problem."""


class Secret:
    """A string that never prints itself (passwords, keys)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Company:
    name: str
    domains: tuple[str, ...]
    official_phones: tuple[str, ...] = ()
    official_handles: tuple[str, ...] = ()
    address: str | None = None
    website: str | None = None
    logo: Path | None = None


@dataclass(frozen=True)
class Upstream:
    imap: HostPort
    imap_tls: str
    smtp: HostPort
    smtp_tls: str
    username: str
    password: Secret
    ca_file: Path | None
    tls_verify: bool
    sent_folder: str
    inbox_folder: str


@dataclass(frozen=True)
class Listen:
    smtp: HostPort | None
    smtps: HostPort | None
    imap: HostPort | None
    imaps: HostPort | None
    tls_cert: Path
    tls_key: Path
    hostname: str


@dataclass(frozen=True)
class Store:
    url: str
    data_dir: Path
    audit_key_file: Path


@dataclass(frozen=True)
class Outbound:
    from_format: str
    unknown_recipients: str  # "operator" | "pool"
    expose_headers: bool
    max_message_size: int
    retry_initial: float
    retry_max_age: float
    relay_connections: int
    freemail_domains: tuple[str, ...]


@dataclass(frozen=True)
class Auth:
    max_failures: int
    base_delay: float
    max_delay: float
    lockout_seconds: float


@dataclass
class Config:
    path: Path | None
    raw: dict[str, Any]
    company: Company | None = None
    upstream: Upstream | None = None
    listen: Listen | None = None
    store: Store | None = None
    outbound: Outbound | None = None
    auth: Auth | None = None
    rules_raw: dict[str, Any] = field(default_factory=dict)
    signatures_raw: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        if self.store is None:
            return _default_data_dir(self.path, {})
        return self.store.data_dir

    # Views for the pure engines, built lazily so that importing the config
    # does not import the rules or signatures packages.
    @property
    def rules(self) -> Any:
        from mailwarden.gateway.engines import rules_settings

        return rules_settings(self)

    @property
    def company_profile(self) -> Any:
        from mailwarden.gateway.engines import company_profile

        return company_profile(self)


class _Reader:
    """Typed access to one section, with errors that name file, section and key."""

    def __init__(self, where: str, section: str, data: Any) -> None:
        self.where = where
        self.section = section
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        self.data = data

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: [{self.section}] {key}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, required: bool = False) -> Any:
        if key not in self.data:
            if required or default is ...:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(key, f"must be {_article(name)} {name}, not {type(value).__name__}")
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(key, "must be a list of non-empty strings")
        return tuple(item.strip() for item in value)

    def hostport(self, key: str, default: str | None = ..., *, required: bool = False) -> HostPort | None:  # type: ignore[assignment]
        value = self.get(key, str, default, required=required)
        if value is None or value == "":
            return None
        return parse_hostport(value, lambda problem: self.fail(key, problem))

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def duration(self, key: str, default: str) -> float:
        value = self.get(key, (str, int, float), default)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def path(self, key: str, base: Path, default: Path | None = None) -> Path | None:
        value = self.get(key, str, None)
        if value is None:
            return default
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p)

    def unknown_keys(self, known: set[str]) -> None:
        extra = sorted(set(self.data) - known)
        if extra:
            raise self.fail(extra[0], f"unknown key (known keys: {', '.join(sorted(known))})")


def _article(name: str) -> str:
    return "an" if name[:1] in "aeiou" else "a"


def parse_hostport(value: str, fail: Any = None) -> HostPort:
    """``host:port`` or ``[v6]:port`` → HostPort."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\s\[\]]+):(\d+)", value.strip())
    if not m:
        problem = f"must look like host:port, not {value!r}"
        raise fail(problem) if fail else ValueError(problem)
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 <= port <= 65535:
        problem = f"port {port} is out of range"
        raise fail(problem) if fail else ValueError(problem)
    return HostPort(host, port)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")


def parse_duration(value: str | int | float) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"4h"``, ``"5d"`` → seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.fullmatch(value.strip())
    if not m:
        raise ValueError(f"must be a duration like 30s, 15m, 4h or 5d, not {value!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _default_data_dir(path: Path | None, store: dict[str, Any]) -> Path:
    if "data_dir" in store and isinstance(store["data_dir"], str):
        p = Path(store["data_dir"]).expanduser()
        return p if p.is_absolute() or path is None else path.parent / p
    return (path.parent if path else Path.cwd()) / "data"


def resolve_path(path: str | Path | None) -> Path:
    if path is None:
        env = os.environ.get(ENV_CONFIG)
        if not env:
            raise ConfigError(f"no configuration file: pass --config FILE or set {ENV_CONFIG}")
        path = env
    return Path(path).expanduser().resolve()


def load_config(path: str | Path | None, sections: set[str] | frozenset[str] = frozenset()) -> Config:
    """Read the TOML file and validate the named sections.

    Sections not named are kept raw and not validated, so each command checks
    only what it uses.
    """
    p = resolve_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read configuration: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    return config_from_dict(raw, p, sections)


def config_from_dict(raw: dict[str, Any], path: Path | None, sections: set[str] | frozenset[str]) -> Config:
    where = str(path) if path else "<config>"
    for name in raw:
        if name not in KNOWN_SECTIONS:
            raise ConfigError(f"{where}: [{name}] is not a known section (known: {', '.join(KNOWN_SECTIONS)})")
    base = path.parent if path else Path.cwd()
    cfg = Config(path=path, raw=raw)
    cfg.rules_raw = raw.get("rules", {}) if isinstance(raw.get("rules", {}), dict) else {}
    cfg.signatures_raw = raw.get("signatures", {}) if isinstance(raw.get("signatures", {}), dict) else {}
    need = set(sections)
    if "company" in need:
        cfg.company = _company(_Reader(where, "company", raw.get("company", {})), base)
    if "store" in need:
        cfg.store = _store(_Reader(where, "store", raw.get("store", {})), path, base)
    if "upstream" in need:
        cfg.upstream = _upstream(_Reader(where, "upstream", raw.get("upstream", {})), base)
    if "listen" in need:
        cfg.listen = _listen(_Reader(where, "listen", raw.get("listen", {})), cfg.data_dir, base)
    if "outbound" in need:
        cfg.outbound = _outbound(_Reader(where, "outbound", raw.get("outbound", {})))
    if "auth" in need:
        cfg.auth = _auth(_Reader(where, "auth", raw.get("auth", {})))
    return cfg


def _company(r: _Reader, base: Path) -> Company:
    r.unknown_keys({"name", "domains", "official_phones", "official_handles", "address", "website", "logo"})
    name = r.get("name", str, required=True).strip()
    if not name:
        raise r.fail("name", "must not be empty")
    if any(c in name for c in "\r\n"):
        raise r.fail("name", "must be one line")
    domains = tuple(d.lower().lstrip("@") for d in r.str_list("domains"))
    if not domains:
        raise r.fail("domains", "must list at least one domain, e.g. domains = [\"company.com\"]")
    handles = r.str_list("official_handles")
    for h in handles:
        if ":" not in h:
            raise r.fail("official_handles", f"{h!r} must look like kind:handle, e.g. wechat:BrightLightingCN")
    return Company(
        name=name,
        domains=domains,
        official_phones=r.str_list("official_phones"),
        official_handles=handles,
        address=r.get("address", str, None),
        website=r.get("website", str, None),
        logo=r.path("logo", base),
    )


def _store(r: _Reader, path: Path | None, base: Path) -> Store:
    r.unknown_keys({"url", "data_dir", "audit_key_file"})
    data_dir = _default_data_dir(path, r.data)
    url = r.get("url", str, "") or f"sqlite:///{data_dir / 'mailwarden.db'}"
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", url):
        raise r.fail("url", "must be a sqlite:/// or postgresql:// URL")
    key_file = r.path("audit_key_file", base, data_dir / "audit.key")
    assert key_file is not None
    return Store(url=url, data_dir=data_dir, audit_key_file=key_file)


def _upstream(r: _Reader, base: Path) -> Upstream:
    r.unknown_keys({
        "imap", "imap_tls", "smtp", "smtp_tls", "username", "password_env", "password_file",
        "ca_file", "tls_verify", "sent_folder", "inbox_folder",
    })
    imap = r.hostport("imap", required=True)
    smtp = r.hostport("smtp", required=True)
    assert imap is not None and smtp is not None
    username = r.get("username", str, required=True)
    env = r.get("password_env", str, None)
    pfile = r.path("password_file", base)
    if env and pfile:
        raise r.fail("password_env", "set either password_env or password_file, not both")
    if env:
        if env not in os.environ:
            raise r.fail("password_env", f"the environment variable {env} is not set")
        password = os.environ[env]
    elif pfile:
        try:
            password = pfile.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise r.fail("password_file", f"cannot read {pfile}: {exc.strerror}") from None
    else:
        raise r.fail("password_env", "is required (or password_file): the upstream password is never written in the config")
    ca_file = r.path("ca_file", base)
    if ca_file is not None and not ca_file.is_file():
        raise r.fail("ca_file", f"{ca_file} does not exist")
    return Upstream(
        imap=imap,
        imap_tls=r.choice("imap_tls", TLS_MODES, "implicit"),
        smtp=smtp,
        smtp_tls=r.choice("smtp_tls", TLS_MODES, "implicit"),
        username=username,
        password=Secret(password),
        ca_file=ca_file,
        tls_verify=r.get("tls_verify", bool, True),
        sent_folder=r.get("sent_folder", str, "Sent"),
        inbox_folder=r.get("inbox_folder", str, "INBOX"),
    )


def _listen(r: _Reader, data_dir: Path, base: Path) -> Listen:
    r.unknown_keys({"smtp", "smtps", "imap", "imaps", "tls_cert", "tls_key", "hostname"})
    smtp = r.hostport("smtp", "127.0.0.1:587")
    smtps = r.hostport("smtps", "")
    if smtp is None and smtps is None:
        raise r.fail("smtp", "set smtp or smtps: the gateway needs somewhere to listen")
    cert = r.path("tls_cert", base, data_dir / "tls" / "gateway.crt")
    key = r.path("tls_key", base, data_dir / "tls" / "gateway.key")
    assert cert is not None and key is not None
    return Listen(
        smtp=smtp,
        smtps=smtps,
        imap=r.hostport("imap", ""),
        imaps=r.hostport("imaps", ""),
        tls_cert=cert,
        tls_key=key,
        hostname=r.get("hostname", str, "localhost"),
    )


DEFAULT_FREEMAIL = (
    "qq.com", "foxmail.com", "163.com", "126.com", "yeah.net", "sina.com", "sina.cn", "sohu.com",
    "aliyun.com", "139.com", "189.cn", "gmail.com", "googlemail.com", "outlook.com", "hotmail.com",
    "live.com", "msn.com", "yahoo.com", "yahoo.com.cn", "icloud.com", "me.com", "mac.com",
    "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "web.de", "mail.ru",
    "yandex.ru", "yandex.com", "zoho.com", "naver.com", "daum.net", "hanmail.net",
)


def _outbound(r: _Reader) -> Outbound:
    r.unknown_keys({
        "from_format", "unknown_recipients", "expose_headers", "max_message_size", "retry_initial",
        "retry_max_age", "relay_connections", "freemail_domains",
    })
    fmt = r.get("from_format", str, "{name} | {company}")
    try:
        fmt.format(name="n", company="c", login="l")
    except (KeyError, IndexError, ValueError) as exc:
        raise r.fail("from_format", f"unknown placeholder {exc}; use {{name}}, {{company}}, {{login}}") from None
    size = r.get("max_message_size", int, 50 * 1024 * 1024)
    if size < 1024:
        raise r.fail("max_message_size", "must be at least 1024 bytes")
    conns = r.get("relay_connections", int, 4)
    if not 1 <= conns <= 32:
        raise r.fail("relay_connections", "must be between 1 and 32")
    extra = tuple(d.lower() for d in r.str_list("freemail_domains"))
    return Outbound(
        from_format=fmt,
        unknown_recipients=r.choice("unknown_recipients", ("operator", "pool"), "operator"),
        expose_headers=r.get("expose_headers", bool, False),
        max_message_size=size,
        retry_initial=r.duration("retry_initial", "30s"),
        retry_max_age=r.duration("retry_max_age", "5d"),
        relay_connections=conns,
        freemail_domains=DEFAULT_FREEMAIL + extra,
    )


def _auth(r: _Reader) -> Auth:
    r.unknown_keys({"max_failures", "base_delay", "max_delay", "lockout"})
    return Auth(
        max_failures=r.get("max_failures", int, 10),
        base_delay=r.duration("base_delay", "0.5s"),
        max_delay=r.duration("max_delay", "8s"),
        lockout_seconds=r.duration("lockout", "15m"),
    )
