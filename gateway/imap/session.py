"""One IMAP session's commands, from the greeting to LOGOUT: the state RFC 3501 3 gives it
(not authenticated, authenticated, selected), login with the gateway's users and throttling,
and every command's answer.  It reads and writes nothing itself: the connection
(:mod:`.server`) gives it commands and a way to write and to read one line.

Every mailbox name is canonicalised (:func:`.names.canonical`) before it is looked up, and a
name is looked up only among the user's own mailboxes as the store makes them now, so no
spelling reaches another user's mail.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from mailwarden.store import StoreHandle
from mailwarden.store import imapchanges as changes, imapfolders as folders, imapstate as st

from mailwarden.gateway.auth import Authenticator, Identity, masked as masked_login
from mailwarden.gateway.sync.reading import read_mail

from . import commands as c
from .access import BulkWatch
from .bodystructure import describe
from .listing import list_lines, status_line
from .names import canonical, wire_name
from .selected import Selected, copy_uids, uses_modseq

log = logging.getLogger(__name__)

PRE_TLS = "IMAP4rev1 LITERAL+ ID ENABLE STARTTLS LOGINDISABLED"
PRE_AUTH = "IMAP4rev1 LITERAL+ ID ENABLE SASL-IR AUTH=PLAIN"
AUTHED = ("IMAP4rev1 LITERAL+ ID ENABLE IDLE UIDPLUS MOVE SPECIAL-USE NAMESPACE UNSELECT CHILDREN "
          "CONDSTORE ESEARCH LIST-EXTENDED LIST-STATUS")
RESERVED = ("INBOX", "Sent", "Drafts", "Trash", "Pool", "Customers", "Retention")  # the gateway's levels
NOT_YOURS = "NO [NONEXISTENT] No such mailbox (没有这个邮件夹)"
Write = Callable[[bytes], Awaitable[None]]
ReadLine = Callable[[], Awaitable[bytes | None]]


@dataclass
class Settings:
    mask_roles: tuple[str, ...] = ("sales",)
    max_append: int = 50 * 2**20
    bulk: BulkWatch = field(default_factory=BulkWatch)


class Closing(Exception):
    """The session ends after this command (LOGOUT, a fatal error)."""


class ImapSession:
    def __init__(self, store: StoreHandle, auth: Authenticator, settings: Settings, *, peer: str,
                 write: Write, read_line: ReadLine, tls: bool, on_login: Callable[[Identity], None]) -> None:
        self.store, self.auth, self.settings = store, auth, settings
        self.peer = peer
        self.write = write
        self.read_line = read_line
        self.tls = tls
        self.on_login = on_login
        self.identity: Identity | None = None
        self.selected: Selected | None = None
        self.utf8 = False
        self.condstore = False

    # --- helpers -------------------------------------------------------------------------------

    async def untagged(self, text: str | bytes) -> None:
        await self.write(b"* " + (text.encode() if isinstance(text, str) else text) + b"\r\n")

    async def done(self, tag: str, text: str) -> None:
        await self.write(f"{tag} {text}\r\n".encode())

    def capabilities(self) -> str:
        if not self.tls:
            return PRE_TLS
        return AUTHED if self.identity is not None else PRE_AUTH

    @property
    def masked(self) -> bool:
        return self.identity is not None and self.identity.role in self.settings.mask_roles

    def name(self, raw: bytes) -> str:
        return canonical(raw, utf8=self.utf8)

    # --- dispatch ------------------------------------------------------------------------------

    async def handle(self, cmd: c.Command) -> None:
        name = cmd.name
        anywhere = {"CAPABILITY": self.capability, "NOOP": self.noop, "LOGOUT": self.logout, "ID": self.id}
        if name in anywhere:
            await anywhere[name](cmd)
            return
        if self.identity is None:
            handler = {"STARTTLS": self.starttls_refused, "LOGIN": self.login, "AUTHENTICATE": self.authenticate,
                       "ENABLE": None}.get(name)
            if handler is None:
                await self.done(cmd.tag, f"BAD {name} needs a login first (请先登录)")
                return
            await handler(cmd)
            return
        if name in ("LOGIN", "AUTHENTICATE", "STARTTLS"):
            await self.done(cmd.tag, "BAD Already logged in")
            return
        try:
            await self._authed(cmd)
        except st.NotYours as exc:
            if "disabled" in str(exc):
                await self.untagged("BYE Your account was disabled (账号已停用)")
                raise Closing from None
            await self.done(cmd.tag, NOT_YOURS)
        except ValueError as exc:  # a mailbox name that is no name: no such mailbox, and why
            await self.done(cmd.tag, f"NO [CANNOT] {exc}")

    async def _authed(self, cmd: c.Command) -> None:
        name = cmd.name
        sel = self.selected
        table: dict[str, Callable[[c.Command], Awaitable[None]]] = {
            "ENABLE": self.enable, "NAMESPACE": self.namespace, "LIST": self.list, "LSUB": self.list,
            "STATUS": self.status, "SELECT": self.select, "EXAMINE": self.select, "CREATE": self.create,
            "DELETE": self.delete, "RENAME": self.rename, "SUBSCRIBE": self.subscribe,
            "UNSUBSCRIBE": self.subscribe, "APPEND": self.append,
        }
        if name in table:
            await table[name](cmd)
            return
        if sel is None:
            await self.done(cmd.tag, f"BAD {name} needs a selected mailbox (请先选择邮件夹)")
            return
        selected_table: dict[str, Callable[[c.Command], Awaitable[None]]] = {
            "CHECK": self.check, "CLOSE": self.close, "UNSELECT": self.close, "EXPUNGE": self.expunge,
            "FETCH": self.fetch, "STORE": self.store_flags, "SEARCH": self.search, "COPY": self.copy, "MOVE": self.copy,
        }
        handler = selected_table.get(name)
        if handler is None:
            await self.done(cmd.tag, f"BAD unknown command {name}")
            return
        await handler(cmd)

    # --- any state -----------------------------------------------------------------------------

    async def capability(self, cmd: c.Command) -> None:
        await self.untagged("CAPABILITY " + self.capabilities())
        await self.done(cmd.tag, "OK CAPABILITY done")

    async def noop(self, cmd: c.Command) -> None:
        await self.catch_up(expunge=True)
        await self.done(cmd.tag, f"OK {cmd.name} done")

    async def logout(self, cmd: c.Command) -> None:
        await self.untagged("BYE Logging out")
        await self.done(cmd.tag, "OK LOGOUT done")
        raise Closing

    async def id(self, cmd: c.Command) -> None:
        await self.untagged('ID ("name" "mailwarden")')
        await self.done(cmd.tag, "OK ID done")

    async def catch_up(self, *, expunge: bool) -> None:
        if self.selected is not None and self.identity is not None:
            await self.selected.catch_up(self.store, self.identity.user_id, self.write, expunge=expunge)

    # --- login -----------------------------------------------------------------------------------

    async def starttls_refused(self, cmd: c.Command) -> None:
        await self.done(cmd.tag, "BAD TLS is on already")

    async def login(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.Login)
        await self._check(cmd.tag, cmd.user, cmd.password)

    async def authenticate(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.Authenticate)
        if not self.tls:
            await self.done(cmd.tag, "NO [PRIVACYREQUIRED] Use STARTTLS first (请先启用加密连接)")
            return
        if cmd.mechanism != "PLAIN":
            await self.done(cmd.tag, f"NO [CANNOT] Mechanism {cmd.mechanism} is not offered; use PLAIN")
            return
        response = cmd.initial
        if response is None:
            await self.write(b"+ \r\n")
            response = await self.read_line()
            if response is None:
                raise Closing
        if response.strip() == b"*":
            await self.done(cmd.tag, "BAD Authentication cancelled")
            return
        try:
            decoded = base64.b64decode(response.strip() if response.strip() != b"=" else b"", validate=True)
            authz, user, password = decoded.split(b"\0", 2)
        except (binascii.Error, ValueError):
            await self.done(cmd.tag, "BAD Not a PLAIN response (base64 of authzid NUL login NUL password)")
            return
        if authz and authz.strip().lower() != user.strip().lower():
            # RFC 4616 2: nobody here may act as somebody else
            await self.done(cmd.tag, "NO [AUTHORIZATIONFAILED] You can log in only as yourself (只能以本人身份登录)")
            return
        await self._check(cmd.tag, user, password)

    async def _check(self, tag: str, user: bytes, password: bytes) -> None:
        if not self.tls:
            await self.done(tag, "NO [PRIVACYREQUIRED] Use STARTTLS first; passwords are never sent in the clear "
                                 "(请先启用加密连接)")
            return
        login = user.decode("utf-8", "surrogateescape")
        outcome = await self.auth.check(login, password.decode("utf-8", "surrogateescape"), self.peer)
        if outcome.identity is None:
            await asyncio.sleep(outcome.delay)
            who = login.strip().lower() if outcome.known else masked_login(login)
            log.info("IMAP login refused peer=%s login=%s: %s", self.peer, who, outcome.reason)
            if outcome.locked:
                await self.done(tag, f"NO [UNAVAILABLE] {outcome.reason[:1].upper()}{outcome.reason[1:]} "
                                     "(登录失败次数过多，请稍后再试)")
            else:
                await self.done(tag, "NO [AUTHENTICATIONFAILED] Login or password wrong (登录名或密码错误)")
            return
        self.identity = outcome.identity
        self.on_login(outcome.identity)
        log.info("IMAP login peer=%s operator=%s", self.peer, outcome.identity.login)
        await asyncio.to_thread(self.store.audit.append, actor=outcome.identity.login, action="imap.login",
                                peer=self.peer)
        await self.done(tag, f"OK [CAPABILITY {AUTHED}] Logged in")

    # --- authenticated ---------------------------------------------------------------------------

    async def enable(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.Enable)
        if self.identity is None:
            await self.done(cmd.tag, "BAD ENABLE needs a login first")
            return
        on = [cap for cap in cmd.capabilities if cap == "CONDSTORE"]
        if on:
            self.condstore = True
            if self.selected is not None:
                self.selected.condstore = True
            await self.untagged("ENABLED " + " ".join(on))
        await self.done(cmd.tag, "OK ENABLE done")

    async def namespace(self, cmd: c.Command) -> None:
        await self.untagged('NAMESPACE (("" "/")) NIL NIL')
        await self.done(cmd.tag, "OK NAMESPACE done")

    async def _boxes(self) -> list[st.BoxInfo]:
        assert self.identity is not None
        return await asyncio.to_thread(st.mailboxes, self.store.engine, self.identity.user_id)

    async def list(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.List) and self.identity is not None
        boxes = await self._boxes()
        lost = await asyncio.to_thread(folders.lost_subscriptions, self.store.engine, self.identity.user_id) \
            if "SUBSCRIBED" in cmd.select else []
        lines = list_lines(cmd, boxes, utf8=self.utf8, lost=tuple(lost))
        await self.write(b"".join(b"* " + line + b"\r\n" for line in lines))
        if cmd.status_items:
            for box in boxes:
                if any(line.endswith(b" " + wire_name(box.name, utf8=self.utf8)) for line in lines):
                    await self._status_line(box.name, cmd.status_items)
        await self.done(cmd.tag, f"OK {cmd.name} done")

    async def _status_line(self, name: str, items: tuple[str, ...]) -> None:
        assert self.identity is not None
        box, messages, unseen, recent = await asyncio.to_thread(st.status, self.store.engine,
                                                                self.identity.user_id, name)
        await self.untagged(status_line(box, items, messages, unseen, recent, utf8=self.utf8))

    async def status(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.Status)
        await self._condstore("HIGHESTMODSEQ" in cmd.items)
        await self._status_line(self.name(cmd.mailbox), cmd.items)
        await self.done(cmd.tag, "OK STATUS done")

    async def select(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.Select) and self.identity is not None
        name = self.name(cmd.mailbox)
        if self.selected is not None:
            self.selected = None
            await self.untagged("OK [CLOSED] Previous mailbox closed")
        if cmd.condstore or cmd.qresync:
            self.condstore = True
        readonly = cmd.name == "EXAMINE"
        opened = await asyncio.to_thread(st.open_box, self.store.engine, self.identity.user_id, name,
                                         claim=not readonly)
        sel = Selected(opened.box, readonly, opened.messages, opened.epoch, condstore=self.condstore)
        sel.recent = {m.uid for m in opened.messages if m.uid > opened.recent_above}
        box = opened.box
        unseen = next((i + 1 for i, m in enumerate(sel.messages) if "\\Seen" not in m.flags), None)
        lines = [sel.flags_lines().rstrip(b"\r\n"), b"* %d EXISTS" % len(sel.messages), b"* %d RECENT" % len(sel.recent),
                 b"* OK [UIDVALIDITY %d] UIDs valid" % box.uidvalidity, b"* OK [UIDNEXT %d] Next UID" % box.uid_next,
                 b"* OK [HIGHESTMODSEQ %d] Highest" % box.highest_modseq]
        if unseen is not None:
            lines.append(b"* OK [UNSEEN %d] First unseen" % unseen)
        await self.write(b"\r\n".join(lines) + b"\r\n")
        self.selected = sel
        await self.done(cmd.tag, f"OK [{'READ-ONLY' if readonly else 'READ-WRITE'}] {cmd.name} done")

    async def create(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.MailboxCommand) and self.identity is not None
        name = self.name(cmd.mailbox)
        if name in {b.name for b in await self._boxes()}:
            await self.done(cmd.tag, "NO [ALREADYEXISTS] Mailbox exists")
            return
        if name.split("/")[0] in RESERVED:
            await self.done(cmd.tag, "NO [CANNOT] Folders of your own go beside INBOX, not inside the gateway's "
                                     "(请在顶层新建邮件夹)")
            return
        try:
            await asyncio.to_thread(folders.create, self.store.engine, self.identity.user_id, name)
        except FileExistsError:
            await self.done(cmd.tag, "NO [ALREADYEXISTS] Mailbox exists")
            return
        await self.done(cmd.tag, "OK CREATE done")

    async def delete(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.MailboxCommand) and self.identity is not None
        name = self.name(cmd.mailbox)
        if self.selected is not None and self.selected.box.name == name:
            self.selected = None
        try:
            await asyncio.to_thread(folders.remove, self.store.engine, self.identity.user_id, name)
        except changes.CannotPlace:
            await self.done(cmd.tag, "NO [CANNOT] Only folders you made can be deleted (只能删除自建邮件夹)")
            return
        await self.done(cmd.tag, "OK DELETE done")

    async def rename(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.Rename) and self.identity is not None
        old, new = self.name(cmd.old), self.name(cmd.new)
        if new.split("/")[0] in RESERVED:
            await self.done(cmd.tag, "NO [CANNOT] Folders of your own go beside INBOX, not inside the gateway's")
            return
        try:
            await asyncio.to_thread(folders.rename, self.store.engine, self.identity.user_id, old, new)
        except changes.CannotPlace:
            await self.done(cmd.tag, "NO [CANNOT] Only folders you made can be renamed (只能重命名自建邮件夹)")
            return
        except FileExistsError:
            await self.done(cmd.tag, "NO [ALREADYEXISTS] Mailbox exists")
            return
        if self.selected is not None and self.selected.box.name == old:
            self.selected = None
        await self.done(cmd.tag, "OK RENAME done")

    async def subscribe(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.MailboxCommand) and self.identity is not None
        await asyncio.to_thread(folders.subscribe, self.store.engine, self.identity.user_id, self.name(cmd.mailbox),
                                cmd.name == "SUBSCRIBE")
        await self.done(cmd.tag, f"OK {cmd.name} done")

    async def append(self, cmd: c.Command) -> None:
        assert isinstance(cmd, c.Append) and self.identity is not None
        name = self.name(cmd.mailbox)
        boxes = {b.name: b for b in await self._boxes()}
        box = boxes.get(name)
        if box is None:
            await self.done(cmd.tag, "NO [TRYCREATE] No such mailbox (没有这个邮件夹)")
            return
        if box.kind == "sent":
            # What is sent through the gateway is filed in Sent by the gateway itself, tagged.
            await self.done(cmd.tag, "OK APPEND to Sent not needed: the gateway files what you send (已发送邮件由网关自动保存)")
            return
        if box.kind not in ("drafts", "personal"):
            await self.done(cmd.tag, "NO [CANNOT] Mail can be added only to Drafts and your own folders "
                                     "(只能保存到草稿箱或自建邮件夹)")
            return
        if len(cmd.message) > self.settings.max_append:
            await self.done(cmd.tag, "NO [TOOBIG] Message too large")
            return
        raw = cmd.message
        when = cmd.date or datetime.now(timezone.utc)

        def store_it() -> tuple[st.BoxInfo, int]:
            facts = describe(raw)
            new, _ = read_mail(raw, internal_date=when, folder_role="drafts", facts=facts.to_json())
            new.direction = "draft"
            assert self.identity is not None
            return changes.append(self.store.engine, self.identity.user_id, name, new, cmd.flags, self.store.blobs, raw)

        info, uid = await asyncio.to_thread(store_it)
        await self.catch_up(expunge=False)
        await self.done(cmd.tag, f"OK [APPENDUID {info.uidvalidity} {uid}] APPEND done")

    # --- selected --------------------------------------------------------------------------------

    async def check(self, cmd: c.Command) -> None:
        await self.catch_up(expunge=True)
        await self.done(cmd.tag, "OK CHECK done")

    async def close(self, cmd: c.Command) -> None:
        sel = self.selected
        assert sel is not None and self.identity is not None
        if cmd.name == "CLOSE" and not sel.readonly:
            doomed = sel.deleted()
            if doomed:
                await asyncio.to_thread(changes.delete, self.store.engine, self.identity.user_id, sel.box.id,
                                        [m.mail_id for m in doomed], audit=self.store.audit,
                                        login=self.identity.login, peer=self.peer)
        self.selected = None
        await self.done(cmd.tag, f"OK {cmd.name} done")

    async def expunge(self, cmd: c.Command) -> None:
        sel = self.selected
        assert sel is not None and self.identity is not None and isinstance(cmd, c.Simple)
        if sel.readonly:
            await self.done(cmd.tag, "NO [READ-ONLY] Mailbox is read-only")
            return
        doomed = sel.deleted(cmd.messages if cmd.uid else None)
        if doomed:
            await asyncio.to_thread(changes.delete, self.store.engine, self.identity.user_id, sel.box.id,
                                    [m.mail_id for m in doomed], audit=self.store.audit,
                                    login=self.identity.login, peer=self.peer)
        await self.catch_up(expunge=True)
        await self.done(cmd.tag, "OK EXPUNGE done")

    async def _condstore(self, used: bool) -> None:
        """RFC 7162 3.1: a command that uses MODSEQs turns CONDSTORE on for the session; with a
        mailbox selected the client learns its HIGHESTMODSEQ first (3.1.2)."""
        if used and not self.condstore:
            self.condstore = True
            if self.selected is not None:
                self.selected.condstore = True
                await self.untagged(f"OK [HIGHESTMODSEQ {self.selected.known_modseq}] CONDSTORE on")

    async def fetch(self, cmd: c.Command) -> None:
        sel = self.selected
        assert isinstance(cmd, c.Fetch) and sel is not None and self.identity is not None
        await self._condstore(cmd.changed_since is not None or any(i.name == "MODSEQ" for i in cmd.items))
        await self.catch_up(expunge=cmd.uid)
        if not cmd.uid and not sel.valid_sequence(cmd.messages):
            await self.done(cmd.tag, "BAD No such message sequence number")
            return
        bodies = await sel.fetch(cmd, self.store, self.identity.user_id, self.masked, self.write)
        total = self.settings.bulk.count(self.identity.login, bodies)
        if total is not None:
            log.warning("bulk download: %s fetched %d message bodies within %g min (peer %s)",
                        self.identity.login, total, self.settings.bulk.minutes, self.peer)
            await asyncio.to_thread(self.settings.bulk.report, self.store.audit, self.identity.login, total,
                                    self.peer, sel.box.name)
        await self.done(cmd.tag, f"OK {'UID ' if cmd.uid else ''}FETCH done")

    async def store_flags(self, cmd: c.Command) -> None:
        sel = self.selected
        assert isinstance(cmd, c.Store) and sel is not None and self.identity is not None
        await self._condstore(cmd.unchanged_since is not None)
        await self.catch_up(expunge=cmd.uid)
        if sel.readonly:
            await self.done(cmd.tag, "NO [READ-ONLY] Mailbox is read-only")
            return
        if any(f.lower() == "\\recent" for f in cmd.flags):
            await self.done(cmd.tag, "BAD \\Recent cannot be stored")
            return
        if not cmd.uid and not sel.valid_sequence(cmd.messages):
            await self.done(cmd.tag, "BAD No such message sequence number")
            return
        code = await sel.store(cmd, self.store, self.identity.user_id, self.write)
        await self.done(cmd.tag, f"OK {code}{'UID ' if cmd.uid else ''}STORE done")

    async def search(self, cmd: c.Command) -> None:
        sel = self.selected
        assert isinstance(cmd, c.Search) and sel is not None
        await self._condstore(uses_modseq(cmd.criteria))
        if cmd.charset not in (None, "UTF-8", "US-ASCII"):
            await self.done(cmd.tag, "NO [BADCHARSET (UTF-8 US-ASCII)] Search in UTF-8")
            return
        await self.catch_up(expunge=cmd.uid)
        await self.write(await sel.search(cmd, self.store, self.masked, self.write))
        await self.done(cmd.tag, f"OK {'UID ' if cmd.uid else ''}SEARCH done")

    async def copy(self, cmd: c.Command) -> None:
        sel = self.selected
        assert isinstance(cmd, c.Copy) and sel is not None and self.identity is not None
        await self.catch_up(expunge=cmd.uid)
        if not cmd.uid and not sel.valid_sequence(cmd.messages):
            await self.done(cmd.tag, "BAD No such message sequence number")
            return
        target = self.name(cmd.mailbox)
        boxes = {b.name: b for b in await self._boxes()}
        dest = boxes.get(target)
        if dest is None:
            await self.done(cmd.tag, "NO [TRYCREATE] No such mailbox (没有这个邮件夹)")
            return
        chosen = sel.resolve(cmd.messages, cmd.uid)
        if not chosen:
            await self.done(cmd.tag, f"OK {cmd.name} done (nothing to do)")
            return
        try:
            placed = await asyncio.to_thread(changes.place, self.store.engine, self.identity.user_id,
                                             [m.mail_id for _, m in chosen], target, copy=cmd.name == "COPY")
        except changes.CannotPlace:
            await self.done(cmd.tag, f"NO [CANNOT] Mail cannot be put in {target} by hand: it shows what is filed "
                                     "there (此邮件夹由网关按客户归档)")
            return
        src, dst = copy_uids(chosen, placed)
        code = f"[COPYUID {dest.uidvalidity} {src} {dst}] " if src else ""
        if cmd.name == "MOVE":
            await self.untagged(f"OK {code}Moved")
            await self.catch_up(expunge=True)
            await self.done(cmd.tag, f"OK {'UID ' if cmd.uid else ''}MOVE done")
            return
        await self.done(cmd.tag, f"OK {code}{'UID ' if cmd.uid else ''}COPY done")


__all__ = ["Closing", "ImapSession", "Settings"]
