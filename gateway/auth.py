"""Logins: password checks off the event loop, throttling, and live-session control.

Failed logins are throttled per client address and per login with growing
delays (base × 2^failures, capped), and after ``max_failures`` the address or
login is locked out for a while.  Successful checks are cached for a few
minutes (keyed by a keyed hash of login and password, dropped when the user
is disabled or changes password), so clients that log in for every message do
not pay argon2 each time; a cached login still asks the store whether the
account is enabled, so a disabled user's next login fails at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailwarden.store import StoreHandle
from mailwarden.store.models import User
from mailwarden.store.passwords import verify_password
from sqlmodel import Session, col, select

from mailwarden.gateway.config import Auth as AuthSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """Who is logged in on a connection."""

    user_id: int
    login: str
    name: str
    role: str
    team: str | None
    generation: int
    title: str | None = None
    phone: str | None = None


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


@dataclass
class AuthOutcome:
    identity: Identity | None
    delay: float = 0.0
    locked: bool = False
    reason: str = ""


class Authenticator:
    def __init__(self, store: StoreHandle, settings: AuthSettings) -> None:
        self.store = store
        self.settings = settings
        self._pepper = secrets.token_bytes(32)  # cache keys are useless outside this process
        self._cache: dict[str, tuple[bytes, Identity, float]] = {}
        self._by_ip: dict[str, _Failures] = {}
        self._by_login: dict[str, _Failures] = {}
        self.cache_seconds = 300.0

    def _current(self, login: str, generation: int) -> bool:
        """Whether the user is still enabled, with the same password (generation)."""
        with Session(self.store.engine) as s:
            row = s.exec(select(User.enabled, User.generation).where(User.login == login)).first()
        return row is not None and bool(row[0]) and row[1] == generation

    def _lookup(self, login: str) -> User | None:
        with Session(self.store.engine) as s:
            return s.exec(select(User).where(User.login == login)).first()

    def pair_digest(self, login: str, password: str) -> bytes:
        """A keyed hash of a login and password (the key never leaves this process)."""
        return hmac.new(self._pepper, f"{login.strip().lower()}\0{password}".encode("utf-8", "surrogateescape"),
                        hashlib.sha256).digest()

    async def check(self, login: str, password: str, ip: str) -> AuthOutcome:
        now = time.monotonic()
        login = login.strip().lower()
        for key, table in ((ip, self._by_ip), (login, self._by_login)):
            f = table.get(key)
            if f and f.locked_until > now:
                return AuthOutcome(None, delay=self.settings.base_delay, locked=True,
                                   reason=f"too many failed logins; try again in {int(f.locked_until - now) // 60 + 1} min")
        digest = self.pair_digest(login, password)
        cached = self._cache.get(login)
        if cached and hmac.compare_digest(cached[0], digest) and cached[2] > now:
            # The password is known good; whether the account still is, the store says now (a
            # disabled user's next login must fail, not only after the watcher's next round).
            if await asyncio.to_thread(self._current, login, cached[1].generation):
                return AuthOutcome(cached[1])
            self._cache.pop(login, None)
        user = await asyncio.to_thread(self._lookup, login)
        ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
        # argon2 took a while: the account may have been disabled (or its password changed)
        # meanwhile, and the watcher would cut the session only in its next round.
        if ok and user is not None and user.enabled and await asyncio.to_thread(self._current, login, user.generation):
            assert user.id is not None
            ident = Identity(user.id, user.login, user.name, user.role, user.team, user.generation,
                             title=user.title, phone=user.phone)
            self._cache[login] = (digest, ident, now + self.cache_seconds)
            self._by_login.pop(login, None)
            return AuthOutcome(ident)
        reason = "disabled" if ok and user is not None else "bad credentials"
        delay = max(self._fail(self._by_ip, ip, now), self._fail(self._by_login, login, now))
        return AuthOutcome(None, delay=delay, reason=reason)

    def _fail(self, table: dict[str, _Failures], key: str, now: float) -> float:
        f = table.setdefault(key, _Failures())
        if now - f.last > self.settings.lockout_seconds:
            f.count = 0
        f.count += 1
        f.last = now
        if f.count >= self.settings.max_failures:
            f.locked_until = now + self.settings.lockout_seconds
        if len(table) > 100_000:  # bound memory under a spray of random logins
            table.clear()
        return min(self.settings.max_delay, self.settings.base_delay * 2 ** (f.count - 1))

    def forget(self, login: str) -> None:
        self._cache.pop(login, None)

    def cached_generations(self) -> dict[str, int]:
        return {login: entry[1].generation for login, entry in self._cache.items()}


@dataclass
class SessionRegistry:
    """Live authenticated connections, so a disabled user can be cut off at once."""

    sessions: dict[str, dict[int, Callable[[], None]]] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)

    def add(self, ident: Identity, key: int, close: Callable[[], None]) -> None:
        self.sessions.setdefault(ident.login, {})[key] = close
        self.generations[ident.login] = ident.generation

    def remove(self, login: str, key: int) -> None:
        conns = self.sessions.get(login)
        if conns is not None:
            conns.pop(key, None)
            if not conns:
                self.sessions.pop(login, None)

    def revoke(self, login: str) -> int:
        conns = self.sessions.pop(login, {})
        for close in list(conns.values()):
            close()
        return len(conns)


async def watch_users(store: StoreHandle, registry: SessionRegistry, auth: Authenticator,
                      interval: float = 1.0) -> None:
    """Poll the store for disabled users or changed passwords and end their sessions."""

    def changed(known: dict[str, int]) -> list[str]:
        with Session(store.engine) as s:
            rows = s.exec(select(User.login, User.enabled, User.generation).where(col(User.login).in_(list(known)))).all()
        state = {r[0]: (r[1], r[2]) for r in rows}
        return [login for login, gen in known.items()
                if login not in state or not state[login][0] or state[login][1] != gen]

    while True:
        await asyncio.sleep(interval)
        try:
            # Snapshot on the event loop: the thread must not iterate dicts the loop is changing.
            known = {**auth.cached_generations(), **{k: registry.generations.get(k, -1) for k in registry.sessions}}
            if not known:
                continue
            for login in await asyncio.to_thread(changed, known):
                auth.forget(login)
                n = registry.revoke(login)
                log.info("closed %d session(s) of %s: disabled or password changed", n, login)
        except Exception:  # keep watching; the next round retries
            log.exception("user watcher round failed")
