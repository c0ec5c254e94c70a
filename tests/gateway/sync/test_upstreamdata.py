"""The sync upstream's pure helpers: UID sets as QQ Mail and Exmail accept them, fetch batches
that bound memory, the answer to EXAMINE read into a folder state, the reconnect backoff."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from mailwarden.gateway.sync.upstreamdata import Backoff, folder_state, internal_date, plan_batches, uid_set
from mailwarden.gateway.upstream.imapclient import Reply
from mailwarden.gateway.upstream.imapresponse import ResponseParser
from mailwarden.gateway.upstream.imapwire import Status


@pytest.mark.parametrize(("uids", "text"), [
    ([1], "1"),
    ([1, 2, 3, 4, 5, 7, 9, 10, 11, 12], "1:5,7,9:12"),
    ([12, 9, 3, 11, 10, 1, 2], "1:3,9:12"),  # ascending whatever the order given
    ([5, 5, 6, 6], "5:6"),
    ({4000000000, 7, 8}, "7:8,4000000000"),
])
def test_uid_set_is_ascending_and_compressed(uids, text):
    assert uid_set(uids) == text


@pytest.mark.parametrize("bad", [[], [0, 1], [-3]])
def test_uid_set_refuses_what_is_no_set(bad):
    with pytest.raises(ValueError):
        uid_set(bad)


def test_small_messages_batch_up_to_the_bound_large_ones_alone():
    sizes = [(1, 400), (2, 400), (3, 400), (4, 1000), (5, 10), (6, 5000), (7, 10), (8, 10)]
    assert plan_batches(sizes, max_bytes=1000, max_message=4000) == [
        ([1, 2], False), ([3], False), ([4], False), ([5], False), ([6], True), ([7, 8], False)]


def test_batches_hold_at_most_max_count_messages():
    batches = plan_batches([(uid, 1) for uid in range(1, 1201)], max_bytes=10**9, max_count=500)
    assert [len(uids) for uids, _ in batches] == [500, 500, 200]
    assert [uid for uids, _ in batches for uid in uids] == list(range(1, 1201))


def _reply(raw: bytes) -> Reply:
    parser = ResponseParser()
    parser.feed(raw)
    events = []
    while not isinstance(ev := parser.next_event(), Status) or ev.tag is None:
        events.append(ev)
    return Reply(ev, tuple(events))


def test_the_answer_to_examine_with_qresync_becomes_a_folder_state():
    reply = _reply(b"* FLAGS (\\Answered \\Seen $Forwarded)\r\n"
                   b"* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n"
                   b"* 12 EXISTS\r\n* 0 RECENT\r\n"
                   b"* OK [UIDVALIDITY 1700] UIDs valid\r\n* OK [UIDNEXT 40] Predicted next UID\r\n"
                   b"* OK [HIGHESTMODSEQ 90] Highest\r\n"
                   b"* VANISHED (EARLIER) 3:5,9\r\n"
                   b"* 11 FETCH (UID 38 FLAGS (\\Seen) MODSEQ (88))\r\n"
                   b"mw3 OK [READ-ONLY] Examine completed\r\n")
    state = folder_state("INBOX", "INBOX", reply, 1700, server="imap.test:993")
    assert (state.uidvalidity, state.uidnext, state.exists, state.highestmodseq) == (1700, 40, 12, 90)
    assert state.flags == ("\\Answered", "\\Seen", "$Forwarded") and state.permanentflags == ()
    assert not state.uidvalidity_changed and not state.keywords_allowed
    assert state.vanished == ((3, 5), (9, 9)) and state.changed == {38: (("\\Seen",), 88)}
    assert folder_state("INBOX", "INBOX", reply, 1699, server="x").uidvalidity_changed


def test_a_folder_without_modseq_and_one_that_takes_keywords():
    reply = _reply(b"* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\n* 0 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\n"
                   b"* OK [NOMODSEQ] no\r\nmw1 OK [READ-WRITE] done\r\n")
    state = folder_state("Sent", "Sent", reply, None, server="x")
    assert state.highestmodseq is None and state.keywords_allowed and state.uidnext is None


def test_internal_dates():
    assert internal_date(b" 7-Jul-2026 02:44:25 -0700") == datetime(2026, 7, 7, 2, 44, 25,
                                                                     tzinfo=timezone(timedelta(hours=-7)))
    assert internal_date(b"not a date") is None


def test_backoff_doubles_to_the_cap_and_resets():
    backoff = Backoff(1, 300)
    assert [backoff.next() for _ in range(11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    backoff.reset()
    assert backoff.next() == 1
