"""The connection budget: never more leases than the maximum, first come first served,
cancellation leaves it as it was, and what an operator sees."""

from __future__ import annotations

import asyncio
import random

import pytest
from mailwarden.gateway.upstream.budget import ConnectionBudget, Use


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_leases_up_to_the_maximum_then_waits():
    budget = ConnectionBudget({"imap": 2, "smtp": 1})
    a = await budget.acquire("imap", "sync idle")
    b = await budget.acquire("imap", "sync worker")
    third = asyncio.create_task(budget.acquire("imap", "relay append"))
    await settle()
    assert not third.done()
    assert await budget.acquire("smtp", "relay") is not None  # the protocols are counted apart
    a.release()
    c = await asyncio.wait_for(third, 1)
    assert c.holder == "relay append"
    assert budget.snapshot()["imap"] == Use("imap", 2, 2, 0, ("sync worker", "relay append"))
    b.release()
    c.release()
    assert budget.snapshot()["imap"].in_use == 0


async def test_release_twice_gives_back_once():
    budget = ConnectionBudget({"imap": 1})
    lease = await budget.acquire("imap")
    lease.release()
    lease.release()
    first = await budget.acquire("imap")
    assert budget.try_acquire("imap") is None and lease.released and not first.released


async def test_waiters_are_served_in_order():
    budget = ConnectionBudget({"smtp": 1})
    held = await budget.acquire("smtp", "first")
    order: list[int] = []

    async def wait(k: int) -> None:
        async with budget.hold("smtp", f"w{k}"):
            order.append(k)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(wait(k)) for k in range(6)]
    await settle()
    assert budget.snapshot()["smtp"].waiting == 6
    assert budget.try_acquire("smtp") is None  # no jumping the queue, even at the moment one is free
    held.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert order == list(range(6))


async def test_a_newcomer_does_not_overtake_a_waiter_given_the_lease():
    budget = ConnectionBudget({"imap": 1})
    held = await budget.acquire("imap", "a")
    waiter = asyncio.create_task(budget.acquire("imap", "b"))
    await settle()
    held.release()  # b's turn, though its task has not run yet
    assert budget.try_acquire("imap", "c") is None
    assert (await waiter).holder == "b"


async def test_cancelled_while_waiting_leaves_no_trace():
    budget = ConnectionBudget({"imap": 1})
    held = await budget.acquire("imap", "a")
    gone = asyncio.create_task(budget.acquire("imap", "gone"))
    after = asyncio.create_task(budget.acquire("imap", "after"))
    await settle()
    gone.cancel()
    await settle()
    assert budget.snapshot()["imap"].waiting == 1
    held.release()
    assert (await asyncio.wait_for(after, 1)).holder == "after"
    assert gone.cancelled()


async def test_cancelled_just_as_its_turn_came_passes_the_lease_on():
    budget = ConnectionBudget({"imap": 1})
    held = await budget.acquire("imap", "a")
    unlucky = asyncio.create_task(budget.acquire("imap", "unlucky"))
    next_one = asyncio.create_task(budget.acquire("imap", "next"))
    await settle()
    held.release()  # unlucky's turn came ...
    unlucky.cancel()  # ... and it was stopped before it could run
    with pytest.raises(asyncio.CancelledError):
        await unlucky
    assert (await asyncio.wait_for(next_one, 1)).holder == "next"
    assert budget.snapshot()["imap"].holders == ("next",)


async def test_cancelled_while_waiting_and_released_at_once():
    """The cancelled waiter's future is dropped from the queue by the release before its task
    runs: neither may count twice."""
    budget = ConnectionBudget({"imap": 1})
    held = await budget.acquire("imap", "a")
    gone = asyncio.create_task(budget.acquire("imap", "gone"))
    await settle()
    gone.cancel()
    held.release()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert budget.snapshot()["imap"] == Use("imap", 0, 1, 0, ())


async def test_hold_gives_back_when_the_block_fails():
    budget = ConnectionBudget({"smtp": 1})
    with pytest.raises(OSError):
        async with budget.hold("smtp", "relay"):
            raise OSError("connection refused")
    assert budget.snapshot()["smtp"].in_use == 0


async def test_many_tasks_never_exceed_the_maximum():
    budget = ConnectionBudget({"imap": 3})
    rng = random.Random(5)
    now, peak = 0, 0

    async def worker(k: int) -> None:
        nonlocal now, peak
        for _ in range(20):
            try:
                async with asyncio.timeout(rng.choice([None, None, 0.001])):
                    async with budget.hold("imap", f"w{k}"):
                        now += 1
                        peak = max(peak, now)
                        try:
                            await asyncio.sleep(rng.random() / 1000)
                        finally:
                            now -= 1
            except TimeoutError:
                pass

    await asyncio.wait_for(asyncio.gather(*(worker(k) for k in range(12))), 30)
    assert peak == 3 and now == 0
    assert budget.snapshot()["imap"] == Use("imap", 0, 3, 0, ())


def test_snapshot_before_any_use():
    budget = ConnectionBudget({"imap": 15, "smtp": 4})
    assert budget.snapshot() == {"imap": Use("imap", 0, 15, 0, ()), "smtp": Use("smtp", 0, 4, 0, ())}


@pytest.mark.parametrize("limits", [{"imap": 0}, {"smtp": -1}, {"pop3": 2}, {"imap": 1.5}])
def test_bad_limits_are_refused(limits):
    with pytest.raises(ValueError):
        ConnectionBudget(limits)


async def test_a_protocol_without_a_limit_is_refused():
    with pytest.raises(ValueError, match="no limit for 'smtp'"):
        await ConnectionBudget({"imap": 1}).acquire("smtp")
