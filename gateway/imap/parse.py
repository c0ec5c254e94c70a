"""One IMAP client command, read from its line and literals, as a :mod:`.commands` value.

:func:`parse_command` takes the parts :class:`~.reader.CommandReader` collected (see
:mod:`.tokens`) and gives the command or raises :class:`~.tokens.ParseError` with the text
to answer after ``BAD``.  FETCH items are read in :mod:`.parsefetch`, SEARCH keys in
:mod:`.parsesearch`.  Mailbox names stay the bytes the client sent.
"""

from __future__ import annotations

from typing import Callable, Final

from .commands import (
    Append,
    Authenticate,
    Command,
    Copy,
    Enable,
    Fetch,
    Id,
    List,
    Login,
    MailboxCommand,
    Rename,
    Search,
    Select,
    SequenceSet,
    Simple,
    Status,
    Store,
)
from .parsefetch import fetch_items, fetch_modifiers
from .parsesearch import search_arguments
from .tokens import ParseError, Tokens, tag_of

__all__ = ["ParseError", "parse_command", "tag_of"]

SIMPLE: Final = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE",
                           "IDLE", "NAMESPACE"})
UID_COMMANDS: Final = frozenset({"FETCH", "SEARCH", "STORE", "COPY", "MOVE", "EXPUNGE"})
STATUS_ITEMS: Final = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ", "SIZE")
LIST_SELECT: Final = ("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE")
LIST_RETURN: Final = ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS")
_SASL_IR = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def parse_command(parts: list[bytes], *, utf8: bool = False) -> Command:
    """The command in *parts* (``[line, literal, line, …]``); ``utf8``: UTF8=ACCEPT is on, so
    quoted strings may hold UTF-8."""
    t = Tokens(parts, utf8=utf8)
    tag = tag_of(t.line)
    if tag is None:
        raise ParseError("missing or invalid tag")
    t.pos = len(tag)
    t.sp()
    name = t.keyword("a command name")
    uid = False
    if name == "UID":
        t.sp()
        name = t.keyword("a command after UID")
        if name not in UID_COMMANDS:
            raise ParseError(f"UID {name}: not a UID command")
        uid = True
    t.what = f"UID {name}" if uid else name
    if name in SIMPLE and not uid:
        command: Command = Simple(tag, name)
    else:
        handler = _HANDLERS.get(name)
        if handler is None:
            raise ParseError(f"unknown command {name}")
        t.sp()
        command = handler(t, tag, name, uid)
    t.end()
    return command


