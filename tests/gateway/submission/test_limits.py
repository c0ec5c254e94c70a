"""Connection limits: who gives way when the gateway is full, and the bound derived from the
open-files limit."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailwarden.gateway.submission.limits import FULL, GIVE_WAY, ConnectionLimits, derived_total


@dataclass(eq=False)
class Conn:
    peer: str
    logged_in: bool = False
    said: list[str] = field(default_factory=list)

    def shut(self, reply: str) -> None:
        self.said.append(reply)


def test_the_oldest_connection_not_logged_in_gives_way_when_full():
    limits = ConnectionLimits(total=3, per_address=10)
    a, b, c = Conn("10.0.0.1", logged_in=True), Conn("10.0.0.2"), Conn("10.0.0.3")
    for conn in (a, b, c):
        assert limits.admit(conn) is None
    d = Conn("10.0.0.4")
    assert limits.admit(d) is None
    assert b.said == [GIVE_WAY] and not a.said and not c.said and len(limits) == 3


def test_a_full_gateway_of_logged_in_sessions_refuses_the_newcomer():
    limits = ConnectionLimits(total=2, per_address=10)
    for n in range(2):
        assert limits.admit(Conn(f"10.0.0.{n}", logged_in=True)) is None
    assert limits.admit(Conn("10.0.0.9")) == FULL


def test_one_address_holds_at_most_per_address_connections_not_logged_in():
    limits = ConnectionLimits(total=100, per_address=2)
    first, second = Conn("10.0.0.1"), Conn("10.0.0.1")
    other = Conn("10.0.0.2")
    for conn in (first, other, second):
        assert limits.admit(conn) is None
    third = Conn("10.0.0.1")
    assert limits.admit(third) is None
    assert first.said == [GIVE_WAY] and not second.said and not other.said
    limits.release(second)
    limits.release(third)
    assert len(limits) == 1


def test_the_derived_bound_leaves_room_for_the_rest_of_the_process():
    assert derived_total(1024, relay_connections=4, imap_connections=3) == 1024 - 102 - 4 - 3 - 20
    assert derived_total(65536, relay_connections=4, imap_connections=3) == 65536 - 6553 - 27
    assert derived_total(64, relay_connections=4, imap_connections=3) == 16  # never nothing
