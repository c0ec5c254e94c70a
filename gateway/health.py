"""``mailwarden check``, and what ``serve`` checks at start: each thing the gateway needs,
tried for real, with one readable line per failure.

* the store: it opens, its schema is this version's, its files are private;
* the clock: not behind the newest audit event, and (PostgreSQL) not far from the database's;
* TLS: the listeners' certificate and key load and the certificate is not (nearly) expired;
* the upstream: the shared account logs in over SMTP and over IMAP, TLS verified as configured.

``serve`` does not stop on an upstream failure (the mail is safe in the spool meanwhile): it
logs the failure and tries again, more slowly each time, until the upstream takes the login.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
from dataclasses import dataclass

from mailwarden.store import StoreHandle, loose_permissions
from mailwarden.store.migrate import current_revision, head_revision
from sqlalchemy import text

from mailwarden.gateway import metrics
from mailwarden.gateway.config import Config, Listen, Upstream
from mailwarden.gateway.logsetup import limited_log
from mailwarden.gateway.tls import server_context
from mailwarden.gateway.upstream.imap import IMAPConnection
from mailwarden.gateway.upstream.smtp import SMTPConnection, upstream_tls
from mailwarden.gateway.upstream.source import TemporaryFailure

log = logging.getLogger(__name__)

CLOCK_SKEW = 120.0        # seconds between this machine's clock and the database's, at most
CERT_WARNING_DAYS = 14    # a certificate expiring sooner is reported
UPSTREAM_TIMEOUT = 60.0   # seconds for each upstream login
RETRY_FIRST, RETRY_MAX = 30.0, 600.0  # serve's retries of a failed upstream login


@dataclass(frozen=True)
class Finding:
    what: str     # "store", "clock", "tls", "upstream smtp", "upstream imap"
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.what}: {self.detail}"


def check_store(store: StoreHandle, cfg: Config) -> list[Finding]:
    assert cfg.store is not None
    found: list[Finding] = []
    try:
        have, want = current_revision(store.engine), head_revision()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is the finding
        return [Finding("store", False, f"cannot open {cfg.store.url.split('@')[-1]}: {exc}")]
    found += [Finding("files", False, problem) for problem in loose_permissions(cfg.store)]
    if have != want:
        return [Finding("store", False, f"schema is at revision {have or 'none'}, this version needs {want}: "
                                        f"run `mailwarden db upgrade` (serve does it on start)"), *found]
    return [Finding("store", True, f"{cfg.store.url.split('@')[-1]} at revision {have}"), *found, *check_clock(store)]


def check_clock(store: StoreHandle) -> list[Finding]:
    now = datetime.datetime.now(datetime.timezone.utc)
    with store.engine.connect() as conn:
        newest = conn.execute(text("SELECT ts FROM audit_events ORDER BY seq DESC LIMIT 1")).scalar()
        db_now = conn.execute(text("SELECT now()")).scalar() if conn.dialect.name == "postgresql" else None
    if isinstance(newest, str):
        newest = datetime.datetime.fromisoformat(newest)
    if isinstance(newest, datetime.datetime):
        newest = newest.replace(tzinfo=datetime.timezone.utc) if newest.tzinfo is None else newest
        if newest - now > datetime.timedelta(seconds=CLOCK_SKEW):
            return [Finding("clock", False, f"this machine's clock ({now:%Y-%m-%d %H:%M:%S} UTC) is behind the newest "
                                            f"audit event ({newest:%Y-%m-%d %H:%M:%S} UTC): set the time (NTP)")]
    if isinstance(db_now, datetime.datetime) and abs((db_now - now).total_seconds()) > CLOCK_SKEW:
        return [Finding("clock", False, f"this machine's clock differs from the database server's by "
                                        f"{abs((db_now - now).total_seconds()):.0f} s: set the time on both (NTP)")]
    return [Finding("clock", True, f"{now:%Y-%m-%d %H:%M:%S} UTC")]


def check_tls(listen: Listen) -> list[Finding]:
    if not listen.tls_cert.exists() and not listen.tls_key.exists():
        return [Finding("tls", True, f"no certificate yet: serve makes a self-signed one at {listen.tls_cert}")]
    try:
        server_context(listen.tls_cert, listen.tls_key)
    except (OSError, ssl.SSLError) as exc:
        return [Finding("tls", False, f"[listen] tls_cert / tls_key ({listen.tls_cert}, {listen.tls_key}) do not "
                                      f"load as a pair: {exc}")]
    from cryptography import x509  # noqa: PLC0415

    cert = x509.load_pem_x509_certificate(listen.tls_cert.read_bytes())
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    if left.total_seconds() <= 0:
        return [Finding("tls", False, f"the certificate {listen.tls_cert} expired on {cert.not_valid_after_utc:%Y-%m-%d}")]
    if left.days < CERT_WARNING_DAYS:
        return [Finding("tls", False, f"the certificate {listen.tls_cert} expires in {left.days} days "
                                      f"({cert.not_valid_after_utc:%Y-%m-%d}): renew it")]
    return [Finding("tls", True, f"{listen.tls_cert} valid until {cert.not_valid_after_utc:%Y-%m-%d}")]


async def _login(what: str, conn: SMTPConnection | IMAPConnection, where: object, username: str) -> Finding:
    try:
        await asyncio.wait_for(conn.login(), UPSTREAM_TIMEOUT)
        return Finding(what, True, f"{username} logged in at {where}")
    except (TemporaryFailure, asyncio.TimeoutError) as exc:
        return Finding(what, False, str(exc) or f"no login at {where} within {UPSTREAM_TIMEOUT:g} s")
    finally:
        await conn.close()


async def check_upstream(upstream: Upstream) -> list[Finding]:
    """Log in as the shared account over SMTP and IMAP (both at once), then log out."""
    tls = upstream_tls(upstream)
    return list(await asyncio.gather(
        _login("upstream smtp", SMTPConnection(upstream, tls), upstream.smtp, upstream.username),
        _login("upstream imap", IMAPConnection(upstream, tls), upstream.imap, upstream.username)))


async def run_checks(cfg: Config, store: StoreHandle) -> list[Finding]:
    assert cfg.listen is not None and cfg.upstream is not None
    found = await asyncio.to_thread(check_store, store, cfg)
    found += check_tls(cfg.listen)
    found += await check_upstream(cfg.upstream)
    return found


@dataclass
class UpstreamHealth:
    """The last upstream login check, as ``/healthz`` and ``mailwarden_upstream_up`` tell it."""

    ok: bool | None = None                 # None: not checked yet
    problems: tuple[str, ...] = ()
    checked_at: datetime.datetime | None = None

    def record(self, findings: list[Finding]) -> None:
        failed = [f for f in findings if not f.ok]
        self.ok = not failed
        self.problems = tuple(f.line() for f in failed)
        self.checked_at = datetime.datetime.now(datetime.timezone.utc)
        for f in failed:
            metrics.upstream_error(f.what.removeprefix("upstream "), "login")


async def watch_upstream(upstream: Upstream, health: UpstreamHealth | None = None,
                         recheck: float | None = None) -> None:
    """``serve``'s check of the upstream logins: each failure logged, tried again (30 s,
    doubling to 10 min) until both logins work.  With ``recheck`` (seconds), the SMTP login alone
    is tried again that often afterwards, so that ``health`` notices a password changed later
    (not IMAP: its logins are the budget the relay and the sync share)."""
    health = health or UpstreamHealth()
    delay = RETRY_FIRST
    while True:
        found = await check_upstream(upstream)
        health.record(found)
        failed = [f for f in found if not f.ok]
        if not failed:
            log.info("upstream logins work (SMTP %s, IMAP %s)", upstream.smtp, upstream.imap)
            break
        for f in failed:
            limited_log(log, "upstream check", "%s (retrying in %g s; mail waits in the spool meanwhile)",
                        f.line(), delay, level=logging.ERROR)
        await asyncio.sleep(delay)
        delay = min(RETRY_MAX, delay * 2)
    while recheck:
        await asyncio.sleep(recheck)
        found = [await _login("upstream smtp", SMTPConnection(upstream, upstream_tls(upstream)), upstream.smtp,
                              upstream.username)]
        was = health.ok
        health.record(found)
        if not health.ok:
            limited_log(log, "upstream check", "%s (checked again in %g s)", found[0].line(), recheck,
                        level=logging.ERROR)
        elif not was:
            log.info("upstream SMTP login works again (%s)", upstream.smtp)
