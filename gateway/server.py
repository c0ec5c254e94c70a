"""``mailwarden serve``: the listeners and the watchers on one event loop; the
relay and the inbound sync in the delivery process (:mod:`.delivery`), or on the same loop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
from contextlib import suppress
from pathlib import Path

from mailwarden.rules import Policy, load_policy
from mailwarden.signatures import load_signatures
from mailwarden.store import StoreHandle
from mailwarden.store.spool import originals_dir, sweep_orphans, sync_dirs
from sqlmodel import Session

from mailwarden.gateway.auth import Authenticator, SessionRegistry, watch_users
from mailwarden.gateway.config import Config, HostPort, Imap
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.gateway.delivery.process import DeliveryProcess, hold_delivery_lock, make_budget, make_relay
from mailwarden.gateway.imap.access import BulkWatch
from mailwarden.gateway.imap.server import ImapServer
from mailwarden.gateway.imap.session import Settings as ImapSettings
from mailwarden.gateway import clientconfig, metrics
from mailwarden.gateway.health import UpstreamHealth, check_store, check_tls, watch_upstream
from mailwarden.gateway.httpserver import METRICS_TYPE, HttpServer, health_body
from mailwarden.gateway.engines import company_profile, rules_settings, scan_settings, signature_inputs
from mailwarden.gateway.delivery.relay import Relay
from mailwarden.gateway.rulesreload import RulesWatch, gateway_name
from mailwarden.gateway.submission.limits import ConnectionLimits, derived_total, descriptor_limit
from mailwarden.gateway.submission.smtp import SubmissionHandler, listen
from mailwarden.gateway.sync.service import MailboxSync, start_sync
from mailwarden.gateway.submission.submit import Submitter
from mailwarden.gateway.tls import ensure_self_signed, server_context

log = logging.getLogger(__name__)
SECTIONS = {"company", "upstream", "listen", "store", "outbound", "auth", "sync", "filing", "imap"}
HEALTH_RECHECK = 300.0  # seconds between the upstream SMTP login checks while [listen] http is on


class Gateway:
    """Everything ``serve`` runs; tests start one inside their own event loop.

    ``delivery_process``: relay from a process of its own (what ``serve`` does);
    otherwise the relay runs on this event loop (tests look inside it)."""

    def __init__(self, cfg: Config, store: StoreHandle, *, delivery_process: bool = False,
                 check_upstream: bool = True) -> None:
        assert cfg.company and cfg.upstream and cfg.listen and cfg.outbound and cfg.auth
        self.cfg = cfg
        self.store = store
        self.registry = SessionRegistry()
        self.auth = Authenticator(store, cfg.auth)
        self.relay: Relay | None = None
        self.sync: MailboxSync | None = None
        self._sync_lock: int | None = None
        self.delivery: DeliveryProcess | None = DeliveryProcess(cfg, SECTIONS) if delivery_process else None
        self._delivery_lock: int | None = None
        settings, company = signature_inputs(cfg)
        signatures = load_signatures(settings, company)  # raises SignatureTemplateError naming template and line
        rules = rules_settings(cfg)
        policy = load_policy(company_profile(cfg), rules)  # raises RulesConfigError naming file and line
        self.rules_watch = RulesWatch(store, company_profile(cfg), rules, policy, self._new_policy,
                                      name=gateway_name(store.data_dir))
        # Spool files are written without syncing their folder; one folder fsync per group commit.
        self.writer = BatchWriter(store.engine, before_commit=lambda: sync_dirs(
            store.spool_dir, originals_dir(store.spool_dir)))
        self.submitter = Submitter(store=store, company=cfg.company, upstream=cfg.upstream, outbound=cfg.outbound,
                                   hostname=cfg.listen.hostname, wake=self._wake, signatures=signatures,
                                   policy=policy, language=rules.language, writer=self.writer,
                                   scan=scan_settings(cfg))
        self.servers: list[asyncio.base_events.Server] = []
        self.bound: dict[str, HostPort] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.handler: SubmissionHandler | None = None
        self.imap: ImapServer | None = None
        self.check_upstream = check_upstream  # log in to the upstream at start, retrying until it works
        self.health = UpstreamHealth()
        self.health_recheck = HEALTH_RECHECK
        self.http: HttpServer | None = None
        self._metrics_files: Path | None = None  # the delivery process's counters

    def _new_policy(self, policy: Policy) -> None:
        self.submitter.set_policy(policy)

    def _wake(self) -> None:
        if self.relay is not None:
            self.relay.wake()
        elif self.delivery is not None:
            self.delivery.wake()

    async def start(self) -> None:
        cfg = self.cfg
        assert cfg.listen and cfg.upstream and cfg.outbound and cfg.store
        if ensure_self_signed(cfg.listen.tls_cert, cfg.listen.tls_key, cfg.listen.hostname):
            log.warning("no TLS certificate configured: made a self-signed one at %s; mail clients will ask "
                        "users to accept it (set [listen] tls_cert and tls_key for a real one)", cfg.listen.tls_cert)
        tls = server_context(cfg.listen.tls_cert, cfg.listen.tls_key)
        # What `mailwarden check` finds wrong is logged; only the upstream is tried again (below).
        for finding in await asyncio.to_thread(check_store, self.store, cfg) + check_tls(cfg.listen):
            if not finding.ok:
                log.warning("%s", finding.line())
        await asyncio.to_thread(self._sweep)
        self.writer.start()
        handler = self.handler = SubmissionHandler(self.submitter, self.auth, self.registry, self._limits(),
                                                   login_timeout=cfg.listen.login_timeout)
        for name, addr, implicit in (("smtp", cfg.listen.smtp, False), ("smtps", cfg.listen.smtps, True)):
            if addr is None:
                continue
            try:
                server = await listen(handler, addr.host, addr.port, hostname=cfg.listen.hostname, tls=tls,
                                      implicit=implicit, size_limit=cfg.outbound.max_message_size)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on {addr} ([listen] {name}): "
                                         f"{exc.strerror or exc}") from exc
            self.servers.append(server)
            port = server.sockets[0].getsockname()[1]
            self.bound[name] = HostPort(addr.host, port)
            log.info("listening for SMTP submission (%s) on %s", "implicit TLS" if implicit else "STARTTLS",
                     self.bound[name])
        await self._listen_imap(tls)
        await self._listen_http()
        if self.delivery is not None:
            self.delivery.metrics_dir = self._metrics_files
            await self.delivery.start()
        else:
            self._delivery_lock = await hold_delivery_lock(self.store.data_dir)
            budget = make_budget(cfg)
            self.relay = make_relay(cfg, self.store, self.writer, budget)
            await self.relay.start()
            if cfg.sync is not None:
                self.sync, self._sync_lock = start_sync(cfg, self.store, budget)
        self._tasks.append(asyncio.create_task(watch_users(self.store, self.registry, self.auth), name="user-watch"))
        await asyncio.to_thread(self.rules_watch.start_record)
        self._tasks.append(asyncio.create_task(self.rules_watch.run(), name="rules-watch"))
        if self.check_upstream:
            recheck = self.health_recheck if self.http is not None else None
            self._tasks.append(asyncio.create_task(watch_upstream(cfg.upstream, self.health, recheck),
                                                   name="upstream-check"))

    async def _listen_http(self) -> None:
        """``[listen] http``: /metrics and /healthz (off unless set)."""
        cfg = self.cfg
        assert cfg.listen and cfg.store
        addr = cfg.listen.http
        if addr is None:
            return
        if self.delivery is not None:
            self._metrics_files = metrics.fresh_metrics_dir(cfg.store.data_dir)
        autoconfig = {}
        if cfg.listen.autoconfig:
            assert cfg.company is not None
            listen, company = cfg.listen, cfg.company

            async def answer(query: dict[str, str]) -> tuple[int, str, bytes]:
                return clientconfig.autoconfig_answer(listen, company, query)

            autoconfig = dict.fromkeys(clientconfig.PATHS, answer)
        self.http = HttpServer({"/metrics": self._metrics, "/healthz": self._healthz}, autoconfig)
        try:
            server = await self.http.listen(addr.host, addr.port)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {addr} ([listen] http): {exc.strerror or exc}") from exc
        self.servers.append(server)
        self.bound["http"] = HostPort(addr.host, server.sockets[0].getsockname()[1])
        log.info("serving /metrics and /healthz%s over HTTP on %s", " and mail-client autoconfig" if autoconfig else "",
                 self.bound["http"])

    async def _metrics(self) -> tuple[int, str, bytes]:
        snapshot = metrics.Snapshot(sessions=sum(len(c) for c in self.registry.sessions.values()),
                                    upstream_up=self.health.ok)
        body = await asyncio.to_thread(metrics.render, self.store.engine, snapshot, self._metrics_files)
        return 200, METRICS_TYPE, body

    async def _healthz(self) -> tuple[int, str, bytes]:
        h = self.health
        checked = h.checked_at.isoformat() if h.checked_at else None
        state = "not checked yet" if h.ok is None else ("ok" if h.ok else "failing")
        rules = self.rules_watch.state
        # A rules load that failed leaves the old rules in force: reported, not unhealthy (a
        # restart would not start with the broken file either).
        return health_body(h.ok is not False, {"upstream": {"login": state, "checked_at": checked,
                                                             "problems": list(h.problems)},
                                                "rules": {"version": rules.version, "epoch": rules.epoch,
                                                          "problem": rules.problem}})

    async def _listen_imap(self, tls: ssl.SSLContext) -> None:
        cfg = self.cfg
        assert cfg.listen and cfg.outbound
        wanted = [(name, addr, implicit) for name, addr, implicit in (("imap", cfg.listen.imap, False),
                                                                        ("imaps", cfg.listen.imaps, True)) if addr]
        if not wanted:
            return
        imap = cfg.imap or Imap()
        settings = ImapSettings(mask_roles=imap.mask_roles, max_append=cfg.outbound.max_message_size,
                                bulk=BulkWatch(bodies=imap.bulk_bodies, minutes=imap.bulk_minutes))
        self.imap = ImapServer(self.store, self.auth, self.registry, tls, self._limits(), settings)
        for name, addr, implicit in wanted:
            try:
                server = await self.imap.listen(addr.host, addr.port, implicit=implicit)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on {addr} ([listen] {name}): {exc.strerror or exc}") from exc
            self.servers.append(server)
            self.bound[name] = HostPort(addr.host, server.sockets[0].getsockname()[1])
            log.info("listening for IMAP (%s) on %s", "implicit TLS" if implicit else "STARTTLS", self.bound[name])

    def _limits(self) -> ConnectionLimits:
        cfg = self.cfg
        assert cfg.listen and cfg.upstream and cfg.outbound
        descriptors = descriptor_limit()
        total = cfg.listen.max_connections or derived_total(
            descriptors, relay_connections=cfg.outbound.relay_connections, imap_connections=cfg.upstream.imap_connections)
        log.info("at most %d submission connections (%d open files allowed), %d not logged in per address",
                 total, descriptors, cfg.listen.max_connections_per_address)
        return ConnectionLimits(total=total, per_address=cfg.listen.max_connections_per_address)

    def _sweep(self) -> None:
        with Session(self.store.engine) as s:
            n = sweep_orphans(session=s, spool_dir=self.store.spool_dir)
        if n:
            log.info("removed %d spool files left by an interrupted accept", n)

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for login in list(self.registry.sessions):
            self.registry.revoke(login)
        if self.handler is not None:
            self.handler.close_all()
        if self.imap is not None:
            await self.imap.stop()
        for server in self.servers:
            with suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 10)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sync is not None:
            await self.sync.stop()
        if self._sync_lock is not None:
            os.close(self._sync_lock)
            self._sync_lock = None
        if self.relay is not None:
            await self.relay.stop()
        if self.delivery is not None:
            await self.delivery.stop()
        if self._delivery_lock is not None:
            os.close(self._delivery_lock)
            self._delivery_lock = None
        # Let the closed connections finish their TLS shutdown while the loop still runs.
        deadline = asyncio.get_running_loop().time() + 3
        while self.handler is not None and self.handler.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        await self.writer.stop()
        await asyncio.to_thread(self.submitter.close)


async def run(gw: Gateway) -> None:
    cfg = gw.cfg
    await gw.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log.info("mailwarden is running; relaying to %s as %s", cfg.upstream.smtp if cfg.upstream else "?",
             cfg.upstream.username if cfg.upstream else "?")
    await stop.wait()
    log.info("stopping")
    await gw.stop()
