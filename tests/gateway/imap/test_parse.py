"""parse_command: every command form, the errors a client is told, and fuzzing."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.gateway.imap.commands import (
    STAR, And, Append, Authenticate, Bad, Command, Continue, Copy, Enable, Fetch, FetchItem, Id, Key, List, Login,
    MailboxCommand, Not, Or, Rename, Search, Section, Select, SequenceSet, Simple, Status, Store,
)
from mailwarden.gateway.imap.parse import ParseError, parse_command
from mailwarden.gateway.imap.reader import CommandReader


def parse(line: bytes, *literals: bytes, utf8: bool = False) -> Command:
    """*line* with ``{n}`` where each literal goes; the parts as the reader makes them."""
    pieces = line.split(b"\x00")  # NUL marks where a literal header ends a line
    parts = [pieces[0]]
    for literal, rest in zip(literals, pieces[1:], strict=True):
        parts += [literal, rest]
    return parse_command(parts, utf8=utf8)


def one(*ranges: tuple[int, int]) -> SequenceSet:
    return SequenceSet(tuple(ranges))


@pytest.mark.parametrize("name", ["CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "UNSELECT",
                                  "EXPUNGE", "IDLE", "NAMESPACE"])
def test_simple_commands(name):
    assert parse(b"a1 " + name.lower().encode()) == Simple("a1", name)


@pytest.mark.parametrize(("line", "literals", "command"), [
    (b"a UID EXPUNGE 3:5,9", (), Simple("a", "EXPUNGE", uid=True, messages=one((3, 5), (9, 9)))),
    (b'a LOGIN joe "se\\"cr\\\\et"', (), Login("a", "LOGIN", user=b"joe", password=b'se"cr\\et')),
    (b"a LOGIN {3}\x00 {2+}\x00", (b"joe", b"pw"), Login("a", "LOGIN", user=b"joe", password=b"pw")),
    (b"a AUTHENTICATE plain", (), Authenticate("a", "AUTHENTICATE", mechanism="PLAIN")),
    (b"a AUTHENTICATE PLAIN AGpvZQBwdw==", (), Authenticate("a", "AUTHENTICATE", "PLAIN", b"AGpvZQBwdw==")),
    (b"a AUTHENTICATE PLAIN =", (), Authenticate("a", "AUTHENTICATE", "PLAIN", b"=")),
    (b"a ID NIL", (), Id("a", "ID", fields=None)),
    (b'a ID ("name" "Thunderbird" "version" NIL)', (), Id("a", "ID", {"name": "Thunderbird", "version": None})),
    (b"a ID ()", (), Id("a", "ID", {})),
    (b"a ENABLE utf8=accept CONDSTORE", (), Enable("a", "ENABLE", ("UTF8=ACCEPT", "CONDSTORE"))),
    (b"a SELECT inbox", (), Select("a", "SELECT", mailbox=b"inbox")),
    (b"a EXAMINE Sent (CONDSTORE)", (), Select("a", "EXAMINE", mailbox=b"Sent", condstore=True)),
    (b"a SELECT INBOX (QRESYNC (67890007 90060115194045000))", (),
     Select("a", "SELECT", mailbox=b"INBOX", qresync=(67890007, 90060115194045000, None))),
    (b"a SELECT INBOX (QRESYNC (1 2 1:5 (1:2 7,9)) CONDSTORE)", (),
     Select("a", "SELECT", mailbox=b"INBOX", condstore=True, qresync=(1, 2, one((1, 5))),
            qresync_match=(one((1, 2)), one((7, 7), (9, 9))))),
    (b'a CREATE "&YqVO9w-/2026"', (), MailboxCommand("a", "CREATE", mailbox=b"&YqVO9w-/2026")),
    (b"a DELETE old", (), MailboxCommand("a", "DELETE", mailbox=b"old")),
    (b"a SUBSCRIBE {4}\x00", (b"a b\x7f",), MailboxCommand("a", "SUBSCRIBE", mailbox=b"a b\x7f")),
    (b"a UNSUBSCRIBE x]y", (), MailboxCommand("a", "UNSUBSCRIBE", mailbox=b"x]y")),
    (b'a RENAME old "new one"', (), Rename("a", "RENAME", old=b"old", new=b"new one")),
    (b'a LIST "" *', (), List("a", "LIST", reference=b"", patterns=(b"*",))),
    (b'a LIST "" ""', (), List("a", "LIST", reference=b"", patterns=(b"",))),
    (b"a LIST ~/Mail/ %/x]*", (), List("a", "LIST", reference=b"~/Mail/", patterns=(b"%/x]*",))),
    (b'a LSUB "" %', (), List("a", "LSUB", reference=b"", patterns=(b"%",))),
    (b'a LIST () "" %', (), List("a", "LIST", reference=b"", patterns=(b"%",), extended=True)),
    (b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" Sent/%)', (),
     List("a", "LIST", reference=b"", patterns=(b"INBOX", b"Sent/%"), select=("SUBSCRIBED", "RECURSIVEMATCH"),
          extended=True)),
    (b'a LIST "" % RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN) SUBSCRIBED)', (),
     List("a", "LIST", reference=b"", patterns=(b"%",), returns=("CHILDREN", "SPECIAL-USE", "SUBSCRIBED"),
          status_items=("MESSAGES", "UNSEEN"), extended=True)),
    (b'a LIST "" % RETURN ()', (), List("a", "LIST", reference=b"", patterns=(b"%",), extended=True)),
    (b"a STATUS INBOX (messages UIDNEXT UIDVALIDITY UNSEEN RECENT HIGHESTMODSEQ SIZE)", (),
     Status("a", "STATUS", b"INBOX", ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "HIGHESTMODSEQ",
                                      "SIZE"))),
    (b"a APPEND Drafts {3}\x00", (b"x\r\n",), Append("a", "APPEND", mailbox=b"Drafts", message=b"x\r\n")),
    (b'a APPEND Drafts (\\seen \\DRAFT $Label1) " 7-Feb-1994 21:52:25 +0800" ~{2}\x00', (b"\x00\x00",),
     Append("a", "APPEND", mailbox=b"Drafts", flags=("\\Seen", "\\Draft", "$Label1"),
            date=datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=8))), message=b"\x00\x00",
            binary=True)),
    (b"a APPEND Drafts () {0}\x00", (b"",), Append("a", "APPEND", mailbox=b"Drafts")),
    (b"a COPY 1:* Archive", (), Copy("a", "COPY", messages=one((1, STAR)), mailbox=b"Archive")),
    (b"a UID MOVE 4:2,$ Trash", (), None),  # "$" alone only: a bad set (below)
    (b"a UID MOVE $ Trash", (), Copy("a", "MOVE", uid=True, messages=SequenceSet((), saved=True),
                                      mailbox=b"Trash")),
    (b"a MOVE *:4 Trash", (), Copy("a", "MOVE", messages=one((STAR, 4)), mailbox=b"Trash")),
])
def test_command_forms(line, literals, command):
    if command is None:
        with pytest.raises(ParseError):
            parse(line, *literals)
        return
    assert parse(line, *literals) == command


@pytest.mark.parametrize(("line", "command"), [
    (b"a STORE 1 FLAGS (\\Seen)", Store("a", "STORE", messages=one((1, 1)), flags=("\\Seen",))),
    (b"a STORE 1:3 +FLAGS.SILENT (\\Deleted $Junk)",
     Store("a", "STORE", messages=one((1, 3)), mode="+", silent=True, flags=("\\Deleted", "$Junk"))),
    (b"a UID STORE 7 -flags \\Flagged \\Seen",
     Store("a", "STORE", uid=True, messages=one((7, 7)), mode="-", flags=("\\Flagged", "\\Seen"))),
    (b"a STORE 2 (UNCHANGEDSINCE 320162338) +FLAGS ()",
     Store("a", "STORE", messages=one((2, 2)), mode="+", unchanged_since=320162338)),
])
def test_store(line, command):
    assert parse(line) == command


B = FetchItem  # shorter tables


@pytest.mark.parametrize(("items", "parsed"), [
    (b"FAST", (B("FLAGS"), B("INTERNALDATE"), B("RFC822.SIZE"))),
    (b"all", (B("FLAGS"), B("INTERNALDATE"), B("RFC822.SIZE"), B("ENVELOPE"))),
    (b"FULL", (B("FLAGS"), B("INTERNALDATE"), B("RFC822.SIZE"), B("ENVELOPE"), B("BODY"))),
    (b"uid", (B("UID"),)),
    (b"(UID FLAGS MODSEQ BODYSTRUCTURE BODY ENVELOPE INTERNALDATE RFC822.SIZE)",
     tuple(B(n) for n in ("UID", "FLAGS", "MODSEQ", "BODYSTRUCTURE", "BODY", "ENVELOPE", "INTERNALDATE",
                          "RFC822.SIZE"))),
    (b"BODY[]", (B("BODY[]", Section()),)),
    (b"BODY.PEEK[]<0.2048>", (B("BODY[]", Section(), (0, 2048), peek=True),)),
    (b"body[1.2.mime]", (B("BODY[]", Section((1, 2), "MIME")),)),
    (b"BODY[3.TEXT]", (B("BODY[]", Section((3,), "TEXT")),)),
    (b"BODY[HEADER.FIELDS (From to X-Spam)]", (B("BODY[]", Section((), "HEADER.FIELDS", ("FROM", "TO", "X-SPAM"))),)),
    (b"BODY.PEEK[1.HEADER.FIELDS.NOT (\"Received\")]",
     (B("BODY[]", Section((1,), "HEADER.FIELDS.NOT", ("RECEIVED",)), peek=True),)),
    (b"BINARY[1.2]<10.5>", (B("BINARY[]", Section((1, 2)), (10, 5)),)),
    (b"BINARY.PEEK[]", (B("BINARY[]", Section(), peek=True),)),
    (b"BINARY.SIZE[2]", (B("BINARY.SIZE", Section((2,))),)),
    (b"(RFC822 RFC822.HEADER RFC822.TEXT)",
     (B("RFC822", Section()), B("RFC822.HEADER", Section(text="HEADER"), peek=True),
      B("RFC822.TEXT", Section(text="TEXT")))),
])
def test_fetch_items(items, parsed):
    command = parse(b"a FETCH 1 " + items)
    assert command == Fetch("a", "FETCH", messages=one((1, 1)), items=parsed)


def test_fetch_labels():
    (item,) = parse(b"a FETCH 1 BODY.PEEK[1.HEADER.FIELDS (a b)]<5.10>").items
    assert item.label() == "BODY[1.HEADER.FIELDS (A B)]<5>"
    (item,) = parse(b"a FETCH 1 RFC822.HEADER").items
    assert item.label() == "RFC822.HEADER"


def test_fetch_modifiers():
    assert parse(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)") == Fetch(
        "a", "FETCH", uid=True, messages=one((1, STAR)), items=(B("FLAGS"),), changed_since=12345, vanished=True)
    assert parse(b"a FETCH 1 FLAGS (CHANGEDSINCE 0)").changed_since == 0


def k(name: str, value: object = None) -> Key:
    return Key(name, value)


@pytest.mark.parametrize(("keys", "criteria"), [
    (b"ALL", k("ALL")),
    (b"unseen", k("UNSEEN")),
    (b"1:3,5", k("SEQ", one((1, 3), (5, 5)))),
    (b"$", k("SEQ", SequenceSet((), saved=True))),
    (b"UID 4:*", k("UID", one((4, STAR)))),
    (b"FROM smith SUBJECT {3}\x00", None),  # literal: see test_search_literal
    (b'FROM "smith" TO x', And((k("FROM", b"smith"), k("TO", b"x")))),
    (b"OR SEEN FLAGGED", Or(k("SEEN"), k("FLAGGED"))),
    (b"NOT NOT DELETED", Not(Not(k("DELETED")))),
    (b"(SEEN) (SEEN DRAFT)", And((k("SEEN"), And((k("SEEN"), k("DRAFT")))))),
    (b"SINCE 1-Feb-1994 BEFORE \"21-Dec-2026\" ON 01-jan-2000",
     And((k("SINCE", date(1994, 2, 1)), k("BEFORE", date(2026, 12, 21)), k("ON", date(2000, 1, 1))))),
    (b"SENTSINCE 1-Feb-1994 SENTBEFORE 2-Feb-1994 SENTON 3-Feb-1994",
     And((k("SENTSINCE", date(1994, 2, 1)), k("SENTBEFORE", date(1994, 2, 2)), k("SENTON", date(1994, 2, 3))))),
    (b"LARGER 1000 SMALLER 0", And((k("LARGER", 1000), k("SMALLER", 0)))),
    (b"YOUNGER 3600 OLDER 60", And((k("YOUNGER", 3600), k("OLDER", 60)))),
    (b"KEYWORD $Junk UNKEYWORD foo", And((k("KEYWORD", "$Junk"), k("UNKEYWORD", "foo")))),
    (b'HEADER Message-ID "<a@b>"', k("HEADER", ("Message-ID", b"<a@b>"))),
    (b"MODSEQ 620162338", k("MODSEQ", 620162338)),
    (b'MODSEQ "/flags/\\\\draft" all 620162338', k("MODSEQ", 620162338)),
    (b"BODY x TEXT y CC z BCC w", And((k("BODY", b"x"), k("TEXT", b"y"), k("CC", b"z"), k("BCC", b"w")))),
    (b"ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED",
     And(tuple(k(n) for n in ("ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
                              "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED")))),
])
def test_search_keys(keys, criteria):
    if criteria is None:
        return
    assert parse(b"a SEARCH " + keys) == Search("a", "SEARCH", criteria=criteria)


def test_search_literal_charset_and_return():
    assert parse(b"a UID SEARCH RETURN (MIN COUNT) CHARSET utf-8 SUBJECT {6}\x00", "报价".encode()) == Search(
        "a", "SEARCH", uid=True, charset="UTF-8", criteria=k("SUBJECT", "报价".encode()), returns=("MIN", "COUNT"))
    assert parse(b"a SEARCH RETURN () ALL").returns == ("ALL",)
    assert parse(b"a SEARCH charset us-ascii ALL").charset == "US-ASCII"
    assert parse(b"a SEARCH RETURN (SAVE) ALL").returns == ("SAVE",)


@pytest.mark.parametrize(("line", "text"), [
    (b"", "missing or invalid tag"),
    (b"a+b NOOP", "missing or invalid tag"),
    (b"* NOOP", "missing or invalid tag"),
    (b"a{1 NOOP", "missing or invalid tag"),
    (b"a", "command: missing arguments"),
    (b"a FROB", "unknown command FROB"),
    (b"a UID LOGIN x y", "UID LOGIN: not a UID command"),
    (b"a NOOP now", 'NOOP: unexpected " now" after the arguments'),
    (b"a NOOP  ", 'NOOP: unexpected "  " after the arguments'),
    (b"a LOGIN joe", "LOGIN: missing arguments"),
    (b"a LOGIN joe  pw", "LOGIN: expected a password"),
    (b'a LOGIN joe "pw', "LOGIN: bad quoted string"),
    (b'a LOGIN joe "p\\w"', "LOGIN: bad quoted string"),
    (b'a LOGIN joe "p\xc3\xa9"', "LOGIN: 8-bit characters in a quoted string"),
    (b"a LOGIN joe {3} x", "LOGIN: a literal's header must end the line"),
    (b"a AUTHENTICATE PLAIN a*b", "AUTHENTICATE: unexpected"),
    (b"a AUTHENTICATE PLAIN a-b", "AUTHENTICATE: the initial response is not base64"),
    (b"a FETCH 0 FLAGS", "FETCH: sequence number out of range: 0"),
    (b"a FETCH 4294967296 FLAGS", "FETCH: sequence number out of range: 4294967296"),
    (b"a FETCH x FLAGS", "FETCH: expected a sequence set"),
    (b"a FETCH 1 FOO", "FETCH: unknown item FOO"),
    (b"a FETCH 1 (FLAGS FAST)", "FETCH: FAST is a macro"),
    (b"a FETCH 1 BODY[4.FOO]", "FETCH: unknown section FOO in BODY[]"),
    (b"a FETCH 1 BODY[MIME]", "FETCH: MIME needs a part number"),
    (b"a FETCH 1 BODY[0]", "FETCH: a part number out of range: 0"),
    (b"a FETCH 1 BODY[1", 'FETCH: expected "." or "]" in the BODY[] section'),
    (b"a FETCH 1 BODY[TEXT", 'FETCH: expected "]" to end the BODY[] section'),
    (b"a FETCH 1 BODY[HEADER.FIELDS ()]", "FETCH: expected a header field name"),
    (b"a FETCH 1 BODY[HEADER.FIELDS (a:b)]", "FETCH: not a header field name"),
    (b"a FETCH 1 BODY[]<1.0>", "FETCH: a partial count out of range: 0"),
    (b"a FETCH 1 BINARY[TEXT]", "FETCH: BINARY[] takes only part numbers"),
    (b"a FETCH 1 BINARY.SIZE[1]<0.1>", "FETCH: BINARY.SIZE takes no <partial>"),
    (b"a FETCH 1 BINARY", 'FETCH: expected "[" after BINARY'),
    (b"a FETCH 1 FLAGS (VANISHED)", "FETCH: VANISHED needs UID FETCH and CHANGEDSINCE"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE -1)", "FETCH: expected a mod-sequence"),
    (b"a FETCH 1 FLAGS (FOO)", "FETCH: unknown or repeated fetch modifier FOO"),
    (b"a SEARCH", "SEARCH: missing arguments"),
    (b"a SEARCH FOO", "SEARCH: unknown search key FOO"),
    (b"a SEARCH SINCE 30-Feb-2026", "SEARCH: not a date: 30-Feb-2026"),
    (b"a SEARCH SINCE 2026-02-01", "SEARCH: expected a date such as 1-Feb-1994"),
    (b"a SEARCH OR SEEN", "SEARCH: missing arguments"),
    (b"a SEARCH (SEEN", 'SEARCH: expected ")"'),
    (b"a SEARCH " + b"NOT " * 40 + b"SEEN", "SEARCH: search keys nested too deep"),
    (b"a SEARCH " + b"(" * 40 + b"SEEN" + b")" * 40, "SEARCH: lists nested too deep"),
    (b"a SEARCH RETURN (FOO) ALL", "SEARCH: unknown RETURN option FOO"),
    (b"a SEARCH YOUNGER 0", "SEARCH: seconds after YOUNGER out of range: 0"),
    (b"a SEARCH KEYWORD \\Seen", "SEARCH: expected a keyword"),
    (b"a STORE 1 FLAGS (\\Recent)", "STORE: \\Recent cannot be set by a client"),
    (b"a STORE 1 FLIPS (\\Seen)", "STORE: expected FLAGS, +FLAGS or -FLAGS"),
    (b"a STORE 1 (FOO 1) FLAGS ()", "STORE: the only STORE modifier is UNCHANGEDSINCE"),
    (b"a STORE 1 FLAGS (\\*)", "STORE: expected a flag"),
    (b"a APPEND INBOX \"x\"", 'APPEND: expected a date-time such as "17-Jul-1996 02:44:25 -0700"'),
    (b'a APPEND INBOX "17-Jul-1996 02:44:25 -0760" {1}', "APPEND: not a date-time"),
    (b"a APPEND INBOX x", "APPEND: expected the message as a literal"),
    (b"a SELECT INBOX (FOO)", "SELECT: unknown or repeated parameter FOO"),
    (b"a SELECT INBOX (QRESYNC (0 1))", "SELECT: a UIDVALIDITY out of range: 0"),
    (b"a STATUS INBOX ()", "STATUS: no STATUS items"),
    (b"a STATUS INBOX (MESSAGES FOO)", "STATUS: unknown STATUS item FOO"),
    (b'a LIST (RECURSIVEMATCH) "" %', "LIST: RECURSIVEMATCH needs another selection option"),
    (b'a LIST (FOO) "" %', "LIST: unknown selection option FOO"),
    (b'a LIST "" % RETURN (FOO)', "LIST: unknown return option FOO"),
    (b'a LIST "" % FOO (CHILDREN)', "LIST: expected RETURN after the patterns"),
    (b'a LIST "" % RETURN (STATUS (MESSAGES) STATUS (UNSEEN))', "LIST: STATUS given twice"),
    (b"a ENABLE", "ENABLE: missing arguments"),
    (b"a ID (\"a\")", "ID: expected a space"),
])
def test_bad_commands_say_what_is_wrong(line, text):
    with pytest.raises(ParseError) as caught:
        parse(line)
    assert str(caught.value).startswith(text)


def test_literal8_only_for_append():
    with pytest.raises(ParseError, match="literal8"):
        parse(b"a LOGIN ~{1}\x00 x", b"u")


def test_utf8_quoted_strings():
    assert parse('a SELECT "报价"'.encode(), utf8=True).mailbox == "报价".encode()
    with pytest.raises(ParseError, match="not UTF-8"):
        parse(b'a SELECT "\xff"', utf8=True)


# --- fuzzing ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40) | st.sampled_from(
    [b"\r\n", b"{3}\r\n", b"{2+}\r\n", b"~{1}\r\n", b"a FETCH 1 ", b"a SEARCH ", b"(", b")", b'"', b"\\",
     b"BODY[", b"UID ", b"a APPEND x ", b"{99999999999999999999}\r\n", b"{100+}\r\n"]), max_size=20))
def test_random_bytes_only_make_events(chunks):
    reader = CommandReader(max_line=200, max_literal=50)
    for chunk in chunks:
        reader.feed(chunk)
        while (event := reader.next_event()) is not None:
            assert isinstance(event, (Command, Bad, Continue))


def render_set(s: SequenceSet) -> bytes:
    if s.saved:
        return b"$"

    def n(x: int) -> bytes:
        return b"*" if x == STAR else b"%d" % x
    return b",".join(n(a) if a == b else n(a) + b":" + n(b) for a, b in s.ranges)


def render_item(item: FetchItem) -> bytes:
    if item.section is None or item.name.startswith("RFC822"):
        return item.name.encode()
    head = {"BODY[]": "BODY", "BINARY[]": "BINARY"}.get(item.name, item.name) + (".PEEK" if item.peek else "")
    section = item.section.label().encode()
    out = head.encode() + b"[" + section + b"]"
    if item.partial is not None:
        out += b"<%d.%d>" % item.partial
    return out


def render_key(key: object) -> bytes:
    if isinstance(key, And):
        return b"(" + b" ".join(render_key(x) for x in key.keys) + b")"
    if isinstance(key, Or):
        return b"OR " + render_key(key.left) + b" " + render_key(key.right)
    if isinstance(key, Not):
        return b"NOT " + render_key(key.key)
    assert isinstance(key, Key)
    if key.name == "SEQ":
        return render_set(key.value)
    out = key.name.encode()
    if isinstance(key.value, SequenceSet):
        return out + b" " + render_set(key.value)
    if isinstance(key.value, bytes):
        return out + b" {%d}\x00" % len(key.value)  # a literal: parse() puts the bytes there
    if isinstance(key.value, date):
        return out + key.value.strftime(" %d-%b-%Y").encode()
    if isinstance(key.value, int):
        return out + b" %d" % key.value
    return out


def literals_of(key: object) -> list[bytes]:
    if isinstance(key, And):
        return [b for x in key.keys for b in literals_of(x)]
    if isinstance(key, Or):
        return literals_of(key.left) + literals_of(key.right)
    if isinstance(key, Not):
        return literals_of(key.key)
    return [key.value] if isinstance(key.value, bytes) else []


numbers = st.integers(1, 2**32 - 1) | st.just(STAR)
sets = st.builds(SequenceSet, st.lists(st.tuples(numbers, numbers), min_size=1, max_size=4).map(tuple)) \
    | st.just(SequenceSet((), saved=True))
parts = st.lists(st.integers(1, 99), max_size=3).map(tuple)
fields = st.lists(st.from_regex(r"[A-Z][A-Z0-9-]{0,8}", fullmatch=True), min_size=1, max_size=3).map(tuple)
sections = st.one_of(
    st.builds(Section, parts),
    st.builds(Section, parts, st.sampled_from(["HEADER", "TEXT"])),
    st.builds(Section, parts.filter(bool), st.just("MIME")),
    st.builds(Section, parts, st.sampled_from(["HEADER.FIELDS", "HEADER.FIELDS.NOT"]), fields),
)
partials = st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 2**32 - 1))
items = st.one_of(
    st.sampled_from(["FLAGS", "UID", "ENVELOPE", "BODYSTRUCTURE", "BODY", "MODSEQ", "RFC822.SIZE"]).map(FetchItem),
    st.builds(FetchItem, st.just("BODY[]"), sections, partials, st.booleans()),
    st.builds(FetchItem, st.just("BINARY[]"), st.builds(Section, parts), partials, st.booleans()),
    st.builds(FetchItem, st.just("BINARY.SIZE"), st.builds(Section, parts)),
)


@given(sets, st.lists(items, min_size=1, max_size=5), st.booleans())
def test_fetch_round_trips(messages, fetch_items, uid):
    line = (b"t UID FETCH " if uid else b"t FETCH ") + render_set(messages) + b" (" + \
        b" ".join(render_item(i) for i in fetch_items) + b")"
    assert parse(line) == Fetch("t", "FETCH", uid=uid, messages=messages, items=tuple(fetch_items))


plain_keys = st.one_of(
    st.sampled_from(["ALL", "SEEN", "UNSEEN", "DELETED", "FLAGGED", "NEW", "OLD", "DRAFT"]).map(Key),
    st.builds(Key, st.sampled_from(["FROM", "TO", "SUBJECT", "BODY", "TEXT"]), st.binary(max_size=10)),
    st.builds(Key, st.sampled_from(["SINCE", "BEFORE", "ON", "SENTON"]), st.dates(date(1000, 1, 1))),
    st.builds(Key, st.sampled_from(["LARGER", "SMALLER"]), st.integers(0, 2**32 - 1)),
    st.builds(Key, st.sampled_from(["UID", "SEQ"]), sets),
)
search_keys = st.recursive(plain_keys, lambda inner: st.one_of(
    st.builds(Not, inner), st.builds(Or, inner, inner),
    st.lists(inner, min_size=2, max_size=3).map(lambda ks: And(tuple(ks)))), max_leaves=8)


@given(search_keys)
def test_search_round_trips(criteria):
    assert parse(b"t SEARCH " + render_key(criteria), *literals_of(criteria)) == Search(
        "t", "SEARCH", criteria=criteria)
