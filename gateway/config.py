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

from mailwarden.gateway.confread import ConfigError, HostPort, Secret, TableReader, parse_duration, parse_hostport

__all__ = ["Config", "ConfigError", "HostPort", "Secret", "load_config", "config_from_dict", "parse_duration",
           "parse_hostport"]

ENV_CONFIG = "MAILWARDEN_CONFIG"
TLS_MODES = ("implicit", "starttls", "none")
KNOWN_SECTIONS = (
    "company", "upstream", "listen", "store", "outbound", "auth", "rules", "signatures", "sync", "filing", "imap",
)
ROLES = ("sales", "senior", "supervisor", "admin")


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
    imap_connections: int = 3  # IMAP logins the gateway holds at most (relay and sync together)


@dataclass(frozen=True)
class Listen:
    smtp: HostPort | None
    smtps: HostPort | None
    imap: HostPort | None
    imaps: HostPort | None
    tls_cert: Path
    tls_key: Path
    hostname: str
    max_connections: int | None = None   # None: derived from the descriptor limit at start
    max_connections_per_address: int = 20  # not yet logged in, from one client address
    login_timeout: float = 60.0          # seconds from connect to AUTH
    http: HostPort | None = None         # /metrics and /healthz; None (the default): off
    autoconfig: bool = False             # also Thunderbird's autoconfig files on the http address
    client_ports: tuple[tuple[str, int], ...] = ()  # (listener, port) mail clients reach, behind a port mapping


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


@dataclass(frozen=True)
class Auth:
    max_failures: int          # one login from one address
    base_delay: float
    max_delay: float
    lockout_seconds: float
    max_failures_address: int = 100  # any login from one address (an office behind one NAT address)
    max_failures_login: int = 50     # one login from any address


@dataclass(frozen=True)
class Sync:
    """``[sync]``: how the store's copy of the company mailbox is kept current."""

    enabled: bool = True
    folders: tuple[str, ...] = ()  # besides INBOX and Sent
    idle: bool = True  # one connection waits in IDLE on INBOX (when the server offers it)
    workers: int = 1  # connections that fetch
    poll_interval: float = 60.0  # seconds between looks at every folder without IDLE news
    diff_interval: float = 600.0  # seconds between checks for flags changed and messages removed upstream
    daily_download_mb: int = 0  # pace the import under a provider's daily cap (Gmail: 2500); 0: no cap

    @property
    def connections(self) -> int:
        return self.workers + (1 if self.idle else 0)


@dataclass(frozen=True)
class Imap:
    """The salespeople's IMAP view ([listen] imap/imaps say where it listens)."""

    mask_roles: tuple[str, ...] = ("sales",)  # served customers' private contacts masked
    bulk_bodies: int = 500  # message bodies fetched within bulk_minutes that make an audit event
    bulk_minutes: float = 10.0


@dataclass(frozen=True)
class Filing:
    """``[filing]``: where mail from unknown senders goes, and customers nobody writes to."""

    unknown: str = "pool"  # "pool" | "round-robin"
    on_duty: tuple[str, ...] = ()  # logins taking round-robin mail; empty: every sales and senior user
    return_after_days: int = 0  # a customer with no mail for this long returns to the pool; 0: never
    remind_days_before: int = 7
    claim_limits: tuple[tuple[str, int], ...] = (("sales", 50), ("senior", 200))  # customers a role may hold by claiming


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
    sync: Sync | None = None
    filing: Filing | None = None
    imap: Imap | None = None
    rules_raw: dict[str, Any] = field(default_factory=dict)
    signatures_raw: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        if self.store is None:  # [store] not validated: still honour its data_dir
            store = self.raw.get("store", {})
            return _default_data_dir(self.path, store if isinstance(store, dict) else {})
        return self.store.data_dir



def _default_data_dir(path: Path | None, store: dict[str, Any]) -> Path:
    """``[store] data_dir`` (relative to the config file), ``data`` beside it by default.  A
    value that names no folder is an error, also where [store] is not otherwise validated: a
    silent fallback would look like a fresh, empty installation."""
    if "data_dir" not in store:
        return (path.parent if path else Path.cwd()) / "data"
    r = TableReader(str(path) if path else "<config>", "store", store)
    value = r.get("data_dir", str)
    if not value.strip():
        raise r.fail("data_dir", "must name a folder, not be empty")
    p = Path(value).expanduser()
    return p if p.is_absolute() or path is None else path.parent / p


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
        cfg.company = _company(TableReader(where, "company", raw.get("company", {})), base)
    if "store" in need:
        cfg.store = _store(TableReader(where, "store", raw.get("store", {})), path, base)
    if "upstream" in need:
        cfg.upstream = _upstream(TableReader(where, "upstream", raw.get("upstream", {})), base)
    if "listen" in need:
        cfg.listen = _listen(TableReader(where, "listen", raw.get("listen", {})), cfg.data_dir, base)
    if "outbound" in need:
        cfg.outbound = _outbound(TableReader(where, "outbound", raw.get("outbound", {})))
    if "auth" in need:
        cfg.auth = _auth(TableReader(where, "auth", raw.get("auth", {})))
    if "sync" in need:
        cfg.sync = _sync(TableReader(where, "sync", raw.get("sync", {})), cfg.upstream)
    if "filing" in need:
        cfg.filing = _filing(TableReader(where, "filing", raw.get("filing", {})))
    if "imap" in need:
        cfg.imap = _imap(TableReader(where, "imap", raw.get("imap", {})))
    return cfg


