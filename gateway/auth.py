"""Logins: password checks off the event loop, throttling, and live-session control.

Failed logins are counted in the store (:mod:`mailwarden.store.throttle`), before the password
is checked and in one atomic statement, so parallel attempts on any number of connections,
processes or gateways sharing the store each count.  Each failure delays the answer more
(base × 2^failures, capped); past ``max_failures`` the login is locked out from that address,
past the looser per-address and per-login bounds the address or the login from anywhere.
Successful checks are cached for a few minutes (keyed by a keyed hash of login and password,
dropped when the user is disabled or changes password), so clients that log in for every
message do not pay argon2 each time; a cached login asks the store whether the account is still
enabled and whether a counter is locked, so a disabled user's next login fails at once and a
lockout holds (it writes nothing unless it has failures to give back).
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
from mailwarden.store.throttle import Attempt, Bounds, count_attempt, give_back, peek, purge
from sqlmodel import Session, col, select

from mailwarden.gateway import metrics
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
    lang: str | None = None  # what the gateway tells them is in this language (None: [rules] language)


PURGE_EVERY = 1000  # counted failures between sweeps of expired counters


def masked(login: str) -> str:
    """A login name that is no user's, for logs and audit events: people type passwords into
    it.  Its first character and its length say enough to recognise one's own typo."""
    login = login.strip()
    return f"{login[:1]}…({len(login)})" if login else "(empty)"


@dataclass
class AuthOutcome:
    identity: Identity | None
    delay: float = 0.0
    locked: bool = False
    reason: str = ""
    known: bool = False  # the login names a user (else it is logged masked)


class Authenticator:
    def __init__(self, store: StoreHandle, settings: AuthSettings) -> None:
        self.store = store
        self.settings = settings
        self._pepper = secrets.token_bytes(32)  # cache keys are useless outside this process
        self._cache: dict[str, tuple[bytes, Identity, float]] = {}
        self.bounds = Bounds(pair=settings.max_failures, address=settings.max_failures_address,
                             login=settings.max_failures_login, lockout=settings.lockout_seconds)
        self._failures = 0
        self.cache_seconds = 300.0
        self._inflight: dict[tuple[bytes, str], asyncio.Future[AuthOutcome]] = {}

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
        """Whether ``password`` is ``login``'s, counted and throttled.  The same login and
        password from the same address while an attempt with them is still being checked is
        that attempt again: it waits for its answer instead of counting once more (a mail
        client opens several connections at once, each logging in; counted each, they would
        lock their own user out)."""
        key = (self.pair_digest(login, password), ip)
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[AuthOutcome] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            outcome = await self._check(login, password, ip)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody may be waiting
            raise
        finally:
            self._inflight.pop(key, None)

    async def _check(self, login: str, password: str, ip: str) -> AuthOutcome:
        login = login.strip().lower()
        known = self._known_good(login, password)
        if known is not None:
            # The password is known good: nothing to count or give back unless a counter is
            # locked (the lockout holds) or this login from here has failures to forget.
            attempt, current = await asyncio.to_thread(self._cached_state, login, ip, known.generation)
            # A counter at its bound is one a counted attempt would find locked (a lock is given
            # back down to the bound between attempts): those take the counted way below.
            if current and all(c.count < c.bound for c in attempt.counts) \
                    and all(c.count == 0 for c in attempt.counts if c.login and c.ip):
                return AuthOutcome(known, known=True)
        # Counted first, then checked: an attempt that finds a counter locked is refused unchecked.
        attempt = await asyncio.to_thread(count_attempt, self.store.engine, login, ip, self.bounds)
        locked = attempt.locked
        if locked is not None:
            metrics.login_failed("locked")
            await asyncio.to_thread(give_back, self.store.engine, attempt, succeeded=False)
            minutes = max(0, int(locked.last_at + self.bounds.lockout - time.time())) // 60 + 1
            known = login in self._cache or await asyncio.to_thread(self._lookup, login) is not None
            return AuthOutcome(None, delay=self.settings.base_delay, locked=True, known=known,
                               reason=f"too many failed logins for this {locked.scope}; try again in {minutes} min")
        ident, known = await self._verify(login, password)
        if isinstance(ident, Identity):
            await asyncio.to_thread(give_back, self.store.engine, attempt, succeeded=True)
            return AuthOutcome(ident, known=True)
        self._failures += 1
        metrics.login_failed("password")
        if self._failures % PURGE_EVERY == 0:
            await asyncio.to_thread(purge, self.store.engine, self.bounds.lockout)
        delay = min(self.settings.max_delay, self.settings.base_delay * 2 ** (attempt.pair_count() - 1))
        return AuthOutcome(None, delay=delay, reason=ident, known=known)

    def _known_good(self, login: str, password: str) -> Identity | None:
        cached = self._cache.get(login)
        if cached and cached[2] > time.monotonic() and hmac.compare_digest(cached[0], self.pair_digest(login, password)):
            return cached[1]
        return None

    def _cached_state(self, login: str, ip: str, generation: int) -> tuple[Attempt, bool]:
        """The counters of ``login`` from ``ip``, and whether the user is still enabled with the
        same password: one worker-thread call, no write."""
        return peek(self.store.engine, login, ip, self.bounds), self._current(login, generation)

    async def _verify(self, login: str, password: str) -> tuple[Identity | str, bool]:
        """The identity the password proves, or why not ("bad credentials", "disabled"); and
        whether the login names a user."""
        now = time.monotonic()
        digest = self.pair_digest(login, password)
        known = self._known_good(login, password)
        if known is not None:
            # The password is known good; whether the account still is, the store says now (a
            # disabled user's next login must fail, not only after the watcher's next round).
            if await asyncio.to_thread(self._current, login, known.generation):
                return known, True
            self._cache.pop(login, None)
        user = await asyncio.to_thread(self._lookup, login)
        # Bytes, not text: what a client sent need not be UTF-8 (it is kept as surrogates), and a
        # password that is not cannot match a hash of one that is.
        secret = password.encode("utf-8", "surrogateescape")
        ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, secret)
        # argon2 took a while: the account may have been disabled (or its password changed)
        # meanwhile, and the watcher would cut the session only in its next round.
        if ok and user is not None and user.enabled and await asyncio.to_thread(self._current, login, user.generation):
            assert user.id is not None
            ident = Identity(user.id, user.login, user.name, user.role, user.team, user.generation,
                             title=user.title, phone=user.phone, lang=user.lang)
            self._cache[login] = (digest, ident, now + self.cache_seconds)
            return ident, True
        return "disabled" if ok and user is not None else "bad credentials", user is not None

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
