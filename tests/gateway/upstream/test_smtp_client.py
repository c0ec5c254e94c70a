"""The relay's SMTP client against a small recording sink that answers from a script: what it
writes, how each answer is classified (temporary, permanent, a refused recipient), pipelined
and stepwise, connections kept, replaced and dropped.  DATA on the wire: test_streaming.py;
against the real Postfix: tests/integration/test_upstream_smtp.py."""

from __future__ import annotations

import asyncio

import pytest
from mailwarden.gateway.upstream.smtp import SMTPConnection
from mailwarden.gateway.upstream.source import PermanentFailure, Source, TemporaryFailure

from tests.gateway.upstream.sink import PASSWORD, Sink, connected, msg, upstream_at, verbs


# -- the conversation ------------------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_message_goes_out_and_the_connection_is_reused(pipelining):
    sink = Sink(pipelining=pipelining)
    async with connected(sink) as conn:
        first = await conn.send("sales@company.test", ["a@buyer.test", "b@buyer.test"], msg("one"))
        second = await conn.send("sales@company.test", ["a@buyer.test"], msg("two"))
    assert first.refused == {} and second.refused == {} and conn.connects == 1 and sink.connections == 1
    assert sink.bodies == [b"Subject: x\r\n\r\none\r\n.\r\n", b"Subject: x\r\n\r\ntwo\r\n.\r\n"]
    assert verbs(sink) == [b"EHLO", b"AUTH", b"MAIL", b"RCPT", b"RCPT", b"DATA", b"MAIL", b"RCPT", b"DATA", b"QUIT"]
    assert sink.commands[2:5] == [b"MAIL FROM:<sales@company.test>", b"RCPT TO:<a@buyer.test>", b"RCPT TO:<b@buyer.test>"]


async def test_pipelined_commands_go_in_one_write_stepwise_one_at_a_time(monkeypatch):
    writes: list[bytes] = []
    write = asyncio.StreamWriter.write
    monkeypatch.setattr(asyncio.StreamWriter, "write", lambda self, data: (writes.append(bytes(data)), write(self, data))[1])
    for pipelining in (True, False):
        writes.clear()
        async with connected(Sink(pipelining=pipelining)) as conn:
            await conn.send("s@company.test", ["a@buyer.test", "b@buyer.test"], msg())
        batch = b"MAIL FROM:<s@company.test>\r\nRCPT TO:<a@buyer.test>\r\nRCPT TO:<b@buyer.test>\r\nDATA\r\n"
        assert (batch in writes) is pipelining
        assert (b"RCPT TO:<a@buyer.test>\r\n" in writes) is not pipelining


@pytest.mark.parametrize("pipelining", [True, False])
async def test_refused_recipients_are_reported_252_takes_one(pipelining):
    sink = Sink(pipelining=pipelining, replies={b"RCPT": [b"252 2.1.5 cannot verify, will try", b"550 5.1.1 no such user",
                                                          b"451 4.3.0 try later"]})
    async with connected(sink) as conn:
        result = await conn.send("s@company.test", ["x@d.test", "y@d.test", "z@d.test"], msg())
    assert result.refused == {"y@d.test": (550, "5.1.1 no such user"), "z@d.test": (451, "4.3.0 try later")}
    assert sink.bodies == [b"Subject: x\r\n\r\nhi\r\n.\r\n"]


@pytest.mark.parametrize("pipelining", [True, False])
async def test_every_recipient_refused_sends_nothing_and_resets(pipelining):
    sink = Sink(pipelining=pipelining, replies={b"RCPT": [b"550 5.1.1 no such user"]})
    async with connected(sink) as conn:
        result = await conn.send("s@company.test", ["x@d.test", "y@d.test"], msg())
        assert conn.connected  # in step: kept for the next message
    assert list(result.refused) == ["x@d.test", "y@d.test"] and sink.bodies == []
    assert verbs(sink)[-2:] == [b"RSET", b"QUIT"]


