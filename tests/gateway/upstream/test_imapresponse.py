"""The IMAP response parser, fed whole, one byte at a time, cut at every position, and with
trailing bytes (h11-style); its limits raise instead of growing."""

from __future__ import annotations

import pytest
from mailwarden.gateway.upstream.imapresponse import NEED_DATA, ResponseParser
from mailwarden.gateway.upstream.imapwire import (
    Capability, Code, Continuation, Data, ESearch, Exists, Expunge, Fetch, Flags, ListItem, ProtocolError, Recent,
    Search, Status, Vanished)

BODY = b"Subject: x\r\n\r\na ) line {5}\r\n* 9 EXISTS\r\n"  # a literal that looks like responses
WIRE = (
    b"* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n"
    b"* CAPABILITY IMAP4rev1 MULTIAPPEND UIDPLUS\r\n"
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $mw_op_zhang)\r\n"
    b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Flags permitted.\r\n"
    b"* 4 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
    b"* 2 EXPUNGE\r\n"
    b"* 3 FETCH (UID 17 FLAGS (\\Seen $mw_op_li) RFC822.SIZE 44 BODY[] {%d}\r\n" % len(BODY) + BODY
    + b" BODY[HEADER.FIELDS (X-MAILWARDEN-REF)]<0> {0}\r\n ENVELOPE (NIL \"say \\\"hi\\\" \\\\o/\" ((\"Zhang\" NIL \"zhang\" \"company.test\")) NIL))\r\n"
    b"* 1 FETCH (BINARY[1] ~{3}\r\n\x00\xff\n)\r\n"
    b"* SEARCH 2 84 882\r\n* SEARCH\r\n* SEARCH 5 (MODSEQ 917162500)\r\n"
    b"* ESEARCH (TAG \"mw3\") UID COUNT 3 ALL 4:6,9\r\n* ESEARCH COUNT 0\r\n"
    b"* VANISHED (EARLIER) 300:310,405\r\n* VANISHED 7\r\n"
    b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n* LIST () NIL INBOX\r\n"
    b"* LIST () \".\" {7}\r\nA \"b\" c\r\n"
    b"* XLIST (\\HasNoChildren \\Inbox) \"/\" \"Inbox\"\r\n"
    b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
    b"+ Ready for literal data\r\n+\r\n"
    b"mw1 OK [APPENDUID 38505 3955] Append completed.\r\n"
    b"mw2 NO [TRYCREATE] Mailbox doesn't exist: Sent\r\n"
    b"mw3 BAD Error in IMAP command APPEND: Invalid arguments.\r\n"
    b"mw4 NO [ALERT] [weird] text\r\n"
    b"mw5 OK\r\n"
    b"* BYE Logging out\r\n"
)
EXPECTED = [
    Status(None, "OK", Code("CAPABILITY", ("IMAP4rev1", "LITERAL+", "AUTH=PLAIN"), "CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN"),
           "Dovecot ready."),
    Capability(frozenset({"IMAP4REV1", "MULTIAPPEND", "UIDPLUS"})),
    Flags(("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "$mw_op_zhang")),
    Status(None, "OK", Code("PERMANENTFLAGS", (("\\Deleted", "\\Seen", "\\*"),), "PERMANENTFLAGS (\\Deleted \\Seen \\*)"),
           "Flags permitted."),
    Exists(4), Recent(0),
    Status(None, "OK", Code("UIDVALIDITY", (1700000000,), "UIDVALIDITY 1700000000"), "UIDs valid"),
    Expunge(2),
    Fetch(3, {"UID": 17, "FLAGS": ("\\Seen", "$mw_op_li"), "RFC822.SIZE": 44, "BODY[]": BODY,
              "BODY[HEADER.FIELDS (X-MAILWARDEN-REF)]<0>": b"",
              "ENVELOPE": (None, b'say "hi" \\o/', ((b"Zhang", None, b"zhang", b"company.test"),), None)}),
    Fetch(1, {"BINARY[1]": b"\x00\xff\n"}),
    Search((2, 84, 882)), Search(()), Search((5,), 917162500),
    ESearch("mw3", True, {"COUNT": 3, "ALL": "4:6,9"}), ESearch(None, False, {"COUNT": 0}),
    Vanished(True, ((300, 310), (405, 405))), Vanished(False, ((7, 7),)),
    ListItem(("\\HasNoChildren", "\\Sent"), "/", "Sent Items"), ListItem((), None, "INBOX"),
    ListItem((), ".", 'A "b" c'),
    ListItem(("\\HasNoChildren", "\\Inbox"), "/", "Inbox"),  # XLIST (QQ Mail, old Gmail)
    Data("STATUS", None, ("blurdybloop", ("MESSAGES", 231, "UIDNEXT", 44292))),
    Continuation("Ready for literal data"), Continuation(""),
    Status("mw1", "OK", Code("APPENDUID", (38505, 3955), "APPENDUID 38505 3955"), "Append completed."),
    Status("mw2", "NO", Code("TRYCREATE", (), "TRYCREATE"), "Mailbox doesn't exist: Sent"),
    Status("mw3", "BAD", None, "Error in IMAP command APPEND: Invalid arguments."),
    Status("mw4", "NO", Code("ALERT", (), "ALERT"), "[weird] text"),
    Status("mw5", "OK", None, ""),
    Status(None, "BYE", None, "Logging out"),
]


def events(parser: ResponseParser) -> list:
    out = []
    while (ev := parser.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def parse(wire: bytes, step: int | None = None, **limits) -> list:
    p = ResponseParser(**limits)
    got = []
    for i in range(0, len(wire), step or len(wire) or 1):
        p.feed(wire[i:i + (step or len(wire))])
        got += events(p)
    assert p.pending == 0
    return got


@pytest.mark.parametrize("step", [None, 1, 2, 3, 7, 64])
def test_whole_and_in_pieces(step):
    assert parse(WIRE, step) == EXPECTED


def test_cut_at_every_position():
    for cut in range(1, len(WIRE)):
        p = ResponseParser()
        p.feed(WIRE[:cut])
        got = events(p)
        p.feed(WIRE[cut:])
        assert got + events(p) == EXPECTED, cut


def test_trailing_bytes_wait_for_the_rest():
    p = ResponseParser()
    p.feed(b"* 5 EXISTS\r\n* 1 FETCH (BODY[] {10}\r\nhalf")
    assert events(p) == [Exists(5)] and p.pending > 0
    p.feed(b" done) FLAGS ())\r\nmw1 OK")
    assert events(p) == [Fetch(1, {"BODY[]": b"half done)", "FLAGS": ()})]
    p.feed(b" fine\r\n")
    assert events(p) == [Status("mw1", "OK", None, "fine")] and p.pending == 0


def test_literal_plus_and_bare_lf():
    assert parse(b"* 2 FETCH (BODY[] {3+}\r\nabc)\n* 3 EXISTS\n") == [Fetch(2, {"BODY[]": b"abc"}), Exists(3)]


def test_status_text_keeps_its_bytes():
    assert parse("mw1 NO 邮箱已满\r\n".encode()) == [Status("mw1", "NO", None, "邮箱已满")]
    assert str(Status("mw1", "NO", Code("TRYCREATE", (), "TRYCREATE"), "no")) == "NO [TRYCREATE] no"


def test_nesting_up_to_the_limit():
    deep = b"* 1 FETCH (X " + b"(" * 9 + b"NIL" + b")" * 9 + b")\r\n"
    (ev,) = parse(deep, max_depth=10)
    value = ev.items["X"]
    for _ in range(9):
        (value,) = value
    assert value is None
    with pytest.raises(ProtocolError, match="deeper"):
        parse(deep, max_depth=9)


@pytest.mark.parametrize("step", [None, 1, 4096])
def test_a_long_line_raises_instead_of_growing(step):
    assert parse(b"* OK " + b"x" * 995 + b"\r\n", step, max_line=1000)[0].text == "x" * 995
    with pytest.raises(ProtocolError, match="longer than 1000"):
        parse(b"* OK " + b"x" * 996 + b"\r\n", step, max_line=1000)
    p = ResponseParser(max_line=1000)
    with pytest.raises(ProtocolError, match="longer than 1000"):
        for _ in range(100):  # no LF ever comes: the buffer must not grow past the limit
            p.feed(b"y" * 100)
            p.next_event()


def test_a_large_literal_raises_before_its_bytes_arrive():
    p = ResponseParser(max_literal=1000)
    p.feed(b"* 1 FETCH (BODY[] {1000}\r\n" + b"a" * 1000 + b")\r\n")
    assert events(p)[0].items["BODY[]"] == b"a" * 1000
    p.feed(b"* 2 FETCH (BODY[] {1001}\r\n")
    with pytest.raises(ProtocolError, match="1001 bytes"):
        p.next_event()
    p = ResponseParser(max_literal=1000, max_response=1500)
    p.feed(b"* 1 FETCH (A {800}\r\n" + b"a" * 800 + b" B {800}\r\n")
    with pytest.raises(ProtocolError, match="response larger"):
        p.next_event()


@pytest.mark.parametrize("wire", [
    b"mw1 MAYBE later\r\n",  # not a status
    b"* 1 FETCH (FLAGS (\\Seen)\r\n",  # unclosed list
    b"* 1 FETCH (UID)\r\n",  # a name without its value
    b"* LIST () \"/\r\n",  # unterminated quoted string
    b"* 1 FETCH (BODY[ {3}\r\nabc)\r\n",  # unclosed section
    b"* 1 FETCH (BODY[] {3}\r\nabc{4} x)\r\n",  # a second literal not at the end of its line
    b"* SEARCH 1 two\r\n",
    b"* VANISHED (LATER) 1\r\n",
    b"* VANISHED 1:x\r\n",
    b"\r\n",
    b"* \r\n",
])
def test_garbage_is_a_protocol_error(wire):
    with pytest.raises(ProtocolError):
        parse(wire)


def test_an_unparsable_code_is_kept_raw():
    (ev,) = parse(b"mw1 NO [BADCHARSET (UTF-8 \"x] text\r\n")
    assert ev.code.name == "BADCHARSET" and ev.code.raw == 'BADCHARSET (UTF-8 "x' and ev.text == "text"