def _imap(r: TableReader) -> Imap:
    r.unknown_keys({"mask_roles", "bulk_bodies", "bulk_window"})
    roles = tuple(x.strip().lower() for x in r.get("mask_roles", list, ["sales"]))
    for role in roles:
        if role not in ROLES:
            raise r.fail("mask_roles", f"{role!r} is not a role (roles: {', '.join(ROLES)})")
    bodies = r.get("bulk_bodies", int, 500)
    if bodies < 0:
        raise r.fail("bulk_bodies", "must be 0 (no bulk-download events) or more")
    window = r.duration("bulk_window", "10m")
    if window <= 0:
        raise r.fail("bulk_window", "must be more than 0")
    return Imap(mask_roles=roles, bulk_bodies=bodies, bulk_minutes=window / 60)


def _company(r: TableReader, base: Path) -> Company:
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


def _password(r: TableReader, base: Path) -> str | None:
    """``password_env`` or ``password_file`` (a Docker/systemd secret file), None when neither is set."""
    env = r.get("password_env", str, None)
    pfile = r.path("password_file", base)
    if env and pfile:
        raise r.fail("password_env", "set either password_env or password_file, not both")
    if env:
        if env not in os.environ:
            raise r.fail("password_env", f"the environment variable {env} is not set")
        return os.environ[env]
    if pfile:
        try:
            return pfile.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise r.fail("password_file", f"cannot read {pfile}: {exc.strerror}") from None
    return None


def _store(r: TableReader, path: Path | None, base: Path) -> Store:
    r.unknown_keys({"url", "data_dir", "audit_key_file", "password_env", "password_file"})
    data_dir = _default_data_dir(path, r.data)
    url = r.get("url", str, "") or f"sqlite:///{data_dir / 'mailwarden.db'}"
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", url):
        raise r.fail("url", "must be a sqlite:/// or postgresql:// URL")
    password = _password(r, base)
    if password is not None:  # the database's password kept out of the config (a secret file, a variable)
        if not url.startswith("postgresql"):
            raise r.fail("password_file" if "password_file" in r.data else "password_env",
                         "is for a postgresql:// url (SQLite has no password)")
        from sqlalchemy.engine import make_url  # noqa: PLC0415 - only PostgreSQL stores need it

        url = make_url(url).set(password=password).render_as_string(hide_password=False)
    key_file = r.path("audit_key_file", base, data_dir / "audit.key")
    assert key_file is not None
    return Store(url=url, data_dir=data_dir, audit_key_file=key_file)


def _upstream(r: TableReader, base: Path) -> Upstream:
    r.unknown_keys({
        "imap", "imap_tls", "smtp", "smtp_tls", "username", "password_env", "password_file",
        "ca_file", "tls_verify", "sent_folder", "inbox_folder", "imap_connections",
    })
    imap = r.hostport("imap", required=True)
    smtp = r.hostport("smtp", required=True)
    assert imap is not None and smtp is not None
    username = r.get("username", str, required=True)
    password = _password(r, base)
    if password is None:
        raise r.fail("password_env", "is required (or password_file): the upstream password is never written in the config")
    ca_file = r.path("ca_file", base)
    if ca_file is not None and not ca_file.is_file():
        raise r.fail("ca_file", f"{ca_file} does not exist")
    imap_connections = r.get("imap_connections", int, 3)
    if not 1 <= imap_connections <= 50:
        raise r.fail("imap_connections", "must be between 1 and 50 (the provider's cap: Gmail about 15, Office 365 about 20)")
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
        imap_connections=imap_connections,
    )