async def test_a_server_that_lets_data_start_without_recipients_gets_an_empty_end():
    sink = Sink(replies={b"RCPT": [b"550 5.1.1 no such user"], b"DATA": [b"354 go"], b"DOT": [b"554 no recipients"]})
    async with connected(sink) as conn:
        result = await conn.send("s@company.test", ["x@d.test"], msg())
    assert list(result.refused) == ["x@d.test"] and sink.bodies == [b".\r\n"]
    assert verbs(sink)[-2:] == [b"RSET", b"QUIT"]


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize(("verb", "code", "failure"), [
    (b"MAIL", 550, PermanentFailure), (b"MAIL", 451, TemporaryFailure),
    (b"DOT", 552, PermanentFailure), (b"DOT", 451, TemporaryFailure),
    (b"DATA", 554, PermanentFailure), (b"DATA", 421, TemporaryFailure),
])
async def test_refusals_are_permanent_or_temporary_by_their_code(pipelining, verb, code, failure):
    sink = Sink(pipelining=pipelining, replies={verb: [f"{code} {code // 100}.0.0 said no".encode()]})
    async with connected(sink) as conn:
        with pytest.raises(failure, match=f"^{code} {code // 100}.0.0 said no$"):
            await conn.send("s@company.test", ["x@d.test"], msg())
        assert not conn.connected


@pytest.mark.parametrize("code", [354, 150, 600])
async def test_a_reply_that_is_no_answer_to_rcpt_ends_the_transaction(code):
    sink = Sink(replies={b"RCPT": [f"{code} what".encode()]})
    async with connected(sink) as conn:
        with pytest.raises(PermanentFailure if code >= 500 else TemporaryFailure, match=f"unexpected reply to RCPT"):
            await conn.send("s@company.test", ["x@d.test"], msg())
        assert not conn.connected


async def test_pipelined_mail_refused_then_hang_up_is_the_refusal():
    """A server that refuses MAIL and closes: the refusal (5xx: a bounce), not a lost connection (a retry)."""
    sink = Sink(replies={b"MAIL": [b"550 5.7.1 sender not allowed"]}, hang_up_after=b"MAIL")
    async with connected(sink) as conn:
        with pytest.raises(PermanentFailure, match="550 5.7.1 sender not allowed"):
            await conn.send("s@company.test", ["x@d.test"], msg())
    assert sink.connections == 1


# -- connections -----------------------------------------------------------------------------


async def test_a_reused_connection_the_server_dropped_while_idle_is_replaced():
    sink = Sink()
    async with connected(sink) as conn:
        await conn.send("s@company.test", ["x@d.test"], msg("one"))
        for w in sink.writers:  # an idle timeout: 421, then the close
            w.write(b"421 4.4.2 idle too long\r\n")
            w.close()
        await sink.closed.wait()
        await asyncio.sleep(0.05)
        result = await conn.send("s@company.test", ["x@d.test"], msg("two"))
    assert result.refused == {} and conn.connects == 2 and len(sink.bodies) == 2


async def test_dropped_mid_transaction_is_tried_once_more_on_a_new_connection():
    sink = Sink(hang_up_after=b"RCPT", pipelining=False)
    async with connected(sink) as conn:
        with pytest.raises(TemporaryFailure, match="^upstream SMTP disconnected: "):
            await conn.send("s@company.test", ["x@d.test"], msg())
    assert sink.connections == 2


async def test_a_busy_greeting_is_temporary():
    async with connected(Sink(greeting=b"554 5.3.2 too busy")) as conn:
        with pytest.raises(TemporaryFailure, match="^upstream SMTP refused the connection: 554 5.3.2 too busy$"):
            await conn.send("s@company.test", ["x@d.test"], msg())


async def test_a_wrong_password_is_temporary_and_tried_with_one_mechanism_only():
    sink = Sink(replies={b"AUTH": [b"535 5.7.8 authentication failed"]})
    async with connected(sink) as conn:
        with pytest.raises(TemporaryFailure, match="^upstream refused the shared account's login: 535 5.7.8"):
            await conn.send("s@company.test", ["x@d.test"], msg())
    assert verbs(sink).count(b"AUTH") == 1 and PASSWORD.encode() not in b"".join(sink.commands)


