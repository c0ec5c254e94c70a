"""Fuzzing the submission protocol's command and DATA readers (Hypothesis): whatever bytes
come, in whatever pieces, the protocol never raises, never spins, answers only in well-formed
reply lines, and gives every command line an answer.  ``fuzz_corpus/`` keeps the inputs that
once went wrong, and others worth keeping, as regression examples replayed on every run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.gateway.submission.test_smtpwire import Client, b64

CORPUS = sorted((Path(__file__).parent / "fuzz_corpus").glob("*.smtp"))
REPLY = re.compile(r"^[2-5]\d\d[ -]")
FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
LOGIN = b"EHLO fuzz\r\nAUTH PLAIN " + b64(b"\0zhang\0right").encode() + b"\r\n"
VERBS = [b"EHLO", b"HELO", b"MAIL FROM:", b"RCPT TO:", b"DATA", b"RSET", b"NOOP", b"QUIT", b"AUTH PLAIN",
         b"AUTH LOGIN", b"STARTTLS", b"VRFY", b"HELP", b"EXPN", b"BDAT", b"*", b"."]


def replay(data: bytes, pieces: list[int], *, tls: bool = True) -> Client:
    """Feed ``data`` cut at ``pieces`` (sizes, cycled); check every reply line on the way."""
    client = Client(tls=tls)
    pos, n = 0, 0
    while pos < len(data) and not client.hung_up:
        size = max(1, pieces[n % len(pieces)]) if pieces else len(data)
        for line in client.feed(data[pos:pos + size]):
            assert REPLY.match(line), line
        pos, n = pos + size, n + 1
    return client


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
@pytest.mark.parametrize("pieces", [[], [1], [7, 300], [65536]])
def test_corpus_sessions_replay_cleanly(path: Path, pieces: list[int]) -> None:
    replay(path.read_bytes(), pieces)


@FUZZ
@given(st.binary(max_size=4000), st.lists(st.integers(1, 2000), min_size=1, max_size=8), st.booleans())
@example(b"AUTH LOGIN\r\n" + b"A" * 5000 + b"\r\nNOOP\r\n", [4096], True)
def test_any_bytes_never_crash_nor_hang(data: bytes, pieces: list[int], tls: bool) -> None:
    replay(data, pieces, tls=tls)


_line = st.builds(lambda verb, arg: verb + b" " + arg if arg else verb, st.sampled_from(VERBS),
                  st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")))


@FUZZ
@given(st.lists(_line, min_size=1, max_size=30), st.booleans())
def test_every_command_line_gets_an_answer(lines: list[bytes], logged_in: bool) -> None:
    client = Client()
    if logged_in:
        client.feed(LOGIN)
    for line in lines:
        in_data = client.wire._data is not None
        if client.hung_up or client.wire.closed:
            break
        got = client.feed(line + b"\r\n")
        assert all(REPLY.match(r) for r in got), got
        if not in_data:
            assert got or client.wire.closed, f"no answer to {line!r}"


@FUZZ
@given(st.binary(max_size=6000), st.lists(st.integers(1, 3000), min_size=1, max_size=4))
def test_any_message_body_ends_in_one_answer_and_the_session_goes_on(body: bytes, pieces: list[int]) -> None:
    client = Client(size_limit=4000)
    client.feed(LOGIN + b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n")
    assert client.feed(b"DATA\r\n") == ["354 End data with <CR><LF>.<CR><LF>"]
    # Whatever the body holds (a lone "." line in it ends it early: then the rest is commands).
    first = replay_into(client, body + b"\r\n.\r\n", pieces)
    if client.hung_up or client.wire.closed:
        return
    if client.wire._data is None:
        assert first, "the end of DATA got no answer"
        assert first[0][:3] in ("250", "552") or len(client.messages) >= 1
        assert client.feed(b"NOOP\r\n")[-1].startswith("250")


def replay_into(client: Client, data: bytes, pieces: list[int]) -> list[str]:
    got: list[str] = []
    pos, n = 0, 0
    while pos < len(data) and not client.hung_up:
        size = max(1, pieces[n % len(pieces)])
        got += client.feed(data[pos:pos + size])
        pos, n = pos + size, n + 1
    assert all(REPLY.match(r) for r in got), got
    return got
