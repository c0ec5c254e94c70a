"""Restarts duplicate at most what was in flight; the Sent copy is never filed twice.

``serve`` and its delivery process are killed with SIGKILL three times while three clients
send; each time it is started again.  *In flight at a kill* is counted from outside, once
Postfix has delivered what it took: the messages the upstream has that the store still has in
the ``relay`` stage (the upstream said 250, the record of it was not written).  Only those may
reach the customer twice — a message whose delivery was recorded is never sent again — and
there are at most two per relay connection (the relay sends the next while the last is being
recorded).  Nothing accepted is lost; the Sent folder has each message once.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import SHARED, token
from tests.reliability.rig import CUSTOMER, RELAY_CONNECTIONS, Serve, kill_rounds, settled

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

KILLS = 3
BEFORE_KILL = 15  # messages of a round at the customer before the kill: deliveries are under way


def test_kill9_under_load_resends_only_what_was_in_flight(upstream, tmp_path):
    serve = Serve(upstream, tmp_path / "gateway")
    run = token()
    try:
        accepted, in_flight = kill_rounds(serve, upstream, run, KILLS, BEFORE_KILL)
        serve.start()
        want = set(accepted)
        delivered = settled(upstream, CUSTOMER, run, want=len(want), quiet=2.0, timeout=90)
        sent = settled(upstream, SHARED, run, "Sent", want=len(delivered), quiet=1.0, timeout=60)
    finally:
        code = serve.stop()
    assert code == 0, serve.log.read_text()[-3000:]

    lost = want - set(delivered)
    assert not lost, f"accepted but never delivered: {sorted(lost)}"
    duplicated = {s for s, n in delivered.items() if n > 1}
    per_kill = [len(duplicated & f) for f in in_flight]
    report = f"in flight at each kill {[len(f) for f in in_flight]}, duplicated per kill {per_kill}"
    print(f"\n{len(want)} accepted, {len(delivered)} delivered; {report}")
    assert duplicated <= set().union(*in_flight), f"sent again after its delivery was recorded: " \
        f"{sorted(duplicated - set().union(*in_flight))} ({report})"
    assert max(delivered.values()) <= 2, report
    assert all(len(f) <= 2 * RELAY_CONNECTIONS for f in in_flight), report
    assert set(sent) == set(delivered) and set(sent.values()) == {1}, \
        f"Sent copies filed twice or missing: {[s for s, n in sent.items() if n != 1]}, " \
        f"{sorted(set(delivered) - set(sent))}"