def _listen(r: TableReader, data_dir: Path, base: Path) -> Listen:
    r.unknown_keys({"smtp", "smtps", "imap", "imaps", "tls_cert", "tls_key", "hostname", "max_connections",
                    "max_connections_per_address", "login_timeout", "http", "autoconfig", "client_ports"})
    total = r.get("max_connections", int, 0)
    per_address = r.get("max_connections_per_address", int, 20)
    if total < 0:
        raise r.fail("max_connections", "must be 0 (derived from the open-files limit) or more")
    if per_address < 1:
        raise r.fail("max_connections_per_address", "must be at least 1")
    login_timeout = r.duration("login_timeout", "60s")
    if login_timeout <= 0:
        raise r.fail("login_timeout", "must be more than 0")
    smtp = r.hostport("smtp", "127.0.0.1:587")
    smtps = r.hostport("smtps", "")
    if smtp is None and smtps is None:
        raise r.fail("smtp", "set smtp or smtps: the gateway needs somewhere to listen")
    http, autoconfig = r.hostport("http", ""), r.get("autoconfig", bool, False)
    imap, imaps = r.hostport("imap", ""), r.hostport("imaps", "")
    if autoconfig and (http is None or (imap is None and imaps is None)):
        raise r.fail("autoconfig", "needs [listen] http (the address it is served on) and imap or imaps (what it "
                     "tells mail clients to read from)")
    client_ports = r.get("client_ports", dict, {})
    for name, port in client_ports.items():
        if name not in ("smtp", "smtps", "imap", "imaps") or not isinstance(port, int) or isinstance(port, bool) \
                or not 0 < port < 65536:
            raise r.fail("client_ports", f"{name} = {port!r}: keys are smtp, smtps, imap, imaps; values port numbers")
    cert = r.path("tls_cert", base, data_dir / "tls" / "gateway.crt")
    key = r.path("tls_key", base, data_dir / "tls" / "gateway.key")
    assert cert is not None and key is not None
    return Listen(
        smtp=smtp,
        smtps=smtps,
        imap=imap,
        imaps=imaps,
        tls_cert=cert,
        tls_key=key,
        hostname=r.get("hostname", str, "localhost"),
        max_connections=total or None,
        max_connections_per_address=per_address,
        login_timeout=login_timeout,
        http=http,
        autoconfig=autoconfig,
        client_ports=tuple(sorted(client_ports.items())),
    )


def _outbound(r: TableReader) -> Outbound:
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
    r.str_list("freemail_domains")  # checked here; added to the rule packs' list by engines.rules_settings
    return Outbound(
        from_format=fmt,
        unknown_recipients=r.choice("unknown_recipients", ("operator", "pool"), "operator"),
        expose_headers=r.get("expose_headers", bool, False),
        max_message_size=size,
        retry_initial=r.duration("retry_initial", "30s"),
        retry_max_age=r.duration("retry_max_age", "5d"),
        relay_connections=conns,
    )


def _auth(r: TableReader) -> Auth:
    r.unknown_keys({"max_failures", "max_failures_address", "max_failures_login", "base_delay", "max_delay",
                    "lockout"})
    pair = r.get("max_failures", int, 10)
    bounds = {"max_failures": pair, "max_failures_address": r.get("max_failures_address", int, pair * 10),
              "max_failures_login": r.get("max_failures_login", int, pair * 5)}
    for key, value in bounds.items():
        if value < 1:
            raise r.fail(key, "must be at least 1")
    return Auth(
        max_failures=pair,
        base_delay=r.duration("base_delay", "0.5s"),
        max_delay=r.duration("max_delay", "8s"),
        lockout_seconds=r.duration("lockout", "15m"),
        max_failures_address=bounds["max_failures_address"],
        max_failures_login=bounds["max_failures_login"],
    )


def _sync(r: TableReader, upstream: Upstream | None) -> Sync:
    r.unknown_keys({"enabled", "folders", "idle", "workers", "poll_interval", "diff_interval", "daily_download_mb"})
    workers = r.get("workers", int, 1)
    if not 1 <= workers <= 8:
        raise r.fail("workers", "must be between 1 and 8")
    mb = r.get("daily_download_mb", int, 0)
    if mb < 0:
        raise r.fail("daily_download_mb", "must be 0 (no cap) or a number of megabytes")
    sync = Sync(enabled=r.get("enabled", bool, True), folders=r.str_list("folders"), idle=r.get("idle", bool, True),
                workers=workers, poll_interval=r.duration("poll_interval", "60s"),
                diff_interval=r.duration("diff_interval", "10m"), daily_download_mb=mb)
    if sync.poll_interval < 5:
        raise r.fail("poll_interval", "must be at least 5s (providers throttle accounts that poll faster)")
    if upstream is not None and sync.enabled and sync.connections >= upstream.imap_connections:
        raise r.fail("workers", f"the sync's {sync.connections} connection(s) (IDLE and workers) leave none of "
                     f"[upstream] imap_connections = {upstream.imap_connections} for the Sent copies: raise "
                     f"imap_connections to {sync.connections + 1} or more")
    return sync


def _filing(r: TableReader) -> Filing:
    r.unknown_keys({"unknown", "on_duty", "return_after_days", "remind_days_before", "claim_limits"})
    limits = r.get("claim_limits", dict, {"sales": 50, "senior": 200})
    for role, n in limits.items():
        if role not in ROLES or not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise r.fail("claim_limits", f"{role} = {n!r}: keys are roles (sales, senior, supervisor, admin), "
                         "values numbers of customers")
    days = r.get("return_after_days", int, 0)
    remind = r.get("remind_days_before", int, 7)
    if days < 0 or remind < 0 or (days and remind >= days):
        raise r.fail("remind_days_before" if days >= 0 else "return_after_days",
                     "must be 0 or more, and the reminder must come before the return")
    return Filing(unknown=r.choice("unknown", ("pool", "round-robin"), "pool"),
                  on_duty=tuple(x.strip().lower() for x in r.str_list("on_duty")), return_after_days=days,
                  remind_days_before=remind, claim_limits=tuple(sorted(limits.items())))