async def test_a_mechanism_the_server_cannot_use_moves_on_to_the_next():
    sink = Sink(replies={b"AUTH": [b"504 5.5.4 not today", b"334 UGFzc3dvcmQ6"]})
    async with connected(sink) as conn:
        await conn.send("s@company.test", ["x@d.test"], msg())
    auth = [c for c in sink.commands if c.startswith(b"AUTH")]
    assert [a.split()[1] for a in auth] == [b"PLAIN", b"LOGIN"] and len(sink.bodies) == 1


async def test_no_auth_offered_cannot_reach():
    async with connected(Sink(auth="")) as conn:
        with pytest.raises(TemporaryFailure, match="offers no AUTH mechanism"):
            await conn.send("s@company.test", ["x@d.test"], msg())


async def test_starttls_required_but_not_offered():
    sink = Sink()
    srv = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    async with srv:
        conn = SMTPConnection(upstream_at(srv.sockets[0].getsockname()[1], "starttls"), None)  # type: ignore[arg-type]
        with pytest.raises(TemporaryFailure, match="does not offer STARTTLS"):
            await conn.send("s@company.test", ["x@d.test"], msg())


async def test_a_reply_injected_after_starttls_is_refused():
    sink = Sink(replies={b"STAR": [b"220 go ahead\r\n250 injected"],
                         b"EHLO": [b"250-sink\r\n250-STARTTLS\r\n250 AUTH PLAIN"]})
    srv = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    async with srv:
        conn = SMTPConnection(upstream_at(srv.sockets[0].getsockname()[1], "starttls"), None)  # type: ignore[arg-type]
        with pytest.raises(TemporaryFailure, match="broke the protocol: bytes after the answer to STARTTLS"):
            await conn.send("s@company.test", ["x@d.test"], msg())
        await sink.closed.wait()


@pytest.mark.parametrize("reply", [b"hello there", b"250-" + b"x" * 40_000])
async def test_a_server_that_speaks_no_smtp_is_temporary(reply):
    async with connected(Sink(replies={b"MAIL": [reply]})) as conn:
        with pytest.raises(TemporaryFailure, match="broke the protocol"):
            await conn.send("s@company.test", ["x@d.test"], msg())


async def test_nobody_listening_cannot_reach():
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    with pytest.raises(TemporaryFailure, match=f"^cannot reach the upstream SMTP server 127.0.0.1:{port}: "):
        await SMTPConnection(upstream_at(port), None).send("s@company.test", ["x@d.test"], msg())  # type: ignore[arg-type]


async def test_an_address_that_cannot_go_out_fails_before_anything_is_sent():
    sink = Sink()
    async with connected(sink) as conn:
        with pytest.raises(ValueError):
            await conn.send("s@company.test", ["x@d.test> NOTIFY=NEVER"], msg())
        await conn.send("s@company.test", ["x@d.test"], msg())  # still in step
    assert b"NOTIFY" not in b"".join(sink.commands) and conn.connects == 1


async def test_a_non_ascii_address_goes_out_with_smtputf8_when_offered():
    sink = Sink(replies={b"EHLO": [b"250-sink\r\n250-SMTPUTF8\r\n250 AUTH PLAIN"]})
    async with connected(sink) as conn:
        await conn.send("s@company.test", ["张@d.test"], msg())
    assert "MAIL FROM:<s@company.test> SMTPUTF8".encode() in sink.commands
    assert "RCPT TO:<张@d.test>".encode() in sink.commands


async def test_cancelled_mid_data_drops_the_connection_without_ending_the_message(tmp_path):
    path = tmp_path / "big.eml"
    path.write_bytes(b"Subject: big\r\n\r\n" + b"x" * 76 + b"\r\n" * 200_000)
    sink = Sink(slow=True)
    async with connected(sink) as conn:
        src = Source(b"", path)
        task = asyncio.create_task(conn.send("s@company.test", ["x@d.test"], src))
        await sink.data_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        src.close()
        assert not conn.connected
        await asyncio.wait_for(sink.closed.wait(), 10)
    assert sink.bodies == [] and b"QUIT" not in verbs(sink)


async def test_turned_away_before_the_greeting_cannot_reach():
    sink = Sink(greeting=None)
    async with connected(sink) as conn:
        with pytest.raises(TemporaryFailure, match="^cannot reach .*closed before its greeting"):
            await conn.send("s@company.test", ["x@d.test"], msg())
    assert sink.connections == 1