def _uid_expunge(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    return Simple(tag, name, uid=True, messages=t.sequence_set())


def _login(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    user = t.astring("a user name")
    t.sp()
    return Login(tag, name, user=user, password=t.astring("a password"))


def _authenticate(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    mechanism = t.keyword("a SASL mechanism")
    initial = None
    if t.more():
        initial = t.atom("an initial response")
        if not set(initial) <= _SASL_IR:
            raise t.fail("the initial response is not base64")
    return Authenticate(tag, name, mechanism=mechanism, initial=initial)


def _id(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    if t.nil():
        return Id(tag, name, fields=None)
    t.expect(b"(", '"(" or NIL')
    fields: dict[str, str | None] = {}
    if not t.take(b")"):
        while True:
            key = t.string("a field name")
            t.sp()
            value = t.nstring()
            fields[key.decode("utf-8", "replace")] = None if value is None else value.decode("utf-8", "replace")
            if not t.more():
                break
        t.expect(b")", '")" after the fields')
    return Id(tag, name, fields=fields)


def _enable(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    capabilities = [t.keyword("a capability")]
    while t.more():
        capabilities.append(t.keyword("a capability"))
    return Enable(tag, name, capabilities=tuple(capabilities))


def _select(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    mailbox = t.astring("a mailbox name")
    condstore = False
    qresync = None
    match = None
    if t.more():
        t.expect(b"(", '"(" and SELECT parameters')
        while True:
            param = t.keyword("a SELECT parameter")
            if param == "CONDSTORE" and not condstore:
                condstore = True
            elif param == "QRESYNC" and qresync is None:
                t.sp()
                t.expect(b"(", '"(" after QRESYNC')
                uidvalidity = t.number("a UIDVALIDITY", nonzero=True)
                t.sp()
                modseq = t.modseq()
                known = None
                if t.more():
                    if t.peek() != 0x28:
                        known = t.sequence_set()
                    if t.peek() == 0x28 or t.more():
                        match = _seq_match(t)
                t.expect(b")", '")" to end QRESYNC')
                qresync = (uidvalidity, modseq, known)
            else:
                raise t.fail(f"unknown or repeated parameter {param}")
            if not t.more():
                break
        t.expect(b")", '")" after the SELECT parameters')
    return Select(tag, name, mailbox=mailbox, condstore=condstore, qresync=qresync, qresync_match=match)


def _seq_match(t: Tokens) -> tuple[SequenceSet, SequenceSet]:
    """QRESYNC's ``(known-sequence-set known-uid-set)``."""
    t.expect(b"(", '"(" and the sequence match data')
    seqs = t.sequence_set()
    t.sp()
    uids = t.sequence_set()
    t.expect(b")", '")" after the sequence match data')
    return seqs, uids


def _mailbox(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    return MailboxCommand(tag, name, mailbox=t.astring("a mailbox name"))


def _rename(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    old = t.astring("a mailbox name")
    t.sp()
    return Rename(tag, name, old=old, new=t.astring("the new mailbox name"))


def _options(t: Tokens, allowed: tuple[str, ...], what: str) -> list[str]:
    """``(A B C)`` of words out of *allowed*, upper-cased; ``()`` is allowed."""
    out: list[str] = []
    t.expect(b"(", f'"(" and {what}')
    if t.take(b")"):
        return out
    while True:
        word = t.keyword(what)
        if word not in allowed:
            raise t.fail(f"unknown {what} {word}")
        out.append(word)
        if not t.more():
            break
    t.expect(b")", f'")" after the {what}s')
    return out


def _status_items(t: Tokens) -> tuple[str, ...]:
    items = _options(t, STATUS_ITEMS, "STATUS item")
    if not items:
        raise t.fail("no STATUS items")
    return tuple(items)


def _list(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    select: list[str] = []
    extended = False
    if name == "LIST" and t.peek() == 0x28:
        select = _options(t, LIST_SELECT, "selection option")
        if "RECURSIVEMATCH" in select and not set(select) - {"RECURSIVEMATCH", "REMOTE"}:
            raise t.fail("RECURSIVEMATCH needs another selection option than REMOTE")  # RFC 5258 3
        extended = True
        t.sp()
    reference = t.astring("a reference name")
    t.sp()
    if name == "LIST" and t.take(b"("):
        patterns = [t.list_mailbox()]
        while t.more():
            patterns.append(t.list_mailbox())
        t.expect(b")", '")" after the patterns')
        extended = True
    else:
        patterns = [t.list_mailbox()]
    returns: list[str] = []
    status_items: tuple[str, ...] = ()
    if name == "LIST" and t.more():
        if t.keyword("RETURN") != "RETURN":
            raise t.fail("expected RETURN after the patterns")
        t.sp()
        t.expect(b"(", '"(" and return options')
        while not t.take(b")"):
            if returns or status_items:
                t.sp()
            word = t.keyword("a return option")
            if word not in LIST_RETURN:
                raise t.fail(f"unknown return option {word}")
            if word != "STATUS":
                returns.append(word)
            elif status_items:
                raise t.fail("STATUS given twice")
            else:
                t.sp()
                status_items = _status_items(t)
        extended = True
    return List(tag, name, reference=reference, patterns=tuple(patterns), select=tuple(select),
                returns=tuple(returns), status_items=status_items, extended=extended)


def _status(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    mailbox = t.astring("a mailbox name")
    t.sp()
    return Status(tag, name, mailbox=mailbox, items=_status_items(t))


def _append(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    mailbox = t.astring("a mailbox name")
    t.sp()
    flags: tuple[str, ...] = ()
    when = None
    if t.peek() == 0x28:
        flags = t.flag_list()
        t.sp()
    if t.peek() == 0x22:
        when = t.date_time()
        t.sp()
    if t.peek() != 0x7B and t.line[t.pos:t.pos + 2] != b"~{":
        raise t.fail("expected the message as a literal")
    message, binary = t.literal()
    return Append(tag, name, mailbox=mailbox, flags=flags, date=when, message=message, binary=binary)


def _search(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    returns, charset, criteria = search_arguments(t)
    return Search(tag, name, uid=uid, charset=charset, criteria=criteria, returns=returns)


def _fetch(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    messages = t.sequence_set()
    t.sp()
    items = fetch_items(t)
    changed_since, vanished = (None, False)
    if t.more():
        changed_since, vanished = fetch_modifiers(t, uid)
    return Fetch(tag, name, uid=uid, messages=messages, items=items, changed_since=changed_since,
                 vanished=vanished)


def _store(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    messages = t.sequence_set()
    t.sp()
    unchanged_since = None
    if t.take(b"("):
        if t.keyword("UNCHANGEDSINCE") != "UNCHANGEDSINCE":
            raise t.fail("the only STORE modifier is UNCHANGEDSINCE")
        t.sp()
        unchanged_since = t.modseq(zero=True)
        t.expect(b")", '")" after UNCHANGEDSINCE')
        t.sp()
    mode = ""
    if t.peek() in (0x2B, 0x2D):
        mode = chr(t.line[t.pos])
        t.pos += 1
    what = t.line[t.pos:t.pos + 12].upper()
    if what.startswith(b"FLAGS.SILENT"):
        silent, t.pos = True, t.pos + 12
    elif what.startswith(b"FLAGS"):
        silent, t.pos = False, t.pos + 5
    else:
        raise t.fail("expected FLAGS, +FLAGS or -FLAGS (with .SILENT or not)")
    t.sp()
    if t.peek() == 0x28:
        flags = t.flag_list()
    else:
        flags_list = [t.flag()]
        while t.more():
            flags_list.append(t.flag())
        flags = tuple(flags_list)
    return Store(tag, name, uid=uid, messages=messages, mode=mode, silent=silent, flags=flags,
                 unchanged_since=unchanged_since)


def _copy(t: Tokens, tag: str, name: str, uid: bool) -> Command:
    messages = t.sequence_set()
    t.sp()
    return Copy(tag, name, uid=uid, messages=messages, mailbox=t.astring("a mailbox name"))


_HANDLERS: Final[dict[str, Callable[[Tokens, str, str, bool], Command]]] = {
    "EXPUNGE": _uid_expunge,  # plain EXPUNGE is Simple
    "LOGIN": _login,
    "AUTHENTICATE": _authenticate,
    "ID": _id,
    "ENABLE": _enable,
    "SELECT": _select,
    "EXAMINE": _select,
    "CREATE": _mailbox,
    "DELETE": _mailbox,
    "SUBSCRIBE": _mailbox,
    "UNSUBSCRIBE": _mailbox,
    "RENAME": _rename,
    "LIST": _list,
    "LSUB": _list,
    "STATUS": _status,
    "APPEND": _append,
    "SEARCH": _search,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy,
    "MOVE": _copy,
}
