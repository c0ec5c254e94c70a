"""Accepting one submitted message: the work behind the answer to DATA.

look up recipients → rules → signature → header rewrite → spool commit →
answer.  Database writes go through the group-commit writer, so the event loop
never waits on an fsync and concurrent messages share one commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from mailwarden.rules import CheckContext, Decision, Policy, RecipientInfo
from mailwarden.rules.mail import Mail
from mailwarden.rules.mail.attachments import ReadersNeeded
from mailwarden.signatures import SignatureSet, SignatureUser, apply_signature
from mailwarden.store import StoreHandle
from mailwarden.store.directory import add_customer, get_customer, resolve_recipient
from mailwarden.store.models import Customer
from mailwarden.store.rawsql import raw
from mailwarden.store.spool import Blobs, Envelope, record, write_blobs
from mailwarden.store.spool import states as st
from sqlmodel import Session

from mailwarden.gateway.auth import Identity
from mailwarden.gateway.config import Company, Outbound, Upstream
from mailwarden.gateway.dbwriter import BatchWriter
from mailwarden.gateway.recipients import lookup_recipients
from mailwarden.gateway import metrics
from mailwarden.gateway.submission.enforce import Blocked, Verdict, decision_detail, judge
from mailwarden.gateway.submission.scanpool import DEFAULT_MEMORY_MB, ScanPool, ScanSettings, default_workers, needs_worker
from mailwarden.gateway.delivery.notices import build_notice
from mailwarden.gateway.submission.replies import language, say
from mailwarden.gateway.submission.rewrite import MessageRejected, Rewritten, header_first, rewrite
from mailwarden.gateway.headers import keyword, tag_headers

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Resolved:
    customers: list[tuple[int, str]]  # (id, name), in recipient order, unique
    created: list[str]


@dataclass
class Prepared:
    rw: Rewritten
    verdict: Verdict
    notes: list[tuple[str, dict[str, Any]]]  # further audit events (signature fallback …)


# With rules on, the work on a message never runs on the event loop: on a worker thread, and
# the rules of a message with attachments in a scan worker process (scanpool). Without rules,
# the signature and header rewrite of a message above this size run on a worker thread.
BIG = 256 * 1024
RCPT_CACHE_SECONDS = 5.0


class Submitter:
    def __init__(self, *, store: StoreHandle, company: Company, upstream: Upstream, outbound: Outbound,
                 hostname: str, wake: Callable[[], None], signatures: SignatureSet | None = None,
                 policy: Policy | None = None, language: str = "en", writer: BatchWriter,
                 scan: ScanSettings | None = None) -> None:
        self.store = store
        # the domains that never name a customer: the rules' own list
        self.freemail = policy.freemail_domains if policy is not None else frozenset()
        self.signatures = signatures
        self.policy = policy
        self.language = language
        self.company = company
        self.upstream = upstream
        self.outbound = outbound
        self.hostname = hostname
        self.wake = wake
        self.writer = writer
        self._rcpt_cache: dict[str, tuple[float, RecipientInfo]] = {}
        self.scanpool = ScanPool(policy, scan or ScanSettings(default_workers(), DEFAULT_MEMORY_MB)) \
            if policy is not None else None
        threads = max(1, (os.cpu_count() or 2) - 1)
        self.cpu = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mailwarden-cpu")
        # Threads that only wait for a scan worker's answer (they hold no CPU and no lock).
        self.scan_wait = ThreadPoolExecutor(max_workers=64, thread_name_prefix="mailwarden-scan-wait")

    def lang_of(self, ident: Identity | None) -> str:
        """The language to tell *ident* things in: theirs, else ``[rules] language``."""
        return language(ident.lang if ident is not None else None, self.language)

    def set_policy(self, policy: Policy) -> None:
        """Judge the next messages by *policy* (the rules loaded again, see
        :mod:`mailwarden.gateway.rulesreload`); a message being judged keeps the one it began with."""
        self.freemail = policy.freemail_domains
        self.policy = policy
        if self.scanpool is not None:
            self.scanpool.update(policy)

    async def audit(self, action: str, *, actor: str, peer: str | None, **detail: Any) -> None:
        def write(s: Session) -> None:
            self.store.audit.append(actor=actor, action=action, peer=peer, session=s, **detail)

        try:
            await self.writer.run(write, plain=True)
        except Exception:
            log.exception("cannot record audit event %s for %s", action, actor)

    def close(self) -> None:
        if self.scanpool is not None:
            self.scanpool.close()
        self.scan_wait.shutdown(wait=True)
        self.cpu.shutdown(wait=True)

    # -- the pipeline ------------------------------------------------------

    async def submit(self, ident: Identity, rcpts: list[str], content: bytes, *, peer: str) -> str:
        """Accept ``content`` (the caller keeps no reference to it, so that once signed the
        original can be freed: a large message is held at most twice)."""
        try:
            recipients = self._cached(rcpts) or await asyncio.to_thread(self._lookup, ident, rcpts)
            job = [Mail(content)]
            del content
            started = time.monotonic()
            try:
                prepared = await self._prepared(ident, recipients, job)
            finally:
                metrics.scanned(time.monotonic() - started)
        except Blocked as exc:
            metrics.message("block")
            await self.audit("send.blocked", actor=ident.login, peer=peer, rcpts=rcpts,
                             reason=exc.smtp_reply, **decision_detail(exc.decision))
            rules = ",".join(sorted({f.rule for f in exc.decision.findings if f.action == "block"}))
            log.info("blocked peer=%s operator=%s rules=%s", peer, ident.login, rules)  # no matched text: it is message content
            return exc.smtp_reply
        except MessageRejected as exc:
            metrics.message("refused")
            await self.audit("send.refused", actor=ident.login, peer=peer, reason=exc.smtp_reply, rcpts=rcpts)
            return exc.smtp_reply
        blobs: Blobs | None = None
        try:
            # files first (fsync, in parallel with other connections), then the rows, group-committed
            blobs = await asyncio.to_thread(self._write_files, ident, prepared)
            # Plain SQL unless an unknown recipient becomes a customer (ORM objects) in the job.
            known = all(info.customer_id is not None or self._internal(rcpt) for rcpt, info in zip(rcpts, recipients))
            msg_id = await self.writer.run(lambda s: self._record(s, ident, rcpts, recipients, prepared, blobs, peer),
                                           plain=known)
        except MessageRejected as exc:
            if blobs is not None:
                blobs.discard()
            return exc.smtp_reply
        except Exception:
            if blobs is not None:
                blobs.discard()
            log.exception("spool commit failed peer=%s operator=%s", peer, ident.login)
            return "451 4.3.0 The gateway could not store your message; nothing was sent, please try again"
        self.wake()
        action = prepared.verdict.action
        metrics.message(action)
        log.info("accepted peer=%s operator=%s message=%s rcpts=%d size=%d action=%s",
                 peer, ident.login, msg_id, len(rcpts), prepared.rw.size, action)
        if prepared.verdict.stage == st.HELD:
            return say("held", self.lang_of(ident), id=msg_id)
        return f"250 2.0.0 Queued as {msg_id}"

    def _cached(self, rcpts: list[str]) -> tuple[RecipientInfo, ...] | None:
        """The recipients' lookups, when all are still cached (no thread, no query).

        Kept for a few seconds: a salesperson writing to the same customer all
        day should not cost six queries a message; a reassignment shows within
        ``RCPT_CACHE_SECONDS``."""
        now = time.monotonic()
        out = []
        for r in rcpts:
            hit = self._rcpt_cache.get(r.lower())
            if hit is None or hit[0] <= now:
                return None
            out.append(hit[1])
        return tuple(out)

    def _lookup(self, ident: Identity, rcpts: list[str]) -> tuple[RecipientInfo, ...]:
        """What the rules need to know about each recipient (read-only)."""
        now = time.monotonic()
        with Session(self.store.engine) as s:
            out = lookup_recipients(session=s, addresses=rcpts, freemail=self.freemail)
        if len(self._rcpt_cache) > 10_000:
            self._rcpt_cache.clear()
        for rcpt, info in zip(rcpts, out):
            if info.customer_id is not None:  # unknown ones become customers on commit: look again next time
                self._rcpt_cache[rcpt.lower()] = (now + RCPT_CACHE_SECONDS, info)
        return tuple(out)

    async def _prepared(self, ident: Identity, recipients: tuple[RecipientInfo, ...], job: list[Mail]) -> Prepared:
        """:meth:`_prepare` off the event loop; a message with attachments has its rules
        evaluated in a scan worker process first (waited for on a thread of its own, so that
        text-only mail keeps the CPU threads while every scan worker is busy)."""
        loop = asyncio.get_running_loop()
        if self.scanpool is None:
            if len(job[0].raw) > BIG:
                return await loop.run_in_executor(self.cpu, self._prepare, ident, recipients, job)
            return self._prepare(ident, recipients, job)
        prepared = await loop.run_in_executor(self.cpu, self._prepare, ident, recipients, job)
        if prepared is not None:
            return prepared
        ctx = self._context(ident, recipients)
        decision = await loop.run_in_executor(self.scan_wait, self.scanpool.evaluate, job[0].raw, ctx)
        prepared = await loop.run_in_executor(self.cpu, self._prepare, ident, recipients, job, decision)
        assert prepared is not None
        return prepared

    @staticmethod
    def _context(ident: Identity, recipients: tuple[RecipientInfo, ...]) -> CheckContext:
        return CheckContext(operator=ident.login, role=ident.role, team=ident.team, recipients=recipients)

    def _prepare(self, ident: Identity, recipients: tuple[RecipientInfo, ...], job: list[Mail],
                 decision: Decision | None = None) -> Prepared | None:
        """Rules, signature, header rewrite: the pure, CPU-bound part of accepting a message.

        ``job`` holds the only reference to the message (its model), taken out here.  Neither
        the signature nor the header rewrite copies it: the result is views of the
        message plus the bytes they put in (a redaction alone makes a new copy).
        *decision*: the rules' decision made in a scan worker; without it, None (and ``job``
        left as it is) when the message needs one (:func:`~.scanpool.needs_worker`).
        """
        # One parse, shared: the rules read the model, then the signature works on the same one.
        inline = decision is None and self.scanpool is not None
        if inline and needs_worker(job[0]):
            return None
        mail = job[0]
        content = mail.raw
        ctx = self._context(ident, recipients)
        try:
            # On this thread no document reader runs (one cannot be stopped here): an
            # attachment the structure scan did not see still goes to a worker.
            verdict = judge(self.policy, content, ctx, language=self.lang_of(ident), mail=mail, decision=decision,
                            readers=not inline)
        except ReadersNeeded:
            return None
        job.pop()
        notes: list[tuple[str, dict[str, Any]]] = []
        if verdict.content is not content:
            mail = Mail(verdict.content)  # redacted: a new message
        content, verdict.content = verdict.content, b""  # from here on only ``content`` holds it
        pieces: tuple[bytes | memoryview, ...] = (content,)
        if self.signatures is not None:
            pieces = self._sign(ident, content, notes, mail)
        del content, mail
        display = self.outbound.from_format.format(name=ident.name, company=self.company.name, login=ident.login)
        first, rest = header_first(pieces)
        rw = rewrite(first, shared_address=self.upstream.username, display_name=display,
                     company_domains=self.company.domains, loop_key=self.store.audit.key, hostname=self.hostname,
                     rest=rest)
        return Prepared(rw, verdict, notes)

    def _sign(self, ident: Identity, content: bytes, notes: list[tuple[str, dict[str, Any]]],
              mail: Mail | None = None) -> tuple[bytes | memoryview, ...]:
        """The signed message in pieces: views of ``content`` and the inserted bytes, not a copy.
        *mail*: the model of ``content`` the rules read, if any."""
        assert self.signatures is not None
        user = SignatureUser(login=ident.login, name=ident.name, title=ident.title, phone=ident.phone,
                             team=ident.team, role=ident.role)
        result = apply_signature(content, self.signatures, user, joined=False, mail=mail)
        if result.fallback:
            notes.append(("signature.fallback", {"detail": (result.detail or "")[:500]}))
        if result.untouched_reason:
            policy = self.signatures.settings.unalterable
            notes.append(("signature.untouched", {"reason": result.untouched_reason, "policy": policy}))
            if policy == "block" and result.untouched_reason not in ("no-text-body",):
                raise MessageRejected(say("unsignable", self.lang_of(ident), why=result.untouched_reason))
        return result.pieces or (result.message,)

    def _resolve(self, s: Session, ident: Identity, rcpts: list[str],
                 recipients: tuple[RecipientInfo, ...]) -> Resolved:
        """The customers of the recipients, as looked up before the rules ran;
        unknown external recipients become customers now."""
        customers: dict[int, str] = {}
        created: list[str] = []
        for rcpt, info in zip(rcpts, recipients):
            domain = rcpt.rsplit("@", 1)[-1].lower()
            if self._internal(rcpt):
                continue  # internal mail is nobody's customer
            if info.customer_id is not None and info.customer_name is not None:
                customers.setdefault(info.customer_id, info.customer_name)
                continue
            c = resolve_recipient(session=s, address=rcpt, freemail=self.freemail)
            if c is None:
                c, new = self._new_customer(s, ident, rcpt, domain)
                if new:
                    created.append(c.name)
            assert c.id is not None
            customers.setdefault(c.id, c.name)
        return Resolved(list(customers.items()), created)

    def _internal(self, rcpt: str) -> bool:
        return rcpt.rsplit("@", 1)[-1].lower() in self.company.domains

    def _new_customer(self, s: Session, ident: Identity, rcpt: str, domain: str) -> tuple[Customer, bool]:
        """An unknown recipient becomes a customer: owned by the operator or left
        in the pool (``[outbound] unknown_recipients``).  A free-mail address is
        a customer of its own; a company domain is one customer for the domain."""
        owner = ident.login if self.outbound.unknown_recipients == "operator" else None
        freemail = domain in self.freemail
        name = rcpt.lower() if freemail else domain
        existing = get_customer(session=s, name_or_id=name)
        if existing is not None:
            return existing, False
        return add_customer(session=s, name=name, domains=() if freemail else (domain,),
                            contacts=(rcpt,) if freemail else (), owner=owner, created_by=ident.login,
                            freemail=self.freemail), True

    def _record(self, s: Session, ident: Identity, rcpts: list[str], recipients: tuple[RecipientInfo, ...],
                prepared: Prepared, blobs: Blobs, peer: str) -> int:
        """The database part of accepting: a job for the group-commit writer."""
        rw, verdict = prepared.rw, prepared.verdict
        user = raw(s).execute("SELECT enabled, generation FROM users WHERE id = :id", {"id": ident.user_id}).fetchone()
        if user is None or not user[0] or user[1] != ident.generation:  # disabled since login: refuse
            raise MessageRejected("421 4.7.0 Your account was disabled or its password changed")
        resolved = self._resolve(s, ident, rcpts, recipients)
        for name in resolved.created:
            self.store.audit.append(actor=ident.login, action="customer.created", target=name, peer=peer,
                                    session=s, owner=ident.login if self.outbound.unknown_recipients == "operator" else None)
        keywords = (keyword("op", ident.login), *(keyword("cust", str(cid)) for cid, _ in resolved.customers))
        env = Envelope(
            mail_from=self.upstream.username, rcpts=tuple(rcpts), operator=ident.login,
            operator_id=ident.user_id, customer_ids=tuple(cid for cid, _ in resolved.customers),
            subject=rw.subject, message_id=rw.message_id, keywords=keywords, peer=peer,
            sent_headers=tag_headers(ident.login, ident.name, resolved.customers,
                                     ref=blobs.message.removesuffix(".eml")).decode("ascii"),
        )
        events = list(prepared.notes)
        if verdict.action != "allow" and verdict.decision is not None:
            events.append((f"rules.{verdict.action}", verdict.audit_detail()))
        return record(session=s, audit=self.store.audit, env=env, blobs=blobs, stage=verdict.stage, events=events,
                      decision=json.dumps(verdict.audit_detail(), ensure_ascii=False) if verdict.decision else "")

    def _write_files(self, ident: Identity, prepared: Prepared) -> Blobs:
        rw, verdict = prepared.rw, prepared.verdict
        notices = [build_notice(key=self.store.audit.key, shared=self.upstream.username, operator=ident.login, subject=subj, text=text,
                                original=bytes(rw.head), kind=kind, ref=rw.message_id)
                   for kind, subj, text in verdict.notices]
        return write_blobs(self.store.spool_dir, rw.chunks(), notices, verdict.original, sync_dir=False)
